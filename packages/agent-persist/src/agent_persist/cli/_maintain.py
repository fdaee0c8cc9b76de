"""``verify`` reads everything back; ``prune`` drops old checkpoints.

    agent-persist verify --url redis://localhost:6379/0          # exit 1 if anything is wrong
    agent-persist prune --url sqlite:///agents.db --all --older-than 30d --keep-last 5

``verify`` is what to run after a restore, a migration or a disk scare: every checkpoint of
every thread is decoded (checksum, envelope format), its schema version checked against the
registry (a known kind, not from the future, a migration path to current), its parent link
followed and every log read as it saw it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass
from datetime import timedelta

import click

from ..envelope import Envelope
from ..errors import AgentPersistError, StoreUnavailableError
from ..migrations import Registry
from ..stores.base import BaseStore, ThreadInfo
from ._app import (
    EXIT_CODES,
    EXIT_FAILED,
    StoreOptions,
    echo_json,
    one_line,
    run,
    shown,
    store_options,
)
from ._transfer import LogView

__all__ = ["parse_duration", "prune", "verify", "verify_store"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong, and where: the thread, the checkpoint (if known), the log (if any)."""

    thread_id: str
    checkpoint_id: str | None
    problem: str
    log: str | None = None

    def line(self) -> str:
        """The problem as one line for people."""
        where = f"thread {shown(self.thread_id)}"
        if self.checkpoint_id is not None:
            where += f" checkpoint {self.checkpoint_id}"
        if self.log is not None:
            where += f" log {shown(self.log)}"
        return f"{where}: {self.problem}"


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {one_line(exc)}"


async def _check(
    store: BaseStore,
    registry: Registry,
    thread_id: str,
    envelope: Envelope,
    views: dict[str, LogView],
) -> list[Problem]:
    """Check one checkpoint; ``views`` are its logs as the previous one saw them.

    Reading each checkpoint's logs as changes from the previous checkpoint's decodes every
    item at least once without reading a long log again for every checkpoint.
    """
    problems: list[Problem] = []
    where = (thread_id, envelope.checkpoint_id)
    if envelope.thread_id != thread_id:
        problems.append(Problem(*where, f"belongs to thread {envelope.thread_id!r}"))
    try:
        registry.path(envelope)
    except AgentPersistError as exc:
        problems.append(Problem(*where, _error(exc)))
    for name, version in sorted(envelope.logs.items()):
        try:
            view = views.setdefault(name, LogView())
            await view.change_to(store, thread_id, name, envelope, version)
        except StoreUnavailableError:
            raise
        except AgentPersistError as exc:
            problems.append(Problem(*where, _error(exc), log=name))
            views[name] = LogView()  # read the next checkpoint's view whole
    return problems


async def _walk(
    store: BaseStore, info: ThreadInfo
) -> tuple[list[Envelope], list[Problem], set[str]]:
    """Read a thread one checkpoint at a time, stepping over the ones that cannot be read.

    Used when the whole listing fails: the unreadable checkpoint's id is the parent of the
    one read before it (or the thread's head), and ``before=`` that id goes on past it.
    """
    read: list[Envelope] = []
    problems: list[Problem] = []
    unreadable: set[str] = set()
    cursor: str | None = None
    expected = info.head_id
    for _ in range(info.checkpoint_count + 1):
        try:
            page = await store.list_checkpoints(info.thread_id, limit=1, before=cursor)
        except StoreUnavailableError:
            raise
        except AgentPersistError as exc:
            problems.append(Problem(info.thread_id, expected, _error(exc)))
            if expected is None or expected == cursor:
                break
            unreadable.add(expected)
            cursor, expected = expected, None
            continue
        if not page:
            break
        read.append(page[0])
        cursor, expected = page[0].checkpoint_id, page[0].parent_id
    return read, problems, unreadable


