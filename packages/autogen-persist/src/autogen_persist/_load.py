"""Reading a checkpoint for a freshly built team or agent: materialize, then migrate drift.

    loaded = await load_checkpoint(store, "t-1", kind=KIND_TEAM, registry=registry,
                                   component=team, layout=team_layout(team), policy=policy)
    await team.load_state(loaded.payload["team"])     # AutoGen's inline state, migrated

The order matters. The stored payload holds log references, not lists, so the logs are read
back first (:func:`~autogen_persist._logs.read_logs`): migrations then act on the
materialized state, AutoGen's own ``TeamState`` with its lists inline, which is what the
built-in migrations and a user's ``on_fingerprint_change`` handler expect. The configuration
that wrote the checkpoint comes from the thread's ``config`` log; :mod:`autogen_persist.drift`
compares it with the loader's, and ``Registry.upgrade`` applies the drift policy. When a
migration changed the state, :attr:`Loaded.migrated` tells the caller not to trust the old
log references blindly: its tracker verifies each list against them, so the next checkpoint
rewrites in full every list the migration changed. Nothing is written here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from agent_persist import (
    Change,
    DriftPolicy,
    Envelope,
    Registry,
    canonical_json,
    fingerprint,
    saved_config,
)
from agent_persist.envelope import payload_checksum
from agent_persist.errors import ConfigDriftError, ThreadNotFoundError
from agent_persist.stores import CheckpointStore

from ._checkpoints import read_head
from ._layout import Layout, check_layout, layout_problems
from ._logs import LogRef, read_logs
from ._payload import AgentPayload, TeamPayload, parse
from ._plugin import KIND_TEAM
from ._transforms import realign, rename_message_type
from .drift import LAYOUT_CHANGES, config_changes
from .errors import ParticipantsMismatchError

__all__ = ["Loaded", "find_checkpoint", "load_checkpoint"]


@dataclass
class Loaded:
    """A checkpoint read for loading."""

    head: Envelope
    """The stored checkpoint (schema-upgraded, with its log references): the next one's parent."""
    payload: dict[str, Any]
    """Its payload with the logs inline, migrated to the loader's configuration.

    Freshly decoded, but two lists of equal items may share the item objects (see
    :func:`~autogen_persist._logs.read_logs`): read them, do not edit them in place."""
    refs: dict[str, LogRef]
    """The log references the stored payload holds, by log name."""
    migrated: bool = False
    """A migration changed the state: the lists must be verified against ``refs``."""
    changes: list[Change] = field(default_factory=list[Change])
    """How the configuration differs from the one that wrote the checkpoint."""


