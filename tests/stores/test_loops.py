"""A connection the caller built belongs to one event loop; the store says so on another.

A store opened from a URL holds one pool per loop (the session scenarios in
``tests/openai_agents/test_session_loops.py`` run it from many threads and loops). An
``AsyncEngine`` or Redis client passed in is the caller's: the store uses it on the first loop
it runs on, and anywhere else raises ``EventLoopMismatchError`` before any I/O, instead of
the driver's hang, ``RuntimeError`` or crash. After ``close()`` and the caller's own cleanup,
another loop may use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from agent_persist.errors import EventLoopMismatchError
from agent_persist.stores.base import BaseStore

Cleanup = Callable[[], Awaitable[Any]]


def check_pinned(store: BaseStore, cleanup: Cleanup) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(store.append("t", "log", ["a"]))
        with pytest.raises(EventLoopMismatchError, match="give it a URL"):
            asyncio.run(store.append("t", "log", ["refused"]))
        assert loop.run_until_complete(store.read_log("t", "log")) == ["a"]
        loop.run_until_complete(store.close())
        loop.run_until_complete(cleanup())
    finally:
        loop.close()

    async def elsewhere() -> list[Any]:
        try:
            return await store.read_log("t", "log")
        finally:
            await store.close()
            await cleanup()

    assert asyncio.run(elsewhere()) == ["a"]


@pytest.mark.postgres
@pytest.mark.needs_extras
def test_a_caller_engine_serves_its_first_loop_only(
    postgres_url: str, postgres_schema: str
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from agent_persist.stores.sql import SQLStore

    engine = create_async_engine(sa.make_url(postgres_url).set(drivername="postgresql+asyncpg"))
    check_pinned(SQLStore(engine, schema=postgres_schema), engine.dispose)


@pytest.mark.redis
@pytest.mark.needs_extras
def test_a_caller_client_serves_its_first_loop_only(redis_url: str, redis_prefix: str) -> None:
    from redis.asyncio import Redis

    from agent_persist.stores.redis import RedisStore

    client = Redis.from_url(redis_url)
    check_pinned(RedisStore(client, prefix=redis_prefix), client.aclose)
