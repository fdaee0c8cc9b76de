"""What a migration of a whole store would change, without writing anything.

    report = await dry_run(store)
    for entry in report.entries:
        print(entry.thread_id, entry.checkpoint_id, entry.outcome, entry.changes)

Every checkpoint of every thread is read and upgraded in memory with the registry; the
report says which would change, along which migrations, and which paths of their payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ._json import json_diff
from .envelope import Envelope
from .errors import AgentPersistError
from .migrations import Registry, default_registry
from .stores.base import CheckpointStore

__all__ = ["DryRunEntry", "DryRunReport", "dry_run"]

Outcome = Literal["current", "would migrate", "error"]


@dataclass(frozen=True, slots=True)
class DryRunEntry:
    """One checkpoint's fate (``checkpoint_id`` is ``None`` when the thread cannot be read)."""

    thread_id: str
    checkpoint_id: str | None
    kind: str | None
    from_version: int | None
    to_version: int | None
    outcome: Outcome
    migrations: list[str] = field(default_factory=list[str])
    changes: list[str] = field(default_factory=list[str])
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DryRunReport:
    """The entries of a dry run, with counts by outcome."""

    entries: list[DryRunEntry]

    def count(self, outcome: Outcome) -> int:
        """How many checkpoints have this outcome."""
        return sum(1 for entry in self.entries if entry.outcome == outcome)


def _plan(registry: Registry, envelope: Envelope) -> DryRunEntry:
    try:
        path = registry.path(envelope)
        upgraded = registry.upgrade(envelope)
    except AgentPersistError as exc:
        return DryRunEntry(
            envelope.thread_id,
            envelope.checkpoint_id,
            envelope.kind,
            envelope.schema_version,
            None,
            "error",
            error=f"{type(exc).__name__}: {exc}",
        )
    return DryRunEntry(
        envelope.thread_id,
        envelope.checkpoint_id,
        envelope.kind,
        envelope.schema_version,
        upgraded.schema_version,
        "would migrate" if path else "current",
        migrations=[f"{a}->{b}" for a, b in path],
        changes=json_diff(envelope.payload, upgraded.payload),
    )


async def dry_run(store: CheckpointStore, registry: Registry | None = None) -> DryRunReport:
    """Report, for every checkpoint in ``store``, what upgrading it would do."""
    registry = registry or default_registry()
    entries: list[DryRunEntry] = []
    for thread in await store.list_threads():
        if thread.head_id is None:
            continue
        try:
            checkpoints = await store.list_checkpoints(thread.thread_id)
        except AgentPersistError as exc:
            entries.append(
                DryRunEntry(
                    thread.thread_id,
                    None,
                    thread.kind,
                    None,
                    None,
                    "error",
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
            continue
        entries.extend(_plan(registry, envelope) for envelope in checkpoints)
    return DryRunReport(entries)
