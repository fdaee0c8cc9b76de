"""Every built-in store with a way to read its raw state, for tests that run on all of them.

    @pytest.fixture(params=BACKENDS)
    async def backend(request, tmp_path): ...   # see ``open_backend``

``raw_state()`` reads the stored data around the store (Python objects, SQL rows, Redis
keys), so a test can prove a refused call changed nothing at all, not only what the API shows.
``damage`` writes raw values into a thread's stored parts for the read-path fuzzers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from agent_persist.stores.base import BaseStore
from agent_persist.stores.memory import MemoryStore
from agent_persist.stores.sql import SQLStore
from agent_persist.testing import Tamper

TABLES = (
    "agent_persist_threads",
    "agent_persist_checkpoints",
    "agent_persist_logs",
    "agent_persist_log_items",
    "agent_persist_leases",
    "agent_persist_audit_sessions",
    "agent_persist_audit_messages",
    "agent_persist_audit_tool_calls",
    "agent_persist_schema_version",
)

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.needs_extras]),
    pytest.param("redis", marks=[pytest.mark.redis, pytest.mark.needs_extras]),
]


@dataclass
class Backend:
    """A store, a factory of more stores on the same data, and the data's raw state."""

    name: str
    make: Callable[..., Awaitable[BaseStore]]
    raw_state: Callable[[], Awaitable[list[str]]]
    store: BaseStore


def _sqlite_state(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return sorted(
            f"{table}: {row!r}"
            for table in TABLES
            for row in connection.execute(f"SELECT * FROM {table}")
        )
    finally:
        connection.close()


async def _postgres_state(url: str, schema: str) -> list[str]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(sa.make_url(url).set(drivername="postgresql+asyncpg"))
    try:
        async with engine.connect() as conn:
            rows: list[str] = []
            for table in TABLES:
                result = await conn.execute(sa.text(f'SELECT * FROM "{schema}".{table}'))
                rows += [f"{table}: {tuple(row)!r}" for row in result.all()]
            return sorted(rows)
    finally:
        await engine.dispose()


async def _redis_state(url: str, prefix: str) -> list[str]:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = sorted([key async for key in client.scan_iter(match=f"{prefix}:*", count=500)])
        return [f"{key!r}: {await client.dump(key)!r}" for key in keys]
    finally:
        await client.aclose()


async def open_backend(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    """Yield a set-up :class:`Backend` of that name; closes its stores afterwards."""
    stores: list[BaseStore] = []
    shared: dict[str, Any] = {}

    async def make(**options: Any) -> BaseStore:
        store: BaseStore
        if name == "memory":
            store = MemoryStore(shared=shared, **options)
        elif name == "sqlite":
            store = SQLStore(f"sqlite:///{tmp_path / 'store.db'}", **options)
        elif name == "postgres":
            url = request.getfixturevalue("postgres_url")
            store = SQLStore(url, schema=request.getfixturevalue("postgres_schema"), **options)
        else:
            from agent_persist.stores.redis import RedisStore

            url = request.getfixturevalue("redis_url")
            store = RedisStore.from_url(
                url, prefix=request.getfixturevalue("redis_prefix"), **options
            )
        stores.append(store)
        await store.setup()
        return store

    async def raw_state() -> list[str]:
        if name == "memory":
            return [repr(shared)]
        if name == "sqlite":
            return _sqlite_state(tmp_path / "store.db")
        if name == "postgres":
            url = request.getfixturevalue("postgres_url")
            return await _postgres_state(url, request.getfixturevalue("postgres_schema"))
        url = request.getfixturevalue("redis_url")
        return await _redis_state(url, request.getfixturevalue("redis_prefix"))

    store = await make()
    yield Backend(name, make, raw_state, store)
    for opened in stores:
        await opened.close()


JOURNAL = "$journal"
"""The per-turn log the storage tests fill and clear (as a durable call journal would)."""


async def journal_turns(
    store: BaseStore,
    thread_id: str,
    stored_items: Callable[[], Awaitable[int]],
    *,
    turns: int = 12,
    clear_in_put: bool = True,
) -> list[int]:
    """Run agent turns; after each, how many items of :data:`JOURNAL` the store still holds.

    A turn appends three items to the journal and puts a checkpoint that clears it
    (``clear_in_put``), or puts the checkpoint and clears the journal after it (the
    checkpoint then pins the items, which must stay). ``stored_items`` counts the items
    in the backend's own structures (rows, hash fields), live or stamped removed.
    """
    from agent_persist.testing.conformance import envelope

    parent = None
    counts: list[int] = []
    for turn in range(turns):
        await store.append(thread_id, JOURNAL, [{"call": turn, "part": part} for part in range(3)])
        new = envelope(thread_id, parent=parent)
        if clear_in_put:
            parent = await store.put(new, appends={"transcript": [turn]}, clear_logs=[JOURNAL])
        else:
            parent = await store.put(new, appends={"transcript": [turn]})
            await store.clear_log(thread_id, JOURNAL)
        assert await store.read_log(thread_id, JOURNAL, at=parent) == (
            [] if clear_in_put else [{"call": turn, "part": part} for part in range(3)]
        )
        counts.append(await stored_items())
    return counts


async def redis_journal_keys(raw: Any, store: BaseStore, thread_id: str) -> int:
    """The journal's stored entries on Redis: items and seqs, live, mirrored or stamped removed."""
    from agent_persist.stores.redis import RedisStore
    from agent_persist.stores.redis._keys import RedisKeys

    assert isinstance(store, RedisStore)
    log = RedisKeys(store.prefix, store.namespace).log(thread_id, JOURNAL)
    hashes = [await raw.hlen(log + suffix) for suffix in (":i", ":r")]
    lists = [await raw.llen(log + suffix) for suffix in (":o", ":q", ":d")]
    return sum(hashes) + sum(lists)


async def check_redis_journal_freed(store: BaseStore, raw: Any) -> None:
    """``clear_logs`` in the put frees every journal key; a clear after it keeps them all."""

    def entries(thread_id: str) -> Callable[[], Awaitable[int]]:
        return lambda: redis_journal_keys(raw, store, thread_id)

    assert await journal_turns(store, "t", entries("t")) == [0] * 12
    kept = await journal_turns(store, "u", entries("u"), clear_in_put=False)
    # each removed item: its data, its stamp and its place in the collection queue
    assert kept == [9 * (turn + 1) for turn in range(12)]


def redis_tamper(prefix: str, raw: Any) -> Tamper:
    """The conformance suite's ``tamper`` on Redis: overwrite a stored header or payload.

    ``raw`` is a client on the same server (or cluster) as the store under test.
    """
    from agent_persist.stores.redis._keys import RedisKeys, header_field, payload_field

    async def overwrite(
        store: BaseStore,
        thread_id: str,
        checkpoint_id: str,
        *,
        header: str | None = None,
        payload: bytes | None = None,
    ) -> None:
        key = RedisKeys(prefix, store.namespace).checkpoints(thread_id)
        if header is not None:
            await raw.hset(key, header_field(checkpoint_id), header)
        if payload is not None:
            await raw.hset(key, payload_field(checkpoint_id), payload)

    return overwrite
