"""``migrate``: bring every thread's head to the current schema version, as a new checkpoint.

    agent-persist migrate --url postgresql://db/agents --dry-run      # what would change
    agent-persist migrate --url postgresql://db/agents --report migration.json

For each thread whose head is below its kind's current schema version, the head is upgraded
with the registry (the installed adapters' plugins) and written back with ``head.next(...)``:
a new head whose parent is the old one, with ``metadata["migrated_from"]`` set to the old
version. Nothing is rewritten in place, so history is never lost, and a worker that wrote
the thread meanwhile makes the write fail with ``ConflictError`` (reported as failed)
instead of being overwritten. A rerun skips heads already current, so an interrupted run is
resumed by running it again. Heads from a future version are skipped, never rewritten, and
so are heads of a kind no plugin registers (with a note: ``--plugin MODULE:ATTR`` or
``AGENT_PERSIST_PLUGINS`` load a program's own kinds and migrations).

Interrupted (Ctrl-C), the run still writes its report; it lists the heads whose write was
confirmed, and up to ``--concurrency`` writes in flight may have landed too (a rerun finds
them current and skips them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import click

from ..dry_run import DryRunEntry, DryRunReport, dry_run
from ..errors import AgentPersistError, StoreUnavailableError
from ..migrations import Registry
from ..stores.base import BaseStore, ThreadInfo
from ._app import (
    DATA_ERRORS,
    EXIT_CODES,
    EXIT_FAILED,
    StoreOptions,
    echo_json,
    fail,
    one_line,
    run,
    shown,
    stderr_is_tty,
    store_options,
)
from ._plugins import plugin_option

__all__ = ["MigrationReport", "migrate", "migrate_store"]

Outcome = Literal["migrated", "skipped", "failed"]
UNKNOWN_KIND = "unknown kind"
MAX_CONCURRENCY = 1000


@dataclass(frozen=True, slots=True)
class HeadOutcome:
    """What happened to one thread's head."""

    thread_id: str
    checkpoint_id: str | None
    kind: str | None
    from_version: int | None
    outcome: Outcome
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

    def of(self, outcome: Outcome) -> list[HeadOutcome]:
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
        """One line per kind no plugin registers: its heads were skipped."""
        kinds: dict[str, int] = {}
        for entry in self.of("skipped"):
            if entry.reason == UNKNOWN_KIND and entry.kind is not None:
                kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
        return unknown_kind_notes(kinds, "heads")

    def to_json(self) -> dict[str, Any]:
        """The report as written by ``--report``."""
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


def unknown_kind_notes(kinds: dict[str, int], what: str) -> list[str]:
    """The notes for kinds no registry knows: how many ``what`` of each were skipped."""
    return [
        f"kind {kind!r} is not registered by any plugin; skipped {count} {what} "
        "(--plugin MODULE:ATTR loads its migrations)"
        for kind, count in sorted(kinds.items())
    ]


def _plan(registry: Registry, info: ThreadInfo) -> HeadOutcome | None:
    """The outcome decided from the listing alone, or ``None`` when the head needs work."""
    base = (info.thread_id, info.head_id, info.kind, info.schema_version)
    if info.kind is None or info.schema_version is None:
        return None
    if info.kind not in registry.kinds:
        return HeadOutcome(*base, "skipped", reason=UNKNOWN_KIND)
    try:
        current = registry.current_version(info.kind)
    except AgentPersistError as exc:
        return HeadOutcome(*base, "failed", reason=f"{type(exc).__name__}: {one_line(exc)}")
    if info.schema_version == current:
        return HeadOutcome(*base, "skipped", to_version=current, reason="current")
    if info.schema_version > current:
        return HeadOutcome(*base, "skipped", to_version=current, reason="future version")
    return None


async def _migrate_head(store: BaseStore, registry: Registry, info: ThreadInfo) -> HeadOutcome:
    """Upgrade the thread's head and put it as the new head; errors become a failed outcome."""
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
        return HeadOutcome(*base, "failed", reason=f"{type(exc).__name__}: {one_line(exc)}")
    return HeadOutcome(
        *base,
        "migrated",
        to_version=written.schema_version,
        new_checkpoint_id=written.checkpoint_id,
    )


async def migrate_store(
    store: BaseStore,
    registry: Registry,
    *,
    fail_fast: bool = False,
    concurrency: int = 8,
    report: MigrationReport | None = None,
    progress: Callable[[int], None] | None = None,
    total: Callable[[int], None] | None = None,
) -> MigrationReport:
    """Migrate every out-of-date head in ``store``; fills and returns ``report``.

    Args:
        store: The store, set up.
        registry: Kinds and migrations.
        fail_fast: Stop starting new heads after the first failure.
        concurrency: Heads migrated at once (each is its own atomic put).
        report: Filled as the run goes, so a caller still holds it after an interruption.
        progress: Called with 1 after each head that needed work.
        total: Called once with the number of heads that need work.
    """
    report = report if report is not None else MigrationReport()
    started = time.perf_counter()
    pending: list[ThreadInfo] = []
    for info in await store.list_threads():
        if info.head_id is None:
            continue  # logs only (a session): there is no checkpoint to migrate
        decided = _plan(registry, info)
        if decided is None:
            pending.append(info)
        else:
            report.entries.append(decided)
    if total is not None:
        total(len(pending))
    queue = iter(pending)
    stop = False

    async def worker() -> None:
        nonlocal stop
        for info in queue:
            if stop:
                return
            outcome = await _migrate_head(store, registry, info)
            report.entries.append(outcome)
            if progress is not None:
                progress(1)
            if outcome.outcome == "failed" and fail_fast:
                stop = True

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        report.completed = not stop
    finally:
        report.seconds = time.perf_counter() - started
    return report


