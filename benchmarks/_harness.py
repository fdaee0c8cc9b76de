"""What the many-conversations benchmarks share: turns timed per conversation, processes.

A benchmark describes one contender as a ``Contender`` (opened once per process, then
``turn(conversation, turn)`` called for each turn of each conversation in flight) and a
picklable factory that builds it in each process. ``run_point`` runs ``turns`` turns spread
over ``in_flight`` conversations in each of ``processes`` processes (spawned, started together
behind a barrier) and returns what each process measured; ``summary`` turns that into turns
per second, p50, p99 and failed turns. Not a module users import: the benchmarks run as
scripts, so this directory is on ``sys.path``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

POSTGRES_URL = os.environ.get(
    "AGENT_PERSIST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AGENT_PERSIST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_FLIGHT = (1, 8, 32, 128)
PROCESSES = (4, 32)
MESSAGE = "lorem ipsum dolor sit amet " * 6


def turn_messages(turn: int) -> list[dict[str, Any]]:
    """The two messages one turn adds (a user message and the assistant's answer)."""
    return [
        {"role": "user", "content": f"{turn} {MESSAGE}"},
        {"role": "assistant", "content": f"{turn} {MESSAGE}"},
    ]


@dataclass
class Tally:
    """What one process measured."""

    latencies: list[float] = field(default_factory=list[float])
    failed: int = 0
    errors: set[str] = field(default_factory=set[str])
    opened: int = 0
    started: float = 0.0
    ended: float = 0.0


class Contender(Protocol):
    """One side of a benchmark, as one process runs it."""

    async def open(self, tally: Tally) -> None: ...

    async def turn(self, conversation: str, turn: int) -> None: ...

    async def close(self) -> None: ...


Factory = Callable[..., Contender]


def points(only: str | None = None) -> list[tuple[int, int, str]]:
    """(processes, conversations in flight per process, label): 1 x 1, 8, 32, 128 and 4 x 32."""
    every = [(1, n, f"1 x {n}") for n in IN_FLIGHT]
    every.append((PROCESSES[0], PROCESSES[1], f"{PROCESSES[0]} x {PROCESSES[1]}"))
    if not only:
        return every
    wanted = {label.replace(" ", "") for label in only.split(",")}
    return [p for p in every if p[2].replace(" ", "") in wanted]


async def _conversation(contender: Contender, name: str, turns: int, tally: Tally) -> None:
    for turn in range(turns):
        start = time.perf_counter()
        try:
            await contender.turn(name, turn)
        except Exception as exc:
            tally.failed += 1
            tally.errors.add(f"{type(exc).__name__}: {str(exc)[:120]}")
        tally.latencies.append(time.perf_counter() - start)


async def run_process(
    factory: Factory, args: tuple[Any, ...], in_flight: int, turns: int, barrier: Any
) -> Tally:
    """One process: open the contender, wait for the others, run the conversations."""
    tally = Tally()
    contender = factory(*args)
    await contender.open(tally)
    try:
        if barrier is not None:
            await asyncio.to_thread(barrier.wait)
        tally.started = time.perf_counter()
        per = turns // in_flight
        run = uuid.uuid4().hex[:8]
        await asyncio.gather(
            *(_conversation(contender, f"{run}-{i}", per, tally) for i in range(in_flight))
        )
        tally.ended = time.perf_counter()
    finally:
        await contender.close()
    return tally


def _child(
    factory: Factory, args: tuple[Any, ...], in_flight: int, turns: int, barrier: Any, out: Any
) -> None:
    out.put(asyncio.run(run_process(factory, args, in_flight, turns, barrier)))


def run_point(
    factory: Factory, args: tuple[Any, ...], processes: int, in_flight: int, turns: int
) -> list[Tally]:
    """``turns`` turns in all, ``in_flight`` conversations per process; one Tally per process."""
    if processes == 1:
        return [asyncio.run(run_process(factory, args, in_flight, turns, None))]
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(
            target=_child,
            args=(factory, args, in_flight, turns // processes, barrier, out),
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    tallies = [out.get() for _ in workers]
    for worker in workers:
        worker.join()
    return tallies


@dataclass
class Summary:
    """One point: all processes together."""

    turns_per_second: float
    p50_ms: float
    p99_ms: float
    failed: int
    opened: int
    errors: set[str]

    def cells(self) -> str:
        """``turns/s | p50 | p99 | p99/p50 | failed`` as Markdown table cells."""
        return (
            f"{self.turns_per_second:,.0f} | {self.p50_ms:.1f} ms | {self.p99_ms:.1f} ms "
            f"| {self.p99_ms / self.p50_ms:.1f}x | {self.failed}"
        )


def summary(tallies: list[Tally]) -> Summary:
    latencies = sorted(x for t in tallies for x in t.latencies)
    elapsed = max(t.ended for t in tallies) - min(t.started for t in tallies)
    centiles = statistics.quantiles(latencies, n=100)
    errors: set[str] = set()
    for tally in tallies:
        errors |= tally.errors
    return Summary(
        turns_per_second=len(latencies) / elapsed,
        p50_ms=centiles[49] * 1000,
        p99_ms=centiles[98] * 1000,
        failed=sum(t.failed for t in tallies),
        opened=sum(t.opened for t in tallies),
        errors=errors,
    )


def fresh_name(prefix: str, backend: str) -> str:
    """A schema (PostgreSQL) or key prefix (Redis) no other run uses."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    return name.replace("_", ":", 1) if backend == "redis" else name


async def drop_schema(schema: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(sa.make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg"))
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


async def drop_prefix(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await client.unlink(*keys[start : start + 1000])
    await client.aclose()


def clean(backend: str, where: str) -> None:
    """Remove what a run wrote under ``where``."""
    asyncio.run(drop_schema(where) if backend == "postgres" else drop_prefix(where))
