"""``verify``: read everything back and report what is wrong, thread by thread.

    agent-persist verify --url redis://localhost:6379/0          # exit 1 if anything is wrong
    agent-persist verify --plugin myapp.persist:registry         # your kinds' versions too

``verify`` is what to run after a restore, a migration or a disk scare. Whatever its kind,
every checkpoint of every thread is decoded (header, checksum, envelope format), its parent
link followed and every log read as it saw it; a damaged checkpoint or log item is named
(thread, checkpoint, log, position) and the walk goes on past it. For a kind the registry
knows, the schema version is checked too (not from the future, a migration path to
current); a kind no plugin registers is a note, not a problem, so ``verify && export``
works for a program's own kinds. Exit 1 when any problem is found.
"""

from __future__ import annotations

import itertools
import shlex
from dataclasses import asdict, dataclass, field

import click

from ..damaged_items import damaged, read_around_damage
from ..envelope import Envelope
from ..errors import AgentPersistError, StoreUnavailableError
from ..maintenance import Progress
from ..migrations import Registry
from ..stores.base import BaseStore, ThreadInfo
from ._app import (
    DATA_ERRORS,
    EXIT_CODES,
    EXIT_FAILED,
    Command,
    StoreOptions,
    echo_json,
    one_line,
    run,
    shown,
    store_options,
)
from ._keys import key_options
from ._output import plural, progress_bar
from ._plugins import plugin_option
from ._transfer import LogView

