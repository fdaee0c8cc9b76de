"""Many conversations in flight on one database: the pools before and after they wait.

Each point runs 1,024 turns (one ``put`` appending two messages to a conversation's
transcript) spread over C conversations in flight at once, in one process (C = 1, 8, 32,
128), and over 4 processes of 32. It prints turns per second, the p50 and p99 time of one
turn, the turns that failed, and the connections the pools opened (new connections, so a
pool that closes and reopens them counts each time).

``--pools old`` is the settings before pools waited: SQLAlchemy's default pool (5 kept +
10 overflow) on PostgreSQL, and redis-py's default pool on Redis (100 connections, then
``Too many connections`` at once); ``--pools new`` is the store's defaults (PostgreSQL 10
connections, no overflow; Redis a blocking pool of 16; ``--pool-size N`` another size);
``--pools both`` (the default) runs them side by side. ``--points 1x128,4x32`` runs only
those points.

    uv run python benchmarks/bench_pools.py [--turns 1024] [--stores postgres,redis]
                                            [--pools old|new|both]

PostgreSQL and Redis come from AGENT_PERSIST_POSTGRES_URL / AGENT_PERSIST_REDIS_URL (the
local servers by default). Each run writes under its own schema or key prefix and removes
it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from agent_persist import Envelope, Producer, open_store
from agent_persist.stores.base import BaseStore

POSTGRES_URL = os.environ.get(
    "AGENT_PERSIST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AGENT_PERSIST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_FLIGHT = (1, 8, 32, 128)
PROCESSES = (4, 32)
PRODUCER = Producer(package="bench")
MESSAGE = "lorem ipsum dolor sit amet " * 6


@dataclass
class Tally:
    """What one process measured."""

    latencies: list[float] = field(default_factory=list[float])
    failed: int = 0
    errors: set[str] = field(default_factory=set[str])
    opened: int = 0
    started: float = 0.0
    ended: float = 0.0


def open_bench_store(backend: str, pools: str, where: str) -> BaseStore:
    """The store under test, with the old pool settings or the store's (``new=N``: size N)."""
    sized = {"pool_size": int(pools.partition("=")[2])} if pools.startswith("new=") else {}
    if backend == "postgres":
        old = {"pool_size": 5, "max_overflow": 10} if pools == "old" else sized
        return open_store(POSTGRES_URL, schema=where, **old)
    if pools == "old":
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        from agent_persist.stores.redis import RedisStore

        client = Redis.from_url(REDIS_URL, retry=Retry(NoBackoff(), 0))  # redis-py's pool
        return RedisStore(client, prefix=where)
    return open_store(REDIS_URL, prefix=where, **sized)


def count_connections(store: BaseStore, backend: str, tally: Tally) -> Any:
    """Count every connection the store's pool opens from now on."""

    def opened(*_: object) -> None:
        tally.opened += 1

    if backend == "postgres":
        from sqlalchemy import event

        event.listen(store.engine.sync_engine, "connect", opened)  # type: ignore[attr-defined]
        return None
    pool = store._client.connection_pool  # type: ignore[attr-defined]
    make = pool.make_connection

    def counted() -> Any:
        opened()
        return make()

    pool.make_connection = counted
    return pool


async def conversation(store: BaseStore, thread_id: str, turns: int, tally: Tally) -> None:
    head: Envelope | None = None
    for turn in range(turns):
        if head is None:
            envelope = Envelope.create(
                kind="bench.chat",
                schema_version=1,
                thread_id=thread_id,
                payload={"turn": turn},
                producer=PRODUCER,
            )
        else:
            envelope = head.next(payload={"turn": turn})
        messages = [{"role": "user", "content": MESSAGE}, {"role": "assistant", "content": MESSAGE}]
        start = time.perf_counter()
        try:
            head = await store.put(envelope, appends={"transcript": messages})
        except Exception as exc:
            tally.failed += 1
            tally.errors.add(f"{type(exc).__name__}: {str(exc)[:120]}")
        tally.latencies.append(time.perf_counter() - start)