def _dry_run_json(result: DryRunReport, seconds: float, known: set[str]) -> dict[str, Any]:
    kinds: dict[str, int] = {}  # checkpoints of each kind no registry knows
    entries: list[DryRunEntry] = []
    for entry in result.entries:
        if entry.kind is not None and entry.kind not in known:
            kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
        else:
            entries.append(entry)
    future = [e for e in entries if (e.error or "").startswith("FutureVersionError")]
    errors = [
        e
        for e in entries
        if e.outcome == "error" and not (e.error or "").startswith("FutureVersionError")
    ]
    return {
        "dry_run": True,
        "seconds": round(seconds, 3),
        "counts": {
            "would_migrate": result.count("would migrate"),
            "current": result.count("current"),
            "future": len(future),
            "unknown_kind": sum(kinds.values()),
            "errors": len(errors),
            "checkpoints": len(result.entries),
        },
        "notes": unknown_kind_notes(kinds, "checkpoints"),
        "would_migrate": [asdict(e) for e in entries if e.outcome == "would migrate"],
        "future": [asdict(e) for e in future],
        "errors": [asdict(e) for e in errors],
    }


def _write_report(path: Path | None, body: dict[str, Any]) -> None:
    if path is None:
        return
    body = {**body, "written_at": datetime.now(timezone.utc).isoformat()}
    try:
        path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write the report {str(path)!r}: {exc.strerror or exc}") from None


@click.command(epilog=EXIT_CODES)
@store_options
@plugin_option
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a JSON report: migrated, skipped and failed heads with their errors.",
)
@click.option("--fail-fast", is_flag=True, help="Stop at the first failed head.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=MAX_CONCURRENCY),
    default=8,
    show_default=True,
    help="Threads migrated at once.",
)
def migrate(
    options: StoreOptions,
    plugins: tuple[str, ...],
    dry_run: bool,
    report_path: Path | None,
    fail_fast: bool,
    concurrency: int,
) -> None:
    """Upgrade every thread whose head is below its kind's current schema version.

    Each out-of-date head is upgraded with the installed adapters' migrations and written
    back as a new head checkpoint (parent: the old head; metadata ``migrated_from``: the old
    version), so history stays and a concurrent writer makes it fail instead of being
    overwritten. Heads already current, from a future version, or of a kind no plugin
    registers (a note says so; --plugin loads your own) are skipped. A failure is reported
    and the run goes on (unless --fail-fast); rerunning resumes where it stopped.
    Exit code 1 when any head failed (with --dry-run: when any checkpoint would fail).
    """
    registry = options.config.get_registry(plugins)
    if dry_run:
        _dry(options, registry, report_path)
        return
    report = MigrationReport()
    show_bar = not options.as_json and stderr_is_tty()
    bar: Any = None

    def total(count: int) -> None:
        nonlocal bar
        if show_bar and count:
            bar = click.progressbar(length=count, label="migrating", file=sys.stderr)
            bar.__enter__()

    def progress(step: int) -> None:
        if bar is not None:
            bar.update(step)

    async def work(store: BaseStore) -> MigrationReport:
        try:
            return await migrate_store(
                store,
                registry,
                fail_fast=fail_fast,
                concurrency=concurrency,
                report=report,
                progress=progress,
                total=total,
            )
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)

    try:
        run(options, work)
    except BaseException:  # interrupted, or the store went away: what was done is on record
        with contextlib.suppress(click.exceptions.Exit):  # its line is printed; ours wins
            _write_report(report_path, report.to_json())
        raise
    _write_report(report_path, report.to_json())
    body = report.to_json()
    if options.as_json:
        echo_json(body)
    else:
        for entry in report.of("failed"):
            click.echo(f"failed {shown(entry.thread_id)}: {entry.reason}", err=True)
        for note in report.notes():
            click.echo(f"note: {note}")
        counts = report.counts()
        unknown = counts["skipped_unknown_kind"]
        click.echo(
            f"migrated {counts['migrated']}, skipped {counts['skipped']} "
            f"({counts['skipped_current']} current, {counts['skipped_future']} future version"
            f"{f', {unknown} unknown kind' if unknown else ''}), "
            f"failed {counts['failed']}{'' if report.completed else ' (stopped early)'} "
            f"in {report.seconds:.2f}s"
        )
    if report.of("failed"):
        raise click.exceptions.Exit(EXIT_FAILED)


def _dry(options: StoreOptions, registry: Registry, report_path: Path | None) -> None:
    async def work(store: BaseStore) -> tuple[DryRunReport, float]:
        started = time.perf_counter()
        result = await dry_run(store, registry)
        return result, time.perf_counter() - started

    result, seconds = run(options, work)
    body = _dry_run_json(result, seconds, set(registry.kinds))
    _write_report(report_path, body)
    if options.as_json:
        echo_json(body)
    else:
        counts = body["counts"]
        for entry in body["errors"]:
            click.echo(f"would fail {shown(entry['thread_id'])}: {entry['error']}", err=True)
        for note in body["notes"]:
            click.echo(f"note: {note}")
        threads = len({e["thread_id"] for e in body["would_migrate"]})
        click.echo(
            f"dry run: {counts['would_migrate']} of {counts['checkpoints']} checkpoints in "
            f"{threads} threads would migrate, {counts['current']} current, "
            f"{counts['future']} future version, {counts['errors']} would fail "
            f"in {seconds:.2f}s (nothing written; a real run writes one new head per thread "
            "whose head is out of date)"
        )
    if body["errors"]:
        raise click.exceptions.Exit(EXIT_FAILED)
