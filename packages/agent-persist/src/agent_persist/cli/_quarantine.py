"""``quarantine`` moves damaged log items aside, so the log reads again and nothing is lost.

    agent-persist quarantine --url sqlite:///agents.db user-1 items 2 --dry-run
    agent-persist quarantine --url sqlite:///agents.db user-1 items 2

One damaged item makes a whole log unreadable (the store raises on it, and an OpenAI Agents
session on top raises ``DamagedItemError`` naming the position). This command takes the
thread, the log and the positions (0 the oldest live item, as the session's error and
``read_log`` count), and with the public store API only:

1. reads the log around the damage and checks the request: every named position holds an
   item the store cannot decode (``--force`` for one it can), no other item is damaged
   (it could not be kept in place), and the bytes of each can be saved;
2. appends one record to the log ``quarantine/<log>`` of the same thread: for each item its
   position, the error, and its bytes (the value, or the stored JSON text, as text or
   base64), plus a copy of the items kept, so an interrupted run can be finished by hand;
3. rewrites the log with the other items (``clear_log``, then one ``append``), then drops
   the copy from the record.

The rewrite is two writes: run it while nothing else writes to the thread. Checkpoints
that saw the old log still see it. When the store cannot show an item's bytes (no codec
reads them), nothing is done unless ``--discard-unreadable`` says to drop them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import click

from .._json import JSON
from ..damaged_items import LogPart, read_around_damage
from ..errors import CorruptCheckpointError
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
from ._output import plural, stamp

__all__ = ["QUARANTINE_PREFIX", "quarantine"]

QUARANTINE_PREFIX = "quarantine/"
"""The quarantine log of log ``L`` is ``quarantine/L``, in the same thread."""


@dataclass(frozen=True, slots=True)
class Moved:
    """An item to move aside: where it was, why, and its bytes as far as the store shows them."""

    position: int
    reason: str
    readable: bool
    saved: dict[str, JSON]
    """``{"item": value}``, ``{"text": stored JSON}``, ``{"base64": ...}``, or ``{}``."""

    def summary(self) -> dict[str, Any]:
        """The item as the command reports it."""
        saved_as = next(iter(self.saved), None)
        return {
            "position": self.position,
            "reason": self.reason,
            "readable": self.readable,
            "saved_as": saved_as,
        }


@dataclass
class Plan:
    """What a quarantine would do, or why it refuses."""

    thread_id: str
    log: str
    moved: list[Moved] = field(default_factory=list[Moved])
    kept: list[JSON] = field(default_factory=list[JSON])
    refusal: str | None = None

    @property
    def quarantine_log(self) -> str:
        """Where the moved items go."""
        return QUARANTINE_PREFIX + self.log

    def where(self) -> str:
        """The log, for messages."""
        return f"log {shown(self.log)} of thread {shown(self.thread_id)}"

    def record(self) -> dict[str, JSON]:
        """The quarantine log's entry for this run."""
        return {
            "log": self.log,
            "quarantined_at": stamp(datetime.now(timezone.utc)),
            "length": len(self.kept) + len(self.moved),
            "items": [{"position": m.position, "reason": m.reason, **m.saved} for m in self.moved],
        }


async def plan_quarantine(
    store: BaseStore,
    thread_id: str,
    log: str,
    positions: list[int],
    *,
    force: bool,
    discard_unreadable: bool,
) -> Plan:
    """Read the log and decide; nothing is written."""
    plan = Plan(thread_id, log)
    length = await store.log_length(thread_id, log)
    if not length:
        plan.refusal = f"{plan.where()} holds no item"
        return plan
    outside = [p for p in positions if p >= length]
    if outside:
        plan.refusal = (
            f"position {outside[0]} is outside {plan.where()} ({length} items, positions "
            f"0-{length - 1})"
        )
        return plan
    named = set(positions)
    parts = await read_around_damage(store, thread_id, log, stop=length, suspects=named)
    unnamed = [p.start for p in parts if p.error is not None and p.start not in named]
    if unnamed:
        plan.refusal = (
            f"{plan.where()} also has damaged items at positions "
            f"{', '.join(map(str, unnamed))}; name them too (they cannot be kept in place)"
        )
        return plan
    for part in parts:  # each named position is a part of its own (a suspect)
        if part.start not in named:
            plan.kept += part.values
            continue
        moved = await _moved(store, plan, part, length)
        if moved.readable and not force:
            plan.refusal = (
                f"position {part.start} of {plan.where()} holds an item the store reads; "
                "pass --force to quarantine it anyway"
            )
            return plan
        if not moved.saved and not discard_unreadable:
            plan.refusal = (
                f"the store cannot show the bytes of the item at position {part.start} of "
                f"{plan.where()} ({moved.reason}); back them up with the database's own "
                "tools, or pass --discard-unreadable to drop them"
            )
            return plan
        plan.moved.append(moved)
    return plan


