"""Configuration drift: what changed between the configuration that wrote a checkpoint and now.

    appends = config_appends(head, fingerprint=fp, config=config)    # only when it changed
    stored = await store.put(envelope, appends={**appends, ...})
    ...
    old = await maintenance.saved_config(store, head)                # the config that wrote it
    changes = my_adapter_diff(old, config)                           # [Change(...), ...]
    current = registry.upgrade(head, fingerprint=fp, changes=changes, policy=DriftPolicy.MIGRATE)

Adapters describe a difference field by field (a participant renamed, a system message
changed, a tool removed...) as :class:`Change` values; the registry then applies the user's
:class:`DriftPolicy`: ``strict`` refuses any change, ``migrate`` runs the fingerprint-change
handlers that cover the changes and refuses the ones none covers, ``accept`` loads as is and
records that it did. The configuration itself is kept in the thread's ``config`` log, one
item per distinct fingerprint, so a checkpoint costs nothing extra until the configuration
changes and the old one can still be diffed years later.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

from ._json import JSON, json_diff, normalize_json
from .envelope import Envelope
from .errors import ConfigDriftError

__all__ = [
    "CONFIG_LOG",
    "Change",
    "DriftOption",
    "DriftPolicy",
    "config_appends",
    "drift_error",
    "drift_policy",
    "generic_changes",
    "matched_renames",
]

CONFIG_LOG = "config"
"""The log holding ``{"fingerprint": ..., "config": ...}``, one item per distinct config."""


class DriftPolicy(str, Enum):
    """What to do when a checkpoint was written by another configuration than the loader's."""

    STRICT = "strict"
    """Refuse: :class:`ConfigDriftError` lists every difference."""
    MIGRATE = "migrate"
    """Run the registered migrations for the changes; refuse the changes none covers."""
    ACCEPT = "accept"
    """Load as is; the envelope's metadata records what was accepted."""


DriftOption = DriftPolicy | str
"""A :class:`DriftPolicy` or its value, as adapters' ``drift=`` options take it."""


def drift_policy(option: DriftOption) -> DriftPolicy:
    """The policy an option names; a typo fails before anything is loaded."""
    try:
        return DriftPolicy(option)
    except ValueError:
        choices = ", ".join(repr(p.value) for p in DriftPolicy)
        raise ValueError(f"drift must be one of {choices}, got {option!r}") from None


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two configurations.

    ``what`` is a short category an adapter documents ("participant renamed", "system message
    changed", "tool removed", ...) that migrations declare they cover; ``subject`` names the
    thing (an agent, a tool, a JSON path); ``old`` and ``new`` are the values, when they help.
    """

    what: str
    subject: str
    old: JSON = None
    new: JSON = None

    def __str__(self) -> str:
        if self.old is None and self.new is None:
            return f"{self.what}: {self.subject}"
        return f"{self.what}: {self.subject} ({_short(self.old)} -> {_short(self.new)})"

    def to_json(self) -> dict[str, JSON]:
        """The change as plain JSON, for reports and envelope metadata."""
        return {"what": self.what, "subject": self.subject, "old": self.old, "new": self.new}


def _short(value: JSON, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def drift_error(where: str, changes: Sequence[Change], policy: DriftPolicy) -> ConfigDriftError:
    """The error that lists what ``policy`` refused, and what to do about it."""
    listed = "\n".join(f"  - {change}" for change in changes)
    if policy is DriftPolicy.STRICT:
        advice = "Build it as it was, or load with policy 'migrate' or 'accept'"
    else:
        advice = (
            "No registered migration covers these changes: register one with "
            "Registry.on_fingerprint_change(kind, covers=[...]), or load with policy 'accept'"
        )
    return ConfigDriftError(
        f"{where} was written by another configuration ({policy.value} policy):\n"
        f"{listed}\n{advice}",
        changes,
    )


def generic_changes(old: Any, new: Any) -> list[Change]:
    """Changes for every JSON path that differs, for what an adapter does not name itself."""
    changes: list[Change] = []
    for line in json_diff(old, new):
        sign, path = line.split(" ", 1)
        what = {"+": "setting added", "-": "setting removed"}.get(sign, "setting changed")
        changes.append(Change(what, path))
    return changes


def matched_renames(
    declared: Iterable[tuple[str, str]], before: Container[str], after: Container[str]
) -> dict[str, str]:
    """The declared renames ``(old, new)`` a diff shows: the old name gone, the new one come.

    A rename is a declaration (nothing else tells a renamed tool from a removed one and an
    added one); one that does not fit the two configurations is left out, first one wins.
    """
    renamed: dict[str, str] = {}
    for old, new in declared:
        fits = old in before and old not in after and new in after and new not in before
        if fits and old not in renamed and new not in renamed.values():
            renamed[old] = new
    return renamed


def config_appends(
    head: Envelope | None, *, fingerprint: str | None, config: Any
) -> dict[str, list[JSON]]:
    """The ``config`` log append a checkpoint needs: one item when the fingerprint changed.

    ``head`` is the checkpoint the new one follows, as read (an upgrade keeps the writer's
    fingerprint). Pass the result, merged with other appends, to ``store.put``.
    """
    if fingerprint is None or (head is not None and head.fingerprint == fingerprint):
        return {}
    record = {"fingerprint": fingerprint, "config": normalize_json(config, what="config")[0]}
    return {CONFIG_LOG: [cast("JSON", record)]}


def __getattr__(name: str) -> Any:
    """``saved_config`` moved to :mod:`agent_persist.maintenance` (it reads a store)."""
    if name == "saved_config":
        from . import maintenance
        from ._deprecated import warn_renamed

        warn_renamed(f"{__name__}.saved_config", "agent_persist.maintenance.saved_config")
        return maintenance.saved_config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