async def load_checkpoint(
    store: CheckpointStore,
    thread_id: str,
    *,
    kind: str,
    registry: Registry,
    config: dict[str, Any],
    layout: Layout,
    policy: DriftPolicy,
    checkpoint_id: str | None = None,
) -> Loaded:
    """Read, materialize and migrate a thread's head (or a checkpoint) for a new object.

    ``config`` is the new object's :func:`~autogen_persist.drift.drift_config`, taken before
    anything (the durable wrappers) touched the object.

    Raises:
        ConfigDriftError: The policy refuses a configuration change.
        ParticipantsMismatchError: The refused (or unmigrated) changes include the layout.
        MigrationError: A migration raised or returned a bad payload.
    """
    head = await read_head(
        store, thread_id, kind=kind, registry=registry, checkpoint_id=checkpoint_id
    )
    parsed = parse(TeamPayload if kind == KIND_TEAM else AgentPayload, head)
    where = f"checkpoint {head.checkpoint_id!r} of thread {head.thread_id!r}"
    renames = registry.renames(kind)
    current_fp = fingerprint(config["component"])
    old_layout = None if parsed.layout is None else parsed.layout.model_dump()
    changes: list[Change] = []
    drifted = False
    if head.fingerprint != current_fp:  # the same fingerprint: the same configuration
        recorded = await saved_config(store, head)
        old = recorded if recorded is not None else {"layout": old_layout}
        changes = config_changes(old, config, renames=renames)
        drifted = recorded is not None or bool(changes)
    stored, refs = await read_logs(store, head, head.payload, share=True, own=drifted)
    # ``read_logs`` built this tree from freshly decoded store data: nothing else holds it,
    # so the in-place steps below need no copy, and AutoGen's ``load_state`` (or the user)
    # may mutate the result without touching the stored data or a later load. Lists of
    # equal items (the output and the manager's thread) share their item objects: the
    # in-place renames below are idempotent, and AutoGen builds its own objects from them.
    # A drifted load gets them unshared (``own``): the core's migrations then run on this
    # very tree, in place (``Registry.upgrade(..., owned=True)``), with no copy of it.
    payload = cast("dict[str, Any]", stored)
    migrated = False
    for old, new in renames.get("message type", ()):
        migrated = rename_message_type(payload, old, new) or migrated
    result = head
    if drifted:
        # The materialized payload, owned by this load, for the core to migrate in place.
        # Its checksum (one encode, no copy) tells below whether the migrations changed it;
        # the core checks the depth of what the migrations return (or of this, if none ran).
        # Adopted raw state records no fingerprint: the core is given one to see the drift.
        recorded_fp = head.fingerprint
        if recorded_fp is None:
            recorded_fp = fingerprint({"layout": old_layout})
        checksum = payload_checksum(canonical_json(payload, what="payload", max_depth=None))
        probe = head.model_copy(
            update={"payload": payload, "fingerprint": recorded_fp, "checksum": checksum}
        )
        try:
            upgraded = registry.upgrade(
                probe, fingerprint=current_fp, changes=changes, policy=policy, owned=True
            )
        except ConfigDriftError as exc:
            refused = [c for c in exc.changes if c.what in LAYOUT_CHANGES]
            if refused:
                problems = "; ".join(layout_problems(parsed.layout, layout)) or "see below"
                raise ParticipantsMismatchError(
                    f"{where} does not fit this team: {problems}.\n{exc}", exc.changes
                ) from exc
            raise
        payload = cast("dict[str, Any]", upgraded.payload)
        result = head.replace(metadata=upgraded.metadata)
        # Migrated only if the payload changed: a handler that changes nothing (the
        # built-in one for a new system message) costs no check of the lists.
        migrated = migrated or upgraded.checksum != checksum
        if policy is DriftPolicy.MIGRATE and any(c.what in LAYOUT_CHANGES for c in changes):
            migrated = _align(payload, layout) or migrated
    saved = payload.get("layout")
    try:
        check_layout(None if saved is None else Layout.model_validate(saved), layout, where=where)
    except ParticipantsMismatchError as exc:  # accepted, or left over by a user migration
        unmigrated = [c for c in changes if c.what in LAYOUT_CHANGES]
        raise ParticipantsMismatchError(str(exc), unmigrated) from None
    if saved is not None:
        current = layout.model_dump()
        migrated = migrated or saved != current
        payload["layout"] = current
    return Loaded(head=result, payload=payload, refs=refs, migrated=migrated, changes=changes)


async def find_checkpoint(
    store: CheckpointStore,
    thread_id: str,
    *,
    kind: str,
    registry: Registry,
    config: dict[str, Any],
    layout: Layout,
    policy: DriftPolicy,
) -> Loaded | None:
    """:func:`load_checkpoint` of the head, or ``None`` for a thread that does not exist."""
    try:
        return await load_checkpoint(
            store,
            thread_id,
            kind=kind,
            registry=registry,
            config=config,
            layout=layout,
            policy=policy,
        )
    except ThreadNotFoundError:
        return None


def _align(payload: dict[str, Any], layout: Layout) -> bool:
    """After covered layout changes, take the loader's order (same next speaker).

    Whether the order changed.
    """
    saved = payload.get("layout")
    if not isinstance(saved, dict):
        return False
    names = cast("list[str]", cast("dict[str, Any]", saved).get("participants", []))
    if sorted(names) == sorted(layout.participants) and names != layout.participants:
        realign(payload, list(layout.participants))
        return True
    return False
