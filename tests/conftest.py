"""Shared fixtures: the real PostgreSQL and Redis servers, or a skip (a failure under CI)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get(
    "AGENT_PERSIST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AGENT_PERSIST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _require_server(name: str, url: str) -> str:
    """Return ``url`` if its server accepts TCP connections; else skip, or fail under CI."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    try:
        with socket.create_connection((host, port or 0), timeout=2):
            return url
    except OSError as exc:
        reason = f"{name} at {host}:{port} is unreachable ({exc}); set the URL or start it"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}. CI requires every service test to run.", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server's URL (``AGENT_PERSIST_POSTGRES_URL``)."""
    return _require_server("PostgreSQL", POSTGRES_URL)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server's URL (``AGENT_PERSIST_REDIS_URL``)."""
    return _require_server("Redis", REDIS_URL)


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
            await client.unlink(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL schema name no other test uses; dropped with everything in it afterwards."""
    schema = f"ap_test_{uuid.uuid4().hex}"
    yield schema
    asyncio.run(_drop_schema(postgres_url, schema))


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix no other test uses; its keys are deleted afterwards."""
    prefix = f"aptest:{uuid.uuid4().hex}"
    yield prefix
    asyncio.run(_drop_prefix(redis_url, prefix))
