"""Store-wide maintenance: what a migration would change, running it, and saved configurations.

    report = await dry_run(store, registry)                 # reads everything, writes nothing
    print(report.count("would migrate"), "checkpoints would change")
    result = await migrate_store(store, registry, progress=lambda done, total: ...)
    print(result.counts())                                  # migrated / skipped / failed
    old = await saved_config(store, head)                   # the config that wrote ``head``

This module sits above the stores and the migrations: :mod:`agent_persist.migrations` and
:mod:`agent_persist.drift` stay pure functions on JSON, and whatever reads or writes a whole
store lives here, so the ``agent-persist`` command and a program call the same code.

A migration brings every thread's head to its kind's current schema version as a new
checkpoint written with ``head.next(...)``: its parent is the old head and
``metadata["migrated_from"]`` holds the old version. Nothing is rewritten in place, so
history is never lost, and a worker that wrote the thread meanwhile makes the write fail
with ``ConflictError`` (an outcome ``failed``) instead of being overwritten. A rerun skips
heads already current, so an interrupted run is resumed by running it again. Heads from a
future version, and heads of a kind the registry does not know, are skipped, never written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

from ._json import JSON, json_diff
from .drift import CONFIG_LOG
from .envelope import Envelope
from .errors import AgentPersistError, StoreUnavailableError
from .migrations import Registry, default_registry
from .stores.base import CheckpointStore, ThreadInfo

__all__ = [
    "DryRunEntry",
    "DryRunOutcome",
    "DryRunReport",
    "HeadOutcome",
    "MigrationOutcome",
    "MigrationReport",
    "Progress",
    "dry_run",
    "migrate_store",
    "saved_config",
]

logger = logging.getLogger("agent_persist")

Progress = Callable[[int, int], None]
"""Called with ``(done, total)``: once with ``done == 0`` when the total is known, then after
each unit of work (a thread, or a head that needed work), so a caller can draw a bar."""

DryRunOutcome = Literal["current", "would migrate", "error"]
MigrationOutcome = Literal["migrated", "skipped", "failed"]

UNKNOWN_KIND = "unknown kind"
"""The ``reason`` of a head skipped because no registered kind matches it."""

DATA_ERRORS = (AgentPersistError, ValueError, TypeError, LookupError, RecursionError)
"""What reading or upgrading damaged data raises (a store lets ``RecursionError`` through on
deep nesting); connection and file errors are not among them, so a run that reports damage
per thread still stops when the store goes away."""


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split()) or type(exc).__name__}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# -- the dry run --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DryRunEntry:
    """One checkpoint's fate (``checkpoint_id`` is ``None`` when the thread cannot be read)."""

    thread_id: str
    checkpoint_id: str | None
    kind: str | None
    from_version: int | None
    to_version: int | None
    outcome: DryRunOutcome
    migrations: list[str] = field(default_factory=list[str])
    changes: list[str] = field(default_factory=list[str])
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DryRunReport:
    """The entries of a dry run, with counts by outcome."""

    entries: list[DryRunEntry]

    def count(self, outcome: DryRunOutcome) -> int:
        """How many checkpoints have this outcome."""
        return sum(1 for entry in self.entries if entry.outcome == outcome)


def _plan_checkpoint(registry: Registry, envelope: Envelope) -> DryRunEntry:
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


async def dry_run(
    store: CheckpointStore,
    registry: Registry | None = None,
    *,
    progress: Progress | None = None,
) -> DryRunReport:
    """Report, for every checkpoint in ``store``, what upgrading it would do; writes nothing.

    Args:
        store: The store, set up.
        registry: Kinds and migrations (default: the installed plugins').
        progress: Called with ``(threads done, threads)`` as the threads are read.
    """
    registry = registry or default_registry()
    entries: list[DryRunEntry] = []
    threads = [t for t in await store.list_threads() if t.head_id is not None]
    if progress is not None:
        progress(0, len(threads))
    for done, thread in enumerate(threads, start=1):
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
        else:
            entries.extend(_plan_checkpoint(registry, envelope) for envelope in checkpoints)
        if progress is not None:
            progress(done, len(threads))
    return DryRunReport(entries)


# -- the migration ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeadOutcome:
    """What happened to one thread's head."""

    thread_id: str
    checkpoint_id: str | None
    kind: str | None
    from_version: int | None
    outcome: MigrationOutcome
    to_version: int | None = None
    new_checkpoint_id: str | None = None
    reason: str | None = None
    """Why it was skipped (``current``, ``future version``, ``unknown kind``) or the error
    that failed it."""


