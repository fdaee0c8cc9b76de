"""Fault-test fixtures: a store behind the proxy, and the faults table printed at the end."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator

import pytest
from fault_matrix import Proxied, Tally, table
from fault_proxy import FaultProxy

from agent_persist.stores.base import BaseStore


@pytest.fixture(scope="session")
def tallies() -> Iterator[list[Tally]]:
    """Where each store's fault test leaves its tally; the table is printed at the end (-s)."""
    found: list[Tally] = []
    yield found
    if found:
        print("\n\nfault injection (tests/faults):\n" + table(found))


def _commit(label: bytes) -> bool:
    """A transaction's ``COMMIT``, or the put function's call (one statement in autocommit)."""
    return label.upper().startswith(b"COMMIT") or (
        label.startswith(b"EXECUTE ") and b"agent_persist_put_" in label
    )


@pytest.fixture(
    params=[
        pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.needs_extras]),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
async def proxied(request: pytest.FixtureRequest) -> AsyncIterator[Proxied]:
    """A set-up PostgreSQL or Redis store whose connections go through a fault proxy."""
    store: BaseStore
    if request.param == "postgresql":
        from agent_persist.stores.sql import SQLStore

        url: str = request.getfixturevalue("postgres_url")
        schema: str = request.getfixturevalue("postgres_schema")
        proxy = await FaultProxy.start(url, "postgres")
        store = SQLStore(proxy.url(url), schema=schema)
        commit = _commit
    else:
        pytest.importorskip("redis", reason="the redis extra is not installed")
        from agent_persist.stores.redis import RedisStore
        from agent_persist.stores.redis._checkpoints import PUT

        url = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        proxy = await FaultProxy.start(url, "redis")
        store = RedisStore.from_url(proxy.url(url), prefix=prefix)
        put_script = b"EVALSHA " + hashlib.sha1(PUT.encode()).hexdigest().encode()  # noqa: S324

        def commit(label: bytes) -> bool:
            return label == put_script

    await store.setup()
    yield store, proxy, commit
    await store.close()
    await proxy.close()