async def run_process(
    backend: str, pools: str, where: str, in_flight: int, turns: int, barrier: Any
) -> Tally:
    tally = Tally()
    store = open_bench_store(backend, pools, where)
    count_connections(store, backend, tally)
    await store.setup()
    if barrier is not None:
        await asyncio.to_thread(barrier.wait)
    tally.started = time.perf_counter()
    per = turns // in_flight
    run = uuid.uuid4().hex[:8]
    await asyncio.gather(*(conversation(store, f"{run}-{i}", per, tally) for i in range(in_flight)))
    tally.ended = time.perf_counter()
    await store.close()
    return tally


def child(
    backend: str, pools: str, where: str, in_flight: int, turns: int, barrier: Any, out: Any
) -> None:
    tally = asyncio.run(run_process(backend, pools, where, in_flight, turns, barrier))
    out.put(tally)


def run_point(
    backend: str, pools: str, where: str, processes: int, in_flight: int, turns: int
) -> list[Tally]:
    if processes == 1:
        return [asyncio.run(run_process(backend, pools, where, in_flight, turns, None))]
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(
            target=child,
            args=(backend, pools, where, in_flight, turns // processes, barrier, out),
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    tallies = [out.get() for _ in workers]
    for worker in workers:
        worker.join()
    return tallies


async def clean(backend: str, where: str) -> None:
    if backend == "postgres":
        import sqlalchemy as sa
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(sa.make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg"))
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{where}" CASCADE'))
        await engine.dispose()
        return
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{where}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await client.unlink(*keys[start : start + 1000])
    await client.aclose()


def row(backend: str, pools: str, label: str, tallies: list[Tally]) -> str:
    latencies = sorted(x for t in tallies for x in t.latencies)
    elapsed = max(t.ended for t in tallies) - min(t.started for t in tallies)
    centiles = statistics.quantiles(latencies, n=100)
    p50, p99 = centiles[49] * 1000, centiles[98] * 1000
    failed = sum(t.failed for t in tallies)
    opened = sum(t.opened for t in tallies)
    return (
        f"| {backend} | {pools} | {label} | {len(latencies) / elapsed:,.0f} | {p50:.1f} ms "
        f"| {p99:.1f} ms | {p99 / p50:.1f}x | {failed} | {opened} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1024)
    parser.add_argument("--stores", default="postgres,redis")
    parser.add_argument("--pools", choices=("old", "new", "both"), default="both")
    parser.add_argument("--pool-size", type=int, help="new pools of this size, not the default")
    parser.add_argument("--points", help="only these, e.g. 1x128,4x32")
    args = parser.parse_args()
    new = "new" if args.pool_size is None else f"new={args.pool_size}"
    settings = {"old": ("old",), "new": (new,), "both": ("old", new)}[args.pools]
    points = [(1, n, f"1 x {n}") for n in IN_FLIGHT] + [
        (PROCESSES[0], PROCESSES[1], f"{PROCESSES[0]} x {PROCESSES[1]}")
    ]
    if args.points:
        wanted = {label.replace(" ", "") for label in args.points.split(",")}
        points = [p for p in points if p[2].replace(" ", "") in wanted]
    print(f"{args.turns:,} turns per point (processes x conversations in flight)")
    print()
    print("| store | pools | in flight | turns/s | p50 | p99 | p99/p50 | failed | opened |")
    print("| --- | --- | --- | --: | --: | --: | --: | --: | --: |")
    errors: set[str] = set()
    for backend in args.stores.split(","):
        for processes, in_flight, label in points:
            for pools in settings:  # side by side, point by point
                where = f"ap_bench_pools_{uuid.uuid4().hex[:10]}"
                if backend == "redis":
                    where = where.replace("_", ":", 1)
                try:
                    tallies = run_point(backend, pools, where, processes, in_flight, args.turns)
                finally:
                    asyncio.run(clean(backend, where))
                for tally in tallies:
                    errors |= tally.errors
                print(row(backend, pools, label, tallies), flush=True)
    for error in sorted(errors):
        print(f"\nfailure seen: {error}")


if __name__ == "__main__":
    main()