__all__ = ["Problem", "VerifyReport", "verify", "verify_store"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong, and where: thread, checkpoint (if known), log and item (if any)."""

    thread_id: str
    checkpoint_id: str | None
    problem: str
    log: str | None = None
    position: int | None = None

    def line(self) -> str:
        """The problem as one line for people."""
        where = f"thread {shown(self.thread_id)}"
        if self.checkpoint_id is not None:
            where += f" checkpoint {self.checkpoint_id}"
        if self.log is not None:
            where += f" log {shown(self.log)}"
        if self.position is not None:
            where += f" item {self.position}"
        return f"{where}: {self.problem}"


@dataclass
class VerifyReport:
    """What a verification read and found."""

    threads: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list[Problem])
    unknown_kinds: dict[str, int] = field(default_factory=dict[str, int])
    """Kinds no registry knows, with how many threads hold them."""

    def notes(self) -> list[str]:
        """One line per kind no plugin registers: what was and was not checked."""
        return [
            f"kind {kind!r} is not registered by any plugin; checked structure and checksums "
            f"only ({plural(count, 'thread')}; --plugin MODULE:ATTR checks its schema versions too)"
            for kind, count in sorted(self.unknown_kinds.items())
        ]


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(exc)}"


class _ThreadCheck:
    """Checks one thread's checkpoints, oldest first, carrying its logs from one to the next.

    Reading each checkpoint's logs as changes from the previous checkpoint's decodes every
    item at least once without reading a long log again for every checkpoint.
    """

    def __init__(self, store: BaseStore, registry: Registry, report: VerifyReport) -> None:
        self.store = store
        self.registry = registry
        self.known = set(registry.kinds)
        self.report = report
        self.views: dict[str, LogView] = {}
        self.seen: set[tuple[str, int, str]] = set()
        """Damaged items already reported: each once, by the oldest checkpoint seeing it."""

    def add(self, problem: Problem) -> None:
        self.report.problems.append(problem)

    async def checkpoint(self, thread_id: str, envelope: Envelope) -> None:
        where = (thread_id, envelope.checkpoint_id)
        if envelope.thread_id != thread_id:
            self.add(Problem(*where, f"belongs to thread {envelope.thread_id!r}"))
        if envelope.kind in self.known:
            try:
                self.registry.path(envelope)
            except AgentPersistError as exc:
                self.add(Problem(*where, _error(exc)))
        for name, version in sorted(envelope.logs.items()):
            await self.log(thread_id, envelope, name, version)

    async def log(self, thread_id: str, envelope: Envelope, name: str, version: int) -> None:
        view = self.views.setdefault(name, LogView())
        try:
            await view.change_to(self.store, thread_id, name, envelope, version)
            return
        except StoreUnavailableError:
            raise
        except DATA_ERRORS as exc:
            failure = exc
        parts = await read_around_damage(self.store, thread_id, name, at=envelope)
        bad = {position: _error(exc) for position, exc in damaged(parts).items()}
        if not bad:  # the whole read failed, item by item each one reads
            bad = {-1: _error(failure)}
        for position, problem in sorted(bad.items()):
            if (name, position, problem) in self.seen:
                continue
            self.seen.add((name, position, problem))
            self.add(
                Problem(
                    thread_id,
                    envelope.checkpoint_id,
                    problem,
                    log=name,
                    position=None if position < 0 else position,
                )
            )
        self.views[name] = LogView()  # the next checkpoint reads its view whole


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
        except DATA_ERRORS as exc:
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


async def verify_thread(store: BaseStore, registry: Registry, info: ThreadInfo) -> VerifyReport:
    """Check every checkpoint of one thread; the report counts one thread."""
    report = VerifyReport(threads=1)
    unreadable: set[str] = set()
    try:
        checkpoints = await store.list_checkpoints(info.thread_id)
    except StoreUnavailableError:
        raise
    except DATA_ERRORS:
        checkpoints, report.problems, unreadable = await _walk(store, info)
    report.checkpoints = len(checkpoints)
    for newer, older in itertools.pairwise(checkpoints):
        if newer.parent_id != older.checkpoint_id and newer.parent_id not in unreadable:
            report.problems.append(
                Problem(
                    info.thread_id,
                    newer.checkpoint_id,
                    f"parent {newer.parent_id!r} is not the previous checkpoint "
                    f"{older.checkpoint_id!r}",
                )
            )
    known = set(registry.kinds)
    for kind in {cp.kind for cp in checkpoints if cp.kind not in known}:
        report.unknown_kinds[kind] = 1
    check = _ThreadCheck(store, registry, report)
    for envelope in reversed(checkpoints):
        await check.checkpoint(info.thread_id, envelope)
    return report


async def verify_live_logs(store: BaseStore, thread_id: str) -> list[Problem]:
    """Each damaged item of the thread's logs as they are now, with how to set it aside.

    Covers what no checkpoint saw: a session's items (a thread with logs and no
    checkpoint) and what was appended after the head.
    """
    problems: list[Problem] = []
    for name in await store.list_logs(thread_id):
        parts = await read_around_damage(store, thread_id, name)
        for position, exc in sorted(damaged(parts).items()):
            hint = (
                f"agent-persist quarantine {shlex.quote(thread_id)} {shlex.quote(name)} {position}"
            )
            problems.append(
                Problem(
                    thread_id,
                    None,
                    f"{_error(exc)} (set it aside with: {hint})",
                    log=name,
                    position=position,
                )
            )
    return problems


async def verify_store(
    store: BaseStore, registry: Registry, *, progress: Progress | None = None
) -> VerifyReport:
    """Verify every thread: its checkpoints and their logs, then its live logs.

    ``progress`` is called with ``(threads done, threads)``.
    """
    report = VerifyReport()
    threads = await store.list_threads()
    if progress is not None:
        progress(0, len(threads))
    for done, info in enumerate(threads, start=1):
        found = VerifyReport(threads=1)
        if info.head_id is not None:
            found = await verify_thread(store, registry, info)
        named = {(p.log, p.position) for p in found.problems}  # seen through a checkpoint
        live = await verify_live_logs(store, info.thread_id)
        report.threads += found.threads
        report.checkpoints += found.checkpoints
        report.problems.extend(found.problems)
        report.problems.extend(p for p in live if (p.log, p.position) not in named)
        for kind, count in found.unknown_kinds.items():
            report.unknown_kinds[kind] = report.unknown_kinds.get(kind, 0) + count
        if progress is not None:
            progress(done, len(threads))
    return report


@click.command(
    cls=Command, epilog=EXIT_CODES, short_help="Read everything back and report what is wrong."
)
@store_options
@key_options
@plugin_option
def verify(options: StoreOptions, plugins: tuple[str, ...]) -> None:
    """Read every checkpoint of every thread and report anything wrong.

    Whatever the kind: checksums and envelope formats (by decoding), parent links, and that
    every log reads back as each checkpoint saw it. For kinds the installed adapters or
    --plugin register: that each schema version is known, not from the future, and has a
    migration path. A kind nobody registers is a note (exit 0 if nothing else is wrong).
    Exit 1 when any problem is found; each names its thread, checkpoint, log and item.
    """
    registry = options.config.get_registry(plugins)

    async def work(store: BaseStore) -> VerifyReport:
        with progress_bar("verifying", force=options.config.terminal) as advance:
            return await verify_store(store, registry, progress=advance)

    report = run(options, work)
    problems = report.problems
    if options.as_json:
        echo_json(
            {
                "threads": report.threads,
                "checkpoints": report.checkpoints,
                "ok": not problems,
                "problems": [asdict(p) for p in problems],
                "notes": report.notes(),
                "unknown_kinds": report.unknown_kinds,
            }
        )
    else:
        out = options.out
        for problem in problems:
            out.line(problem.line(), style="red")
        for note in report.notes():
            out.line(f"note: {note}", style="yellow")
        verdict = plural(len(problems), "problem") if problems else "ok"
        out.line(
            f"verified {plural(report.threads, 'thread')}, "
            f"{plural(report.checkpoints, 'checkpoint')}: {verdict}",
            style="red" if problems else "green",
        )
    if problems:
        raise click.exceptions.Exit(EXIT_FAILED)