async def verify_thread(
    store: BaseStore, registry: Registry, info: ThreadInfo
) -> tuple[int, list[Problem]]:
    """Check every checkpoint of one thread; returns how many were read and the problems."""
    problems: list[Problem] = []
    unreadable: set[str] = set()
    try:
        checkpoints = await store.list_checkpoints(info.thread_id)
    except StoreUnavailableError:
        raise
    except AgentPersistError:
        checkpoints, problems, unreadable = await _walk(store, info)
    for newer, older in itertools.pairwise(checkpoints):
        if newer.parent_id != older.checkpoint_id and newer.parent_id not in unreadable:
            problems.append(
                Problem(
                    info.thread_id,
                    newer.checkpoint_id,
                    f"parent {newer.parent_id!r} is not the previous checkpoint "
                    f"{older.checkpoint_id!r}",
                )
            )
    views: dict[str, LogView] = {}
    for envelope in reversed(checkpoints):
        problems.extend(await _check(store, registry, info.thread_id, envelope, views))
    return len(checkpoints), problems


async def verify_store(store: BaseStore, registry: Registry) -> tuple[int, int, list[Problem]]:
    """Verify every thread: returns threads and checkpoints read, and every problem found."""
    threads = checkpoints = 0
    problems: list[Problem] = []
    for info in await store.list_threads():
        if info.head_id is None:
            continue
        count, found = await verify_thread(store, registry, info)
        threads += 1
        checkpoints += count
        problems.extend(found)
    return threads, checkpoints, problems


@click.command(epilog=EXIT_CODES)
@store_options
def verify(options: StoreOptions) -> None:
    """Read every checkpoint of every thread and report anything wrong.

    Checks checksums and envelope formats (by decoding), that each schema version is of a
    known kind, not from the future and has a migration path, parent links, and that every
    log reads back as each checkpoint saw it. Exit code 1 when any problem is found; each is
    listed with its thread, checkpoint and log.
    """
    registry = options.config.get_registry()
    threads, checkpoints, problems = run(options, lambda store: verify_store(store, registry))
    if options.as_json:
        echo_json(
            {
                "threads": threads,
                "checkpoints": checkpoints,
                "ok": not problems,
                "problems": [asdict(p) for p in problems],
            }
        )
    else:
        for problem in problems:
            click.echo(problem.line())
        verdict = f"{len(problems)} problems" if problems else "ok"
        click.echo(f"verified {threads} threads, {checkpoints} checkpoints: {verdict}")
    if problems:
        raise click.exceptions.Exit(EXIT_FAILED)


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``1d12h``, ``90m``, ``2w``, ``45s`` as a timedelta."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30d, 12h, 1d12h, 90m)")
    total = timedelta()
    for number, unit in parts:
        total += timedelta(**{_UNITS[unit]: float(number)})
    return total


class Duration(click.ParamType):  # pyright: ignore[reportMissingTypeArgument] (click 8.1/8.5)
    """A click parameter type for :func:`parse_duration`."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        """Parse the option's text, or fail with click's usage error."""
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command(epilog=EXIT_CODES)
@store_options
@click.argument("thread_ids", metavar="[THREAD]...", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Prune every thread of the namespace.")
@click.option(
    "--older-than", type=Duration(), default=None, help="Drop checkpoints older than 30d, 12h..."
)
@click.option(
    "--keep-last", type=click.IntRange(min=1), default=None, help="Keep the newest N checkpoints."
)
def prune(
    options: StoreOptions,
    thread_ids: tuple[str, ...],
    every: bool,
    older_than: timedelta | None,
    keep_last: int | None,
) -> None:
    """Delete old checkpoints (never a thread's head) with the store's own prune.

    With both options, a checkpoint goes when it is outside the newest N and older than the
    age. Logs keep what the remaining checkpoints still see.
    """
    if bool(thread_ids) == every:
        raise click.UsageError("name one or more THREADs, or pass --all")
    if older_than is None and keep_last is None:
        raise click.UsageError("pass --older-than, --keep-last or both")

    async def work(store: BaseStore) -> dict[str, int]:
        ids = list(thread_ids)
        if every:
            ids = [t.thread_id for t in await store.list_threads() if t.head_id is not None]
        removed: dict[str, int] = {}
        for thread_id in ids:
            removed[thread_id] = await store.prune(
                thread_id, keep_last=keep_last, older_than=older_than
            )
        return removed

    removed = run(options, work)
    total = sum(removed.values())
    if options.as_json:
        echo_json({"removed": removed, "total": total})
        return
    for thread_id, count in removed.items():
        if count:
            click.echo(f"{shown(thread_id)}: {count} removed")
    click.echo(f"pruned {total} checkpoints in {len(removed)} threads")
