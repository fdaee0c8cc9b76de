"""``migrate``: bring every thread's head to the current schema version, as a new checkpoint.

    agent-persist migrate --url postgresql://db/agents --dry-run      # what would change
    agent-persist migrate --url postgresql://db/agents --report migration.json

The work is :func:`agent_persist.maintenance.migrate_store` (and ``dry_run``), which a
program can call too; this module draws the progress bar, prints the summary and writes the
report. Interrupted (Ctrl-C), the run still writes its report; it lists the heads whose
write was confirmed, and up to ``--concurrency`` writes in flight may have landed too (a
rerun finds them current and skips them).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from ..maintenance import (
    DryRunEntry,
    DryRunReport,
    MigrationReport,
    dry_run,
    migrate_store,
    unknown_kind_notes,
)
from ..migrations import Registry
from ..stores.base import BaseStore
from ._app import (
    EXIT_CODES,
    EXIT_FAILED,
    Command,
    StoreOptions,
    echo_json,
    fail,
    run,
    shown,
    store_options,
)
from ._output import plural, progress_bar, stamp
from ._plugins import plugin_option

__all__ = ["migrate"]

PLUGIN_HINT = " (--plugin MODULE:ATTR loads its migrations)"
"""Added to a note about a kind no plugin registers: how to give the command its migrations."""

MAX_CONCURRENCY = 1000


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
        "notes": [note + PLUGIN_HINT for note in unknown_kind_notes(kinds, "checkpoint")],
        "would_migrate": [asdict(e) for e in entries if e.outcome == "would migrate"],
        "future": [asdict(e) for e in future],
        "errors": [asdict(e) for e in errors],
    }


def _write_report(path: Path | None, body: dict[str, Any]) -> None:
    if path is None:
        return
    body = {**body, "written_at": stamp(datetime.now(timezone.utc))}
    try:
        path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write the report {str(path)!r}: {exc.strerror or exc}") from None


@click.command(
    cls=Command,
    epilog=EXIT_CODES,
    short_help="Upgrade out-of-date heads to the current schema version.",
)
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
    back as a new head checkpoint (parent: the old head; metadata "migrated_from": the old
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

    async def work(store: BaseStore) -> MigrationReport:
        with progress_bar("migrating", force=options.config.terminal) as advance:
            return await migrate_store(
                store,
                registry,
                fail_fast=fail_fast,
                concurrency=concurrency,
                report=report,
                progress=advance,
            )

    try:
        run(options, work)
    except BaseException:  # interrupted, or the store went away: what was done is on record
        with contextlib.suppress(click.exceptions.Exit):  # its line is printed; ours wins
            _write_report(report_path, report.to_json())
        raise
    body = report.to_json()
    body["notes"] = [note + PLUGIN_HINT for note in body["notes"]]
    _write_report(report_path, body)
    out = options.out
    if options.as_json:
        echo_json(body)
    else:
        for entry in report.of("failed"):
            click.echo(f"failed {shown(entry.thread_id)}: {entry.reason}", err=True)
        for note in body["notes"]:
            out.line(f"note: {note}", style="yellow")
        counts = report.counts()
        unknown = counts["skipped_unknown_kind"]
        out.line(
            f"migrated {counts['migrated']}, skipped {counts['skipped']} "
            f"({counts['skipped_current']} current, {counts['skipped_future']} future version"
            f"{f', {unknown} unknown kind' if unknown else ''}), "
            f"failed {counts['failed']}{'' if report.completed else ' (stopped early)'} "
            f"in {report.seconds:.2f}s",
            style="red" if counts["failed"] else "green",
        )
    if report.of("failed"):
        raise click.exceptions.Exit(EXIT_FAILED)


def _dry(options: StoreOptions, registry: Registry, report_path: Path | None) -> None:
    async def work(store: BaseStore) -> tuple[DryRunReport, float]:
        started = time.perf_counter()
        with progress_bar("reading", force=options.config.terminal) as advance:
            result = await dry_run(store, registry, progress=advance)
        return result, time.perf_counter() - started

    result, seconds = run(options, work)
    body = _dry_run_json(result, seconds, set(registry.kinds))
    _write_report(report_path, body)
    out = options.out
    if options.as_json:
        echo_json(body)
    else:
        counts = body["counts"]
        for entry in body["errors"]:
            click.echo(f"would fail {shown(entry['thread_id'])}: {entry['error']}", err=True)
        for note in body["notes"]:
            out.line(f"note: {note}", style="yellow")
        threads = len({e["thread_id"] for e in body["would_migrate"]})
        out.line(
            f"dry run: {counts['would_migrate']} of {plural(counts['checkpoints'], 'checkpoint')}"
            f" in {plural(threads, 'thread')} would migrate, {counts['current']} current, "
            f"{counts['future']} future version, {counts['errors']} would fail "
            f"in {seconds:.2f}s (nothing written; a real run writes one new head per thread "
            "whose head is out of date)",
            style="red" if counts["errors"] else None,
        )
    if body["errors"]:
        raise click.exceptions.Exit(EXIT_FAILED)