async def _moved(store: BaseStore, plan: Plan, part: LogPart, length: int) -> Moved:
    if part.error is None:
        return Moved(part.start, "forced: the store reads it", True, {"item": part.values[0]})
    reason = f"{type(part.error).__name__}: {' '.join(str(part.error).split())}"
    stored = await _stored_text(store, plan.thread_id, plan.log, part.start, length)
    if stored is None:
        return Moved(part.start, reason, False, {})
    try:
        return Moved(part.start, reason, False, {"text": stored.decode("utf-8")})
    except UnicodeDecodeError:
        return Moved(part.start, reason, False, {"base64": base64.b64encode(stored).decode()})


async def _stored_text(
    store: BaseStore, thread_id: str, log: str, position: int, length: int
) -> bytes | None:
    """The stored JSON text of an item the store cannot decode, when the store shows it.

    ``read_log_lines``/``tail_lines`` return stored text without parsing it where they can:
    the SQL stores read one item's text, Redis reads a log's end from its mirror when every
    item there is plain JSON. Elsewhere they decode, and so raise on the damaged item.
    """
    reads = (
        lambda: store.read_log_lines(thread_id, log, start=position, stop=position + 1),
        lambda: store.tail_lines(thread_id, log, length - position),
    )
    for read, count in zip(reads, (1, length - position), strict=True):
        try:
            lines = (await read()).split(b"\n")
        except CorruptCheckpointError:
            continue
        if len(lines) == count:
            return lines[0]
    return None


async def apply_quarantine(store: BaseStore, plan: Plan) -> None:
    """Record the moved items with a copy of the kept ones, rewrite the log, drop the copy."""
    record = plan.record()
    backup = {**record, "kept": list(plan.kept)}
    await store.append(plan.thread_id, plan.quarantine_log, [backup])
    await store.clear_log(plan.thread_id, plan.log)
    if plan.kept:
        await store.append(plan.thread_id, plan.log, plan.kept)
    popped = await store.pop(plan.thread_id, plan.quarantine_log)
    ours = popped is None or popped == backup  # else another run wrote after it: leave both
    await store.append(plan.thread_id, plan.quarantine_log, [record if ours else popped])


@click.command(
    cls=Command, epilog=EXIT_CODES, short_help="Move damaged log items aside into quarantine/LOG."
)
@store_options
@click.argument("thread_id", metavar="THREAD")
@click.argument("log")
@click.argument("positions", metavar="POSITION...", nargs=-1, required=True, type=click.IntRange(0))
@click.option("--force", is_flag=True, help="Also move an item the store reads.")
@click.option(
    "--discard-unreadable",
    is_flag=True,
    help="Drop an item whose bytes the store cannot show (back them up first).",
)
@click.option("--dry-run", is_flag=True, help="Check and report; write nothing.")
def quarantine(
    options: StoreOptions,
    thread_id: str,
    log: str,
    positions: tuple[int, ...],
    force: bool,
    discard_unreadable: bool,
    dry_run: bool,
) -> None:
    """Move damaged items of a log into the log quarantine/LOG of the same thread.

    POSITION counts the log's items from 0, the oldest, as the OpenAI Agents session's
    DamagedItemError names it. Each moved item is recorded with its position, the error
    and its bytes; the log keeps the other items in order. Refuses, changing nothing, when
    a position holds an item the store reads (unless --force), when another item of the
    log is damaged too, or when the store cannot show an item's bytes (unless
    --discard-unreadable). Run it while nothing else writes to the thread.
    """
    wanted = sorted(set(positions))

    async def work(store: BaseStore) -> Plan:
        plan = await plan_quarantine(
            store, thread_id, log, wanted, force=force, discard_unreadable=discard_unreadable
        )
        if plan.refusal is None and not dry_run:
            await apply_quarantine(store, plan)
        return plan

    plan = run(options, work)
    if plan.refusal is not None:
        raise fail(plan.refusal, EXIT_FAILED)
    if options.as_json:
        echo_json(
            {
                "thread_id": plan.thread_id,
                "log": plan.log,
                "quarantine_log": plan.quarantine_log,
                "dry_run": dry_run,
                "kept": len(plan.kept),
                "items": [moved.summary() for moved in plan.moved],
            }
        )
        return
    verb = "would quarantine" if dry_run else "quarantined"
    for moved in plan.moved:
        saved = next(iter(moved.saved), "nothing: discarded")
        click.echo(
            f"{verb} position {moved.position} of {plan.where()} into "
            f"{shown(plan.quarantine_log)} ({moved.reason}; saved: {saved})"
        )
    options.out.line(
        f"{plural(len(plan.kept), 'item')} {'would be ' if dry_run else ''}kept in order"
    )
