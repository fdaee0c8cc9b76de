"""``diff``: what changed between two checkpoints of a thread, with the old and new values.

    agent-persist diff essay-1                  # the head against its parent
    agent-persist diff essay-1 0193a1           # that checkpoint (a unique prefix) against the head
    agent-persist diff essay-1 0193a1 0193b7 --json

Checkpoint ids may be shortened to a unique prefix, as git takes a commit's. Header fields and
payload paths print as ``~ path: old -> new`` (changed), ``+ path: new`` (added) and
``- path: old`` (removed); values longer than a line are cut, ``--json`` gives them whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, cast

import click

from .._json import JSON
from ..envelope import Envelope
from ..errors import CheckpointNotFoundError
from ..stores.base import BaseStore
from ._app import EXIT_CODES, Command, StoreOptions, echo_json, run, shown, store_options
from ._inspect import HEADER_FIELDS, header, resolve_checkpoint
from ._keys import key_options
from ._output import stamp

__all__ = ["Difference", "diff", "differences"]

Kind = Literal["added", "removed", "changed"]
SIGNS: dict[Kind, str] = {"added": "+", "removed": "-", "changed": "~"}
STYLES: dict[Kind, str] = {"added": "green", "removed": "red", "changed": "yellow"}
REDUNDANT = frozenset({"checkpoint_id", "checksum"})
"""Header fields the lines for people leave out: the ids head the output, and the checksum
changes exactly when the payload lines show a change (``--json`` keeps both)."""
VALUE_WIDTH = 80
"""The longest value printed on a line for people (``--json`` keeps every value whole)."""


@dataclass(frozen=True, slots=True)
class Difference:
    """One changed place: a header field or a payload path, and its values on each side.

    ``old`` is ``None`` for an added path and ``new`` for a removed one (``kind`` tells a
    removed path from a value that became ``null``).
    """

    path: str
    kind: Kind
    old: JSON = None
    new: JSON = None

    def to_json(self) -> dict[str, JSON]:
        """As ``--json`` prints it."""
        return {"path": self.path, "kind": self.kind, "old": self.old, "new": self.new}

    def line(self, label: str) -> str:
        """One line for people: ``~ label: old -> new``, ``+ label: new``, ``- label: old``."""
        if self.kind == "added":
            values = _short(self.new)
        elif self.kind == "removed":
            values = _short(self.old)
        else:
            values = f"{_short(self.old)} -> {_short(self.new)}"
        return f"{SIGNS[self.kind]} {label}: {values}"


def _short(value: JSON) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]"


def differences(old: Any, new: Any, path: str = "$") -> list[Difference]:
    """Every path where two JSON values differ (lists by position), with both values.

    The same paths as :func:`agent_persist.json_diff`, so a dry run's paths and these agree.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        old_map, new_map = cast("dict[str, JSON]", old), cast("dict[str, JSON]", new)
        found: list[Difference] = []
        for key in sorted(old_map.keys() | new_map.keys()):
            child = _child(path, key)
            if key not in new_map:
                found.append(Difference(child, "removed", old=old_map[key]))
            elif key not in old_map:
                found.append(Difference(child, "added", new=new_map[key]))
            else:
                found.extend(differences(old_map[key], new_map[key], child))
        return found
    if isinstance(old, list) and isinstance(new, list):
        old_list, new_list = cast("list[JSON]", old), cast("list[JSON]", new)
        found = []
        for index in range(max(len(old_list), len(new_list))):
            child = f"{path}[{index}]"
            if index >= len(new_list):
                found.append(Difference(child, "removed", old=old_list[index]))
            elif index >= len(old_list):
                found.append(Difference(child, "added", new=new_list[index]))
            else:
                found.extend(differences(old_list[index], new_list[index], child))
        return found
    if type(old) is not type(new) or old != new:  # pyright: ignore[reportUnknownArgumentType]
        return [Difference(path, "changed", old=cast("JSON", old), new=cast("JSON", new))]
    return []


def header_differences(old: Envelope, new: Envelope) -> list[Difference]:
    """The header fields that differ; times to the second, or finer when that hides a change."""
    old_header, new_header = header(old), header(new)
    if old.created_at != new.created_at and old_header["created_at"] == new_header["created_at"]:
        old_header["created_at"] = stamp(old.created_at, precise=True)
        new_header["created_at"] = stamp(new.created_at, precise=True)
    return [
        Difference(name, "changed", old=old_header[name], new=new_header[name])
        for name in HEADER_FIELDS
        if old_header[name] != new_header[name]
    ]


async def _pair(
    store: BaseStore, thread_id: str, old_id: str | None, new_id: str | None
) -> tuple[Envelope, Envelope]:
    """The two checkpoints: ``new_id`` (default: the head) and ``old_id`` (default: its parent)."""
    new = await store.get(
        thread_id, None if new_id is None else await resolve_checkpoint(store, thread_id, new_id)
    )
    if old_id is not None:
        return await store.get(thread_id, await resolve_checkpoint(store, thread_id, old_id)), new
    if new.parent_id is None:
        raise CheckpointNotFoundError(
            f"checkpoint {new.checkpoint_id} of thread {shown(thread_id)} has no parent to "
            "compare with; name checkpoint A"
        )
    return await store.get(thread_id, new.parent_id), new


@click.command(
    cls=Command,
    epilog=EXIT_CODES,
    short_help="Show what changed between two checkpoints, with values.",
)
@store_options
@key_options
@click.argument("thread_id", metavar="THREAD")
@click.argument("old_id", metavar="[A]", required=False)
@click.argument("new_id", metavar="[B]", required=False)
def diff(options: StoreOptions, thread_id: str, old_id: str | None, new_id: str | None) -> None:
    """Show what changed from checkpoint A to checkpoint B of THREAD, with the values.

    B defaults to the thread's head, A to B's parent. A and B may be unique prefixes of
    checkpoint ids (an ambiguous prefix is refused, listing the ids it matches). Each line
    is "~ path: old -> new" for a change, "+ path: new" for an addition, "- path: old" for
    a removal; header fields come first (not the ids and checksum, which always differ),
    then payload paths. Values longer than a line are cut; --json prints every change
    whole as {path, kind, old, new}.
    """
    old, new = run(options, lambda store: _pair(store, thread_id, old_id, new_id))
    fields = header_differences(old, new)
    payload = differences(old.payload, new.payload)
    if options.as_json:
        echo_json(
            {
                "thread_id": thread_id,
                "a": old.checkpoint_id,
                "b": new.checkpoint_id,
                "header": [change.to_json() for change in fields],
                "payload": [change.to_json() for change in payload],
            }
        )
        return
    out = options.out
    out.line(f"a: {old.checkpoint_id} (step {old.step})", style="dim")
    out.line(f"b: {new.checkpoint_id} (step {new.step})", style="dim")
    if not fields and not payload:
        out.line("no differences")
        return
    for change in fields:
        if change.path not in REDUNDANT:
            out.line(change.line(change.path), style=STYLES[change.kind])
    for change in payload:
        out.line(change.line("payload" + change.path[1:]), style=STYLES[change.kind])
