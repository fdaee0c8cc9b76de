"""Our encrypted Session next to the SDK's ``EncryptedSession``, measured in the same run.

    uv run python benchmarks/bench_encrypted_session.py [--items 10000] [--repeat 9]

For each backend, the time of one ``add_items`` of ``--items`` items (into an emptied
session) and of one ``get_items()`` of them, medians over ``--repeat`` calls in ms, for:
our ``StoreSession(ttl=600)`` on a store opened with ``encryption=`` (AES-256-GCM, the
items' write times sealed with them: what the SDK's wrapper offers), the same without a
ttl, the same session on the store in clear, and the SDK's ``EncryptedSession(ttl=600)``
(Fernet) over its ``SQLiteSession``, its ``SQLAlchemySession`` on PostgreSQL (asyncpg) and
its ``RedisSession``. The contenders are called in turn, each call in a new order, so a
burst of load on the shared machine slows all of them rather than one; each call starts
after a full garbage collection. Target: ours
encrypted <= 0.5x the SDK's for both calls on each store; the overhead of encryption is
ours encrypted over ours in clear. Servers come from ``AGENT_PERSIST_POSTGRES_URL`` /
``AGENT_PERSIST_REDIS_URL``; an unreachable one is skipped. Read the numbers as ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from bench_openai_session import (
    POSTGRES_URL,
    REDIS_URL,
    drop_postgres_schema,
    drop_redis_prefix,
    reachable,
)
from cryptography.fernet import Fernet

from agent_persist import open_store
from agent_persist.crypto import Encryption, KeyRing
from openai_agents_persist import StoreSession

TARGET = 0.5
TTL = 600
CONTENDERS = ("ours encrypted, ttl", "ours encrypted", "ours in clear", "SDK EncryptedSession")


def item(n: int) -> dict[str, Any]:
    return {"role": "user", "content": f"message number {n} " + "x" * 80}


async def measure(sessions: dict[str, Any], items: int, repeat: int) -> dict[str, dict[str, float]]:
    """Median ms of ``add_items`` and ``get_items()`` of ``items`` items, per contender.

    ``add``/``get`` are elapsed times; ``add_cpu``/``get_cpu`` this process's CPU time in
    the same calls (the client's own work, which the machine's other load does not change;
    the database server's work is not in it, for either side). Each call starts after a
    full garbage collection, so a collection of the benchmark's own heap (every call here
    allocates some 10,000 objects) does not land on whichever contender crosses the
    threshold.
    """
    batch = [item(n) for n in range(items)]
    metrics = ("add", "get", "add_cpu", "get_cpu")
    times = {name: {metric: list[float]() for metric in metrics} for name in sessions}
    names = list(sessions)

    def record(name: str, metric: str, wall: float, cpu: float) -> None:
        times[name][metric].append((time.perf_counter() - wall) * 1000)
        times[name][f"{metric}_cpu"].append((time.process_time() - cpu) * 1000)

    for _ in range(repeat):
        random.shuffle(names)
        for name in names:
            session = sessions[name]
            await session.clear_session()
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            await session.add_items(batch)
            record(name, "add", wall, cpu)
        random.shuffle(names)
        for name in names:
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            got = await sessions[name].get_items()
            record(name, "get", wall, cpu)
            if len(got) != items:
                raise SystemExit(f"{name} read {len(got)} items of {items}")
    return {
        name: {metric: statistics.median(values) for metric, values in metrics.items()}
        for name, metrics in times.items()
    }


@asynccontextmanager
async def ours(url: str, **options: Any) -> AsyncIterator[dict[str, Any]]:
    """Our three sessions: encrypted with and without a ttl, and in clear."""
    ring = KeyRing({"bench": os.urandom(32)}, primary="bench")
    async with (
        open_store(url, encryption=Encryption(ring), **options) as sealed,
        open_store(url, namespace="clear", **options) as clear,
    ):
        yield {
            CONTENDERS[0]: StoreSession(f"bench-{uuid.uuid4().hex}", store=sealed, ttl=TTL),
            CONTENDERS[1]: StoreSession(f"bench-{uuid.uuid4().hex}", store=sealed),
            CONTENDERS[2]: StoreSession(f"bench-{uuid.uuid4().hex}", store=clear),
        }


def encrypted(underlying: Any) -> Any:
    from agents.extensions.memory import EncryptedSession

    key = Fernet.generate_key().decode()
    return EncryptedSession(underlying.session_id, underlying, key, ttl=TTL)


@asynccontextmanager
async def sdk_sqlite(path: Path) -> AsyncIterator[Any]:
    from agents import SQLiteSession

    underlying = SQLiteSession(f"bench-{uuid.uuid4().hex}", path)
    try:
        yield encrypted(underlying)
    finally:
        underlying.close()


@asynccontextmanager
async def sdk_sqlalchemy(url: str) -> AsyncIterator[Any]:
    from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

    async_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    underlying = SQLAlchemySession.from_url(
        f"bench-{uuid.uuid4().hex}", url=async_url, create_tables=True
    )
    try:
        yield encrypted(underlying)
    finally:
        await underlying.clear_session()
        await underlying.engine.dispose()


@asynccontextmanager
async def sdk_redis(url: str, prefix: str) -> AsyncIterator[Any]:
    from agents.extensions.memory.redis_session import RedisSession

    underlying = RedisSession.from_url(f"bench-{uuid.uuid4().hex}", url=url, key_prefix=prefix)
    try:
        yield encrypted(underlying)
    finally:
        await underlying.clear_session()
        await underlying.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}

    async def run(backend: str, mine: Any, theirs: Any) -> None:
        async with AsyncExitStack() as stack:
            sessions = dict(await stack.enter_async_context(mine))
            sessions[CONTENDERS[3]] = await stack.enter_async_context(theirs)
            results[backend] = await measure(sessions, args.items, args.repeat)

    tag = uuid.uuid4().hex
    with tempfile.TemporaryDirectory() as tmp:
        await run("sqlite", ours(f"sqlite:///{tmp}/ours.db"), sdk_sqlite(Path(tmp) / "sdk.db"))
    if await reachable(POSTGRES_URL):
        schema = f"ap_bench_{tag}"
        try:
            await run("postgresql", ours(POSTGRES_URL, schema=schema), sdk_sqlalchemy(POSTGRES_URL))
        finally:
            await drop_postgres_schema(POSTGRES_URL, schema)
    if await reachable(REDIS_URL):
        prefix = f"apbench:{tag}"
        try:
            await run(
                "redis", ours(REDIS_URL, prefix=prefix), sdk_redis(REDIS_URL, f"{prefix}:sdk")
            )
        finally:
            await drop_redis_prefix(REDIS_URL, prefix)

    n = args.items
    print(f"| store | session | add_items of {n:,} | get_items() of {n:,} | client CPU add / get |")
    print("| --- | --- | ---: | ---: | ---: |")
    for backend, rows in results.items():
        for name in CONTENDERS:
            row = rows[name]
            print(
                f"| {backend} | {name} | {row['add']:.1f} ms | {row['get']:.1f} ms "
                f"| {row['add_cpu']:.0f} / {row['get_cpu']:.0f} ms |"
            )
    print(
        f"\n| store | ours encrypted (ttl) / SDK, target <= {TARGET}x | client CPU "
        "| ours encrypted / in clear |"
    )
    print("| --- | --- | --- | --- |")
    for backend, rows in results.items():
        mine, sdk, clear = rows[CONTENDERS[0]], rows[CONTENDERS[3]], rows[CONTENDERS[2]]
        sealed = rows[CONTENDERS[1]]
        print(
            f"| {backend} | {ratios(mine, sdk)} | {ratios(mine, sdk, '_cpu')} "
            f"| {ratios(sealed, clear)} |"
        )


def ratios(a: dict[str, float], b: dict[str, float], suffix: str = "") -> str:
    """``add`` and ``get`` of ``a`` over ``b``."""
    return ", ".join(f"{m} {a[m + suffix] / b[m + suffix]:.2f}x" for m in ("add", "get"))


if __name__ == "__main__":
    asyncio.run(main())
