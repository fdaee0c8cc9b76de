"""Stores for the AutoGen tests: each test gets its own SQLite file, schema or key prefix."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # scenarios.py, shared with the worker script

from agent_persist import open_store
from agent_persist.stores import BaseStore

StoreSpec = tuple[str, dict[str, Any]]
"""A store URL and the options that isolate it."""


async def _drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(sa.make_url(url).set(drivername="postgresql+asyncpg"))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


async def _drop_prefix(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=[pytest.mark.postgres]),
        pytest.param("redis", id="redis", marks=[pytest.mark.redis]),
    ]
)
async def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreSpec]:
    """A persistent store (URL and isolating options), cleaned up afterwards."""
    kind = request.param
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'autogen.db'}", {}
    elif kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        schema = f"ap_test_{uuid.uuid4().hex}"
        yield url, {"schema": schema}
        await _drop_schema(url, schema)
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"aptest:{uuid.uuid4().hex}"
        yield url, {"prefix": prefix}
        await _drop_prefix(url, prefix)


@pytest.fixture
async def store(store_spec: StoreSpec) -> AsyncIterator[BaseStore]:
    """The persistent store of ``store_spec``, open."""
    url, options = store_spec
    async with open_store(url, **options) as opened:
        yield opened


@pytest.fixture
async def memory_store() -> AsyncIterator[BaseStore]:
    """A fresh in-process store."""
    async with open_store("memory://") as opened:
        yield opened