@dataclass
class MigrationReport:
    """Every head's outcome, and whether the run went to the end."""

    entries: list[HeadOutcome] = field(default_factory=list[HeadOutcome])
    seconds: float = 0.0
    completed: bool = False

    def of(self, outcome: MigrationOutcome) -> list[HeadOutcome]:
        """The entries with this outcome."""
        return [entry for entry in self.entries if entry.outcome == outcome]

    def counts(self) -> dict[str, int]:
        """How many heads were migrated, skipped (and why) and failed."""
        skipped = self.of("skipped")
        return {
            "migrated": len(self.of("migrated")),
            "skipped": len(skipped),
            "skipped_current": sum(1 for e in skipped if e.reason == "current"),
            "skipped_future": sum(1 for e in skipped if e.reason == "future version"),
            "skipped_unknown_kind": sum(1 for e in skipped if e.reason == UNKNOWN_KIND),
            "failed": len(self.of("failed")),
        }

    def notes(self) -> list[str]:
        """One line per kind the registry does not know: its heads were skipped."""
        kinds: dict[str, int] = {}
        for entry in self.of("skipped"):
            if entry.reason == UNKNOWN_KIND and entry.kind is not None:
                kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
        return unknown_kind_notes(kinds, "head")

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON (what ``agent-persist migrate --report`` writes)."""
        return {
            "dry_run": False,
            "completed": self.completed,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "notes": self.notes(),
            **{
                name: [asdict(e) for e in self.of(name)]
                for name in ("migrated", "skipped", "failed")
            },
        }


def unknown_kind_notes(kinds: Mapping[str, int], noun: str) -> list[str]:
    """One note per kind no registry knows: how many of it (counted in ``noun``) were skipped."""
    return [
        f"kind {kind!r} is not registered by any plugin; skipped {_plural(count, noun)}"
        for kind, count in sorted(kinds.items())
    ]


def _decide(registry: Registry, info: ThreadInfo) -> HeadOutcome | None:
    """The outcome decided from the listing alone, or ``None`` when the head needs work."""
    base = (info.thread_id, info.head_id, info.kind, info.schema_version)
    if info.kind is None or info.schema_version is None:
        return None
    if info.kind not in registry.kinds:
        return HeadOutcome(*base, "skipped", reason=UNKNOWN_KIND)
    try:
        current = registry.current_version(info.kind)
    except AgentPersistError as exc:
        return HeadOutcome(*base, "failed", reason=_error(exc))
    if info.schema_version == current:
        return HeadOutcome(*base, "skipped", to_version=current, reason="current")
    if info.schema_version > current:
        return HeadOutcome(*base, "skipped", to_version=current, reason="future version")
    return None


async def _migrate_head(
    store: CheckpointStore, registry: Registry, info: ThreadInfo
) -> HeadOutcome:
    """Upgrade the thread's head and put it as the new head; bad data fails the head only."""
    base = (info.thread_id, info.head_id, info.kind, info.schema_version)
    try:
        head = await store.get(info.thread_id)
        base = (info.thread_id, head.checkpoint_id, head.kind, head.schema_version)
        if head.kind not in registry.kinds:
            return HeadOutcome(*base, "skipped", reason=UNKNOWN_KIND)
        current = registry.current_version(head.kind)
        if head.schema_version >= current:  # written meanwhile, by a worker or a rerun
            reason = "current" if head.schema_version == current else "future version"
            return HeadOutcome(*base, "skipped", to_version=current, reason=reason)
        upgraded = registry.upgrade(head)
        written = await store.put(
            upgraded.next(
                payload=upgraded.payload,
                metadata={**head.metadata, "migrated_from": head.schema_version},
            )
        )
    except StoreUnavailableError:
        raise
    except DATA_ERRORS as exc:  # a damaged head fails its thread, not the run
        return HeadOutcome(*base, "failed", reason=_error(exc))
    return HeadOutcome(
        *base,
        "migrated",
        to_version=written.schema_version,
        new_checkpoint_id=written.checkpoint_id,
    )


async def migrate_store(
    store: CheckpointStore,
    registry: Registry | None = None,
    *,
    fail_fast: bool = False,
    concurrency: int = 8,
    report: MigrationReport | None = None,
    progress: Progress | None = None,
) -> MigrationReport:
    """Migrate every out-of-date head in ``store``; fills and returns ``report``.

    Args:
        store: The store, set up.
        registry: Kinds and migrations (default: the installed plugins').
        fail_fast: Stop starting new heads after the first failure.
        concurrency: Heads migrated at once (each is its own atomic put).
        report: Filled as the run goes, so a caller still holds it after an interruption.
        progress: Called with ``(heads done, heads needing work)``.

    Raises:
        ValueError: ``concurrency`` is below 1.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
    registry = registry or default_registry()
    report = report if report is not None else MigrationReport()
    started = time.perf_counter()
    pending: list[ThreadInfo] = []
    for info in await store.list_threads():
        if info.head_id is None:
            continue  # logs only (a session): there is no checkpoint to migrate
        decided = _decide(registry, info)
        if decided is None:
            pending.append(info)
        else:
            report.entries.append(decided)
    total = len(pending)
    if progress is not None:
        progress(0, total)
    queue = iter(pending)
    done = 0
    stop = False

    async def worker() -> None:
        nonlocal stop, done
        for info in queue:
            if stop:
                return
            outcome = await _migrate_head(store, registry, info)
            report.entries.append(outcome)
            done += 1
            if progress is not None:
                progress(done, total)
            if outcome.outcome == "failed" and fail_fast:
                stop = True

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*workers)
        report.completed = not stop
    finally:  # one worker raised (the store went away) or we were cancelled: stop the others
        for running in workers:
            running.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        report.seconds = time.perf_counter() - started
    counts = report.counts()
    logger.info(
        "migration of %d heads: %d migrated, %d skipped, %d failed in %.2fs",
        len(report.entries),
        counts["migrated"],
        counts["skipped"],
        counts["failed"],
        report.seconds,
    )
    return report


# -- saved configurations -----------------------------------------------------------------------


async def saved_config(store: CheckpointStore, envelope: Envelope) -> JSON | None:
    """The configuration that wrote ``envelope``, or ``None`` when it was not recorded.

    Read from the thread's ``config`` log as ``envelope`` saw it (see
    :func:`agent_persist.drift.config_appends`), so an old checkpoint's configuration can be
    diffed against today's long after it changed.
    """
    if envelope.fingerprint is None or CONFIG_LOG not in envelope.logs:
        return None
    try:
        records = await store.read_log(envelope.thread_id, CONFIG_LOG, at=envelope)
    except AgentPersistError:
        return None
    for record in reversed(records):
        if isinstance(record, Mapping):
            fields = cast("Mapping[str, JSON]", record)
            if fields.get("fingerprint") == envelope.fingerprint:
                return fields.get("config")
    return None
