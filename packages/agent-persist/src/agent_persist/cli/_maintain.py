"""``prune``: drop old checkpoints with the store's own retention, after asking.

    agent-persist prune --url sqlite:///agents.db --all --older-than 30d --dry-run
    agent-persist prune --url sqlite:///agents.db --all --older-than 30d --keep-last 5
    agent-persist prune --url sqlite:///agents.db --all --keep-last 5 --yes    # in a script

The checkpoints that would go are found first with the store's rule (:func:`doomed`), so
``--dry-run`` lists them and the question says how many; the deletion itself is the
store's ``prune``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import click

from ..envelope import Envelope
from ..errors import AgentPersistError, NotFoundError, StoreUnavailableError
from ..stores.base import BaseStore
from ._app import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_USAGE,
    MAX_COUNT,
    CliConfig,
    Command,
    StoreOptions,
    echo_json,
    fail,
    one_line,
    run,
    shown,
    store_options,
)
from ._output import plural, progress_bar, stamp

__all__ = ["Doomed", "doomed", "parse_duration", "prune"]


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``1d12h``, ``90m``, ``2w``, ``45s`` as a timedelta."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30d, 12h, 1d12h, 90m)")
    total = timedelta()
    try:
        for number, unit in parts:
            total += timedelta(**{_UNITS[unit]: float(number)})
    except OverflowError:
        raise ValueError(f"not a duration: {text!r} is longer than a timedelta holds") from None
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


@dataclass(frozen=True, slots=True)
class Doomed:
    """A checkpoint ``prune`` deletes (or would)."""

    thread_id: str
    checkpoint_id: str
    step: int
    created_at: datetime


def doomed(
    checkpoints: list[Envelope], *, keep_last: int | None, older_than: timedelta | None
) -> list[Doomed]:
    """What the store's prune deletes from checkpoints listed newest first, by its rule.

    Never the head; with ``keep_last``, not the newest N; with ``older_than``, only those
    created before now minus that age; with both, a checkpoint must fail both to be kept.
    """
    if keep_last is None and older_than is None:
        return []
    cutoff = datetime.now(timezone.utc) - older_than if older_than is not None else None
    found: list[Doomed] = []
    for index, cp in enumerate(checkpoints):
        outside_last = keep_last is None or index >= max(keep_last, 1)
        old_enough = cutoff is None or cp.created_at < cutoff
        if index > 0 and outside_last and old_enough:
            found.append(Doomed(cp.thread_id, cp.checkpoint_id, cp.step, cp.created_at))
    return found


def _interactive(config: CliConfig) -> bool:
    """Whether a person can answer a question: stdin is a terminal (or the config says so)."""
    if config.terminal is not None:
        return config.terminal
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


@click.command(
    cls=Command,
    epilog=EXIT_CODES,
    short_help="Delete old checkpoints (never a head), after asking.",
)
@store_options
@click.argument("thread_ids", metavar="[THREAD]...", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Prune every thread of the namespace.")
@click.option(
    "--older-than", type=Duration(), default=None, help="Drop checkpoints older than 30d, 12h..."
)
@click.option(
    "--keep-last",
    type=click.IntRange(min=1, max=MAX_COUNT),
    default=None,
    help="Keep the newest N checkpoints.",
)
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("-y", "--yes", is_flag=True, help="Delete without asking for confirmation.")
def prune(
    options: StoreOptions,
    thread_ids: tuple[str, ...],
    every: bool,
    older_than: timedelta | None,
    keep_last: int | None,
    dry_run: bool,
    yes: bool,
) -> None:
    """Delete old checkpoints (never a thread's head) with the store's own prune.

    With both options, a checkpoint goes when it is outside the newest N and older than the
    age. Logs keep what the remaining checkpoints still see. --dry-run lists the
    checkpoints that would go and deletes nothing.

    On a terminal, prune says how many checkpoints would go and asks before deleting;
    answering no deletes nothing (exit 1). When stdin is not a terminal (a script, a
    pipe, cron) nobody can answer, so prune refuses (exit 2) unless --yes is given.
    """
    if bool(thread_ids) == every:
        raise click.UsageError("name one or more THREADs, or pass --all")
    if older_than is None and keep_last is None:
        raise click.UsageError("pass --older-than, --keep-last or both")
    ask = not dry_run and not yes
    if ask and not _interactive(options.config):
        raise fail(
            "prune deletes checkpoints and stdin is not a terminal to ask: pass --yes to "
            "delete, or --dry-run to list what would go",
            EXIT_USAGE,
        )

    async def work(store: BaseStore) -> _Pruned:
        ids = list(dict.fromkeys(thread_ids))
        if every:
            ids = [t.thread_id for t in await store.list_threads() if t.head_id is not None]
        pruned = _Pruned(ids)
        if dry_run or ask:  # a list to show or to ask about; --yes goes straight to the store
            await scan(store, pruned)
            if dry_run or not (pruned.count or pruned.unreadable):
                return pruned
            if not _confirm(pruned):
                raise fail("nothing deleted (not confirmed)", EXIT_FAILED)
        with progress_bar("pruning", force=options.config.terminal) as advance:
            advance(0, len(ids))
            for done, thread_id in enumerate(ids, start=1):
                pruned.removed[thread_id] = await store.prune(
                    thread_id, keep_last=keep_last, older_than=older_than
                )
                advance(done, len(ids))
        return pruned

    async def scan(store: BaseStore, pruned: _Pruned) -> None:
        """What the rule selects in each thread, and the threads too damaged to list."""
        ids = pruned.ids
        with progress_bar("scanning", force=options.config.terminal) as advance:
            advance(0, len(ids))
            for done, thread_id in enumerate(ids, start=1):
                try:
                    listed = await store.list_checkpoints(thread_id)
                except (NotFoundError, StoreUnavailableError):
                    raise
                except (AgentPersistError, RecursionError) as exc:  # damaged: prune may work
                    pruned.unreadable[thread_id] = f"{type(exc).__name__}: {one_line(exc)}"
                    listed = []
                pruned.going[thread_id] = doomed(listed, keep_last=keep_last, older_than=older_than)
                advance(done, len(ids))
        for thread_id, problem in pruned.unreadable.items():
            click.echo(f"cannot list thread {shown(thread_id)}: {problem}", err=True)

    pruned = run(options, work)
    if dry_run:
        _report_dry(options, pruned)
        return
    total = sum(pruned.removed.values())
    if options.as_json:
        by_thread = {thread_id: pruned.removed.get(thread_id, 0) for thread_id in pruned.ids}
        echo_json({"removed": by_thread, "total": total})
        return
    out = options.out
    for thread_id in pruned.ids:
        if pruned.removed.get(thread_id):
            count = plural(pruned.removed[thread_id], "checkpoint")
            out.line(f"{shown(thread_id)}: {count} removed")
    out.line(f"pruned {plural(total, 'checkpoint')} in {plural(len(pruned.ids), 'thread')}")


@dataclass
class _Pruned:
    """The threads named, what the rule selects in each, and what the store removed."""

    ids: list[str]
    going: dict[str, list[Doomed]] = field(default_factory=dict[str, list[Doomed]])
    unreadable: dict[str, str] = field(default_factory=dict[str, str])
    removed: dict[str, int] = field(default_factory=dict[str, int])

    @property
    def count(self) -> int:
        """How many checkpoints the rule selects in the threads that could be listed."""
        return sum(len(found) for found in self.going.values())


def _confirm(pruned: _Pruned) -> bool:
    question = f"Delete {plural(pruned.count, 'checkpoint')} in {plural(len(pruned.ids), 'thread')}"
    if pruned.unreadable:
        question += f" (and old ones of {plural(len(pruned.unreadable), 'unreadable thread')})"
    return click.confirm(question + "?", default=False, err=True)


def _report_dry(options: StoreOptions, pruned: _Pruned) -> None:
    ids, going, total = pruned.ids, pruned.going, pruned.count
    if options.as_json:
        echo_json(
            {
                "dry_run": True,
                "would_remove": {
                    thread_id: [
                        {
                            "checkpoint_id": cp.checkpoint_id,
                            "step": cp.step,
                            "created_at": stamp(cp.created_at),
                        }
                        for cp in going[thread_id]
                    ]
                    for thread_id in ids
                },
                "total": total,
                "unreadable": pruned.unreadable,
            }
        )
        return
    out = options.out
    rows = [
        [shown(cp.thread_id), cp.checkpoint_id, str(cp.step), stamp(cp.created_at) or "-"]
        for thread_id in ids
        for cp in going[thread_id]
    ]
    if rows:
        out.table(["THREAD", "CHECKPOINT", "STEP", "CREATED"], rows)
    unread = len(pruned.unreadable)
    also = f", and old ones of {plural(unread, 'unreadable thread')}" if unread else ""
    out.line(
        f"dry run: would prune {plural(total, 'checkpoint')} in {plural(len(ids), 'thread')}"
        f"{also} (nothing deleted)"
    )
