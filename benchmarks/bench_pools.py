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
from typing import Any

from _harness import (
    POSTGRES_URL,
    REDIS_URL,
    Tally,
    clean,
    fresh_name,
    points,
    run_point,
    summary,
    turn_messages,
)

from agent_persist import Envelope, Producer, open_store
from agent_persist.stores.base import BaseStore

PRODUCER = Producer(package="bench")


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


class Puts:
    """One turn is one ``put`` appending the turn's two messages to the transcript."""

    def __init__(self, backend: str, pools: str, where: str) -> None:
        self.backend, self.pools, self.where = backend, pools, where
        self.heads: dict[str, Envelope] = {}

    async def open(self, tally: Tally) -> None:
        self.store = open_bench_store(self.backend, self.pools, self.where)
        count_connections(self.store, self.backend, tally)
        await self.store.setup()

    async def turn(self, conversation: str, turn: int) -> None:
        head = self.heads.get(conversation)
        if head is None:
            envelope = Envelope.create(
                kind="bench.chat",
                schema_version=1,
                thread_id=conversation,
                payload={"turn": turn},
                producer=PRODUCER,
            )
        else:
            envelope = head.next(payload={"turn": turn})
        self.heads[conversation] = await self.store.put(
            envelope, appends={"transcript": turn_messages(turn)}
        )

    async def close(self) -> None:
        await self.store.close()


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
    print(f"{args.turns:,} turns per point (processes x conversations in flight)")
    print()
    print("| store | pools | in flight | turns/s | p50 | p99 | p99/p50 | failed | opened |")
    print("| --- | --- | --- | --: | --: | --: | --: | --: | --: |")
    errors: set[str] = set()
    for backend in args.stores.split(","):
        for processes, in_flight, label in points(args.points):
            for pools in settings:  # side by side, point by point
                where = fresh_name("ap_bench_pools", backend)
                try:
                    tallies = run_point(
                        Puts, (backend, pools, where), processes, in_flight, args.turns
                    )
                finally:
                    clean(backend, where)
                result = summary(tallies)
                errors |= result.errors
                print(f"| {backend} | {pools} | {label} | {result.cells()} | {result.opened} |")
    for error in sorted(errors):
        print(f"\nfailure seen: {error}")


if __name__ == "__main__":
    main()
