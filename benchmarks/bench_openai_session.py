"""Our Session next to the SDK's own sessions, measured in the same run, on every store.

    uv run python benchmarks/bench_openai_session.py [--calls 1000] [--items 10000]

For each backend: ``add_items`` one item per call (median ms per call over ``--calls``
calls), ``get_items()`` of ``--items`` items (30 calls) and ``get_items(50)`` of them (500
calls), medians in ms. Ours and the SDK's session are open side by side and called in
alternation, so a burst of load on the shared machine slows both rather than one.
Compared: SQLite ``StoreSession`` vs ``SQLiteSession`` (target <= 1.0x); PostgreSQL
``StoreSession`` vs ``SQLAlchemySession`` over asyncpg (target <= 0.5x); Redis
``StoreSession`` vs ``RedisSession`` (target <= 1.0x). Servers come from
``AGENT_PERSIST_POSTGRES_URL`` / ``AGENT_PERSIST_REDIS_URL``; an unreachable one is skipped.
Timings are medians on a shared machine: read them as ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent_persist import open_store
from openai_agents_persist import StoreSession

POSTGRES_URL = os.environ.get(
    "AGENT_PERSIST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AGENT_PERSIST_REDIS_URL", "redis://127.0.0.1:6379/0")
TARGETS = {"sqlite": 1.0, "postgresql": 0.5, "redis": 1.0}

SessionMaker = Callable[[], Any]


def item(n: int) -> dict[str, Any]:
    return {"role": "user", "content": f"message number {n} " + "x" * 80}


async def paired_medians(
    actions: tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]], repeat: int
) -> tuple[float, float]:
    """Median ms of each action, the two called in turn so machine noise hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for round_ in range(repeat):
        order = (0, 1) if round_ % 2 == 0 else (1, 0)
        for side in order:
            start = time.perf_counter()
            await actions[side]()
            times[side].append((time.perf_counter() - start) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


async def measure(pair: tuple[Any, Any], calls: int, items: int) -> list[dict[str, float]]:
    """Ours and the SDK's session, each metric measured call by call in alternation."""
    counters = (iter(range(10**9)), iter(range(10**9)))

    def adder(side: int) -> Callable[[], Awaitable[Any]]:
        return lambda: pair[side].add_items([item(next(counters[side]))])

    results: list[dict[str, float]] = [{}, {}]
    add = await paired_medians((adder(0), adder(1)), calls)
    for session in pair:
        await session.clear_session()
        for start in range(0, items, 1000):
            await session.add_items([item(n) for n in range(start, min(items, start + 1000))])
        if len(await session.get_items()) != items:
            raise SystemExit(f"{type(session).__name__} lost items")
    get_all = await paired_medians((pair[0].get_items, pair[1].get_items), 30)
    get_50 = await paired_medians(
        (lambda: pair[0].get_items(50), lambda: pair[1].get_items(50)), 500
    )
    for side in (0, 1):
        results[side] = {"add": add[side], "get_all": get_all[side], "get_50": get_50[side]}
    return results


@asynccontextmanager
async def ours(url: str, **options: Any) -> AsyncIterator[Any]:
    async with open_store(url, **options) as store:
        yield StoreSession(f"bench-{uuid.uuid4().hex}", store=store)


@asynccontextmanager
async def sdk_sqlite(path: Path) -> AsyncIterator[Any]:
    from agents import SQLiteSession

    session = SQLiteSession(f"bench-{uuid.uuid4().hex}", path)
    try:
        yield session
    finally:
        session.close()


@asynccontextmanager
async def sdk_sqlalchemy(url: str) -> AsyncIterator[Any]:
    from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

    async_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    session = SQLAlchemySession.from_url(
        f"bench-{uuid.uuid4().hex}", url=async_url, create_tables=True
    )
    try:
        yield session
    finally:
        await session.clear_session()
        await session.engine.dispose()


@asynccontextmanager
async def sdk_redis(url: str, prefix: str) -> AsyncIterator[Any]:
    from agents.extensions.memory.redis_session import RedisSession

    session = RedisSession.from_url(f"bench-{uuid.uuid4().hex}", url=url, key_prefix=prefix)
    try:
        yield session
    finally:
        await session.clear_session()
        await session.close()


async def drop_postgres_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


async def drop_redis_prefix(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
    if keys:
        await client.unlink(*keys)
    await client.aclose()


async def reachable(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, parts.port), timeout=2
        )
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    rows: list[tuple[str, str, dict[str, float]]] = []

    async def run(backend: str, sdk_name: str, mine: Any, theirs: Any) -> None:
        async with mine as ours_session, theirs as sdk_session:
            got = await measure((ours_session, sdk_session), args.calls, args.items)
        rows.append((backend, "StoreSession", got[0]))
        rows.append((backend, sdk_name, got[1]))

    tag = uuid.uuid4().hex
    with tempfile.TemporaryDirectory() as tmp:
        await run(
            "sqlite",
            "SDK SQLiteSession",
            ours(f"sqlite:///{tmp}/ours.db"),
            sdk_sqlite(Path(tmp) / "sdk.db"),
        )
    if await reachable(POSTGRES_URL):
        schema = f"ap_bench_{tag}"
        try:
            await run(
                "postgresql",
                "SDK SQLAlchemySession",
                ours(POSTGRES_URL, schema=schema),
                sdk_sqlalchemy(POSTGRES_URL),
            )
        finally:
            await drop_postgres_schema(POSTGRES_URL, schema)
    if await reachable(REDIS_URL):
        prefix = f"apbench:{tag}"
        try:
            await run(
                "redis",
                "SDK RedisSession",
                ours(REDIS_URL, prefix=prefix),
                sdk_redis(REDIS_URL, f"{prefix}:sdk"),
            )
        finally:
            await drop_redis_prefix(REDIS_URL, prefix)

    print(
        f"{'store':<11} {'session':<22} {'add_items ms':>12} "
        f"{f'get {args.items} ms':>12} {'get 50 ms':>10}"
    )
    for backend, name, result in rows:
        print(
            f"{backend:<11} {name:<22} {result['add']:>12.3f} "
            f"{result['get_all']:>12.2f} {result['get_50']:>10.3f}"
        )
    print("\nratio ours / SDK (target):")
    for backend, target in TARGETS.items():
        pair = [result for b, _, result in rows if b == backend]
        if len(pair) == 2:
            ratios = "  ".join(
                f"{key} {pair[0][key] / pair[1][key]:.2f}x" for key in ("add", "get_all", "get_50")
            )
            print(f"{backend:<11} {ratios}   (target <= {target}x)")


if __name__ == "__main__":
    asyncio.run(main())
