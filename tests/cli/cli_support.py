"""Helpers and fixtures for the command's tests: a store on each backend, a test registry.

``backend`` is parametrised over SQLite, PostgreSQL and Redis; each gives the command-line
arguments that name its isolated store (a file, a schema, a key prefix), a way to open the
same store from the test, and a way to damage a stored checkpoint.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from agent_persist.cli import CliConfig, cli
from agent_persist.envelope import Envelope, Producer
from agent_persist.migrations import Registry
from agent_persist.stores.base import BaseStore

T = TypeVar("T")
KIND = "cli.test"
PRODUCER = Producer(package="cli-tests")


def arun(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from a sync test (the command runs its own event loop)."""
    return asyncio.run(coro)


def make_registry(*, fail_on: Callable[[Any], bool] | None = None) -> Registry:
    """``cli.test`` at version 2; 1 -> 2 renames ``n`` to ``count`` (and raises if told to)."""
    registry = Registry()
    registry.register_kind(KIND, version=2)

    @registry.register(KIND, 1, 2)
    def rename(payload: Any) -> Any:
        if fail_on is not None and fail_on(payload):
            raise RuntimeError("this payload cannot be migrated")
        payload["count"] = payload.pop("n")
        return payload

    return registry


def first(thread_id: str, *, version: int = 1, payload: Any = None, **fields: Any) -> Envelope:
    """A thread's first checkpoint of the test kind."""
    return Envelope.create(
        kind=KIND,
        schema_version=version,
        thread_id=thread_id,
        payload={"n": 0} if payload is None else payload,
        producer=PRODUCER,
        **fields,
    )


PLAIN_ENV: dict[str, str | None] = {"FORCE_COLOR": None, "NO_COLOR": None, "COLUMNS": None}
"""The variables that change how the command prints, unset unless a test sets them."""


def invoke(
    *args: str,
    registry: Registry | None = None,
    terminal: bool | None = None,
    env: dict[str, str | None] | None = None,
    **kwargs: Any,
) -> Result:
    """Run ``agent-persist ARGS`` in-process; never raises, the result holds the exit code.

    ``terminal=True`` prints as on a terminal (tables, colour, progress bars on stderr).
    """
    config = CliConfig(registry=registry, terminal=terminal)
    return CliRunner().invoke(
        cli, list(args), obj=config, env={**PLAIN_ENV, **(env or {})}, **kwargs
    )


@dataclass
class Backend:
    """One isolated store, seen by the command (``args``) and by the test (``open``)."""

    name: str
    args: list[str]
    open: Callable[[], BaseStore]
    tamper: Callable[[BaseStore, str, str, bytes], Awaitable[None]]

    def invoke(self, *args: str, registry: Registry | None = None, **kwargs: Any) -> Result:
        """Run ``agent-persist`` with this store's options after the command's arguments."""
        return invoke(*args, *self.args, registry=registry, **kwargs)

    async def with_store(self, work: Callable[[BaseStore], Awaitable[T]]) -> T:
        """Open the store, run ``work``, close it."""
        store = self.open()
        await store.setup()
        try:
            return await work(store)
        finally:
            await store.close()


def sqlite_backend(path: Path) -> Backend:
    """A SQLite store in ``path`` (created on first use)."""
    from agent_persist.stores.sql import SQLStore

    url = f"sqlite:///{path}"

    async def tamper(store: BaseStore, thread_id: str, checkpoint_id: str, payload: bytes) -> None:
        raw = sqlite3.connect(path)
        with raw:
            raw.execute(
                "UPDATE agent_persist_checkpoints SET payload = ? WHERE checkpoint_id = ? AND "
                "thread_pk = (SELECT pk FROM agent_persist_threads WHERE namespace = ? AND "
                "thread_id = ?)",
                (payload, checkpoint_id, store.namespace, thread_id),
            )
        raw.close()

    return Backend("sqlite", ["--url", url], lambda: SQLStore(url), tamper)


def _postgres(request: pytest.FixtureRequest) -> Backend:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from agent_persist.stores.sql import SQLStore

    url: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")

    async def tamper(store: BaseStore, thread_id: str, checkpoint_id: str, payload: bytes) -> None:
        engine = create_async_engine(sa.make_url(url).set(drivername="postgresql+asyncpg"))
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        f'UPDATE "{schema}".agent_persist_checkpoints SET payload = :v WHERE '
                        f'checkpoint_id = :c AND thread_pk = (SELECT pk FROM "{schema}".'
                        "agent_persist_threads WHERE namespace = :n AND thread_id = :t)"
                    ),
                    {"v": payload, "c": checkpoint_id, "n": store.namespace, "t": thread_id},
                )
        finally:
            await engine.dispose()

    return Backend(
        "postgres",
        ["--url", url, "--schema", schema],
        lambda: SQLStore(url, schema=schema),
        tamper,
    )


def _redis(request: pytest.FixtureRequest) -> Backend:
    from redis.asyncio import Redis

    from agent_persist.stores.redis import RedisStore
    from agent_persist.stores.redis._keys import RedisKeys, payload_field

    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")

    async def tamper(store: BaseStore, thread_id: str, checkpoint_id: str, payload: bytes) -> None:
        client = Redis.from_url(url)
        try:
            key = RedisKeys(prefix, store.namespace).checkpoints(thread_id)
            await client.hset(key, payload_field(checkpoint_id), payload)  # pyright: ignore
        finally:
            await client.aclose()

    return Backend(
        "redis",
        ["--url", url, "--prefix", prefix],
        lambda: RedisStore.from_url(url, prefix=prefix),
        tamper,
    )


@pytest.fixture
def sqlite(tmp_path: Path) -> Backend:
    """A SQLite store in a fresh file (created on first use)."""
    return sqlite_backend(tmp_path / "store.db")


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.needs_extras]),
        pytest.param("redis", marks=[pytest.mark.redis, pytest.mark.needs_extras]),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The same test on SQLite, PostgreSQL and Redis (a server test skips, or fails under CI)."""
    if request.param == "sqlite":
        return sqlite_backend(tmp_path / "store.db")
    if request.param == "postgres":
        return _postgres(request)
    pytest.importorskip("redis", reason="the redis extra is not installed")
    return _redis(request)
