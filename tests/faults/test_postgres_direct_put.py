"""PostgreSQL's put sent straight on the asyncpg connection: what SQLAlchemy used to handle.

The put bypasses SQLAlchemy's execution, so the runner itself must do what SQLAlchemy did
for a call that fails: a cancelled or timed-out put must not commit later, a lost server
must cost one failed call (not one per pooled connection), and the lease and TTL checks
must use the time after the wait for a connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, cast

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import QueuePool

from agent_persist.errors import LeaseLostError, StoreUnavailableError
from agent_persist.stores.sql import SQLStore
from agent_persist.testing.conformance import envelope

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = [pytest.mark.postgres, pytest.mark.needs_extras]


@pytest.fixture
async def admin(postgres_url: str, postgres_schema: str) -> AsyncIterator[SQLStore]:
    """A store of its own on the same schema, whose engine locks rows and ends backends."""
    store = SQLStore(postgres_url, schema=postgres_schema)
    yield store
    await store.close()


async def _running_puts(engine: AsyncEngine, schema: str) -> list[int]:
    """The server backends running a put in ``schema`` (other tests run theirs too)."""
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.text(
                "SELECT pid FROM pg_stat_activity WHERE position(:schema IN query) > 0 "
                "AND position('agent_persist_put_' IN query) > 0 "
                "AND state = 'active' AND pid <> pg_backend_pid()"
            ),
            {"schema": schema},
        )
        return list(found.scalars())


@pytest.mark.parametrize("stop", ["cancel", "command_timeout"])
async def test_a_put_stopped_while_it_waits_never_commits_later(
    postgres_url: str, postgres_schema: str, admin: SQLStore, stop: str
) -> None:
    """Cancelled by the caller or by ``command_timeout`` while the server waits on a lock."""
    url = postgres_url + ("?command_timeout=1.5" if stop == "command_timeout" else "")
    store = SQLStore(url, schema=postgres_schema, pool_size=2)
    try:
        first = await store.put(envelope("t"), appends={"a": [1]})
        second = envelope("t", parent=first, payload={"n": 2})
        engine = cast("AsyncEngine", admin.engine)
        async with engine.connect() as locker:
            await locker.begin()
            await locker.execute(
                sa.text(f'SELECT 1 FROM "{postgres_schema}".agent_persist_threads FOR UPDATE')
            )
            put = asyncio.ensure_future(store.put(second, appends={"a": [2]}))
            running: list[int] = []
            while not running and not put.done():  # until the put waits for the row lock
                await asyncio.sleep(0.02)
                running = await _running_puts(engine, postgres_schema)
            assert running, "the put did not wait for the lock"
            if stop == "cancel":
                put.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await put
            else:
                with pytest.raises(StoreUnavailableError):
                    await put
            await locker.rollback()  # a put still running would now go on and commit
        for _ in range(500):  # the cancel request reaches the backend on its own time
            if not await _running_puts(engine, postgres_schema):
                break
            await asyncio.sleep(0.02)
        assert await _running_puts(engine, postgres_schema) == []
        assert (await store.get("t")).checkpoint_id == first.checkpoint_id
        assert await store.read_log("t", "a") == [1]
        pool = cast("QueuePool", store.engine.pool)
        assert pool.checkedout() == 0
        third = await store.put(envelope("t", parent=first), appends={"a": [3]})
        assert (await store.get("t")).checkpoint_id == third.checkpoint_id
    finally:
        await store.close()


async def test_a_lost_server_costs_one_failed_put_not_one_per_connection(
    postgres_url: str, postgres_schema: str, admin: SQLStore
) -> None:
    """Every pooled connection ended (a restart, a failover): the first put fails, no more."""
    store = SQLStore(postgres_url, schema=postgres_schema, pool_size=4, warm_pool=True)
    try:
        await store.setup()
        head = await store.put(envelope("t"))
        engine = cast("AsyncEngine", store.engine)

        async def backend() -> int:  # four at once: each of the pool's connections
            async with engine.connect() as conn:
                pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
                await asyncio.sleep(0.2)
                return int(pid)

        pids = set(await asyncio.gather(*(backend() for _ in range(4))))
        assert len(pids) == 4
        async with cast("AsyncEngine", admin.engine).begin() as conn:
            for pid in pids:
                await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        failed = 0
        for n in range(6):
            try:
                head = await store.put(envelope("t", parent=head, payload={"n": n}))
            except StoreUnavailableError:
                failed += 1
        assert failed == 1
        assert (await store.get("t")).payload == {"n": 5}
    finally:
        await store.close()


async def test_a_lease_that_expires_while_the_put_waits_for_a_connection_is_lost(
    postgres_url: str, postgres_schema: str
) -> None:
    """The lease is checked against the time the put is sent, not the time it was called."""
    store = SQLStore(postgres_url, schema=postgres_schema, pool_size=1)
    try:
        first = await store.put(envelope("t"))
        lease = await store.acquire_lease("t", "worker", ttl=timedelta(seconds=1))
        engine = cast("AsyncEngine", store.engine)
        busy = asyncio.Event()

        async def hold_the_only_connection() -> None:
            async with engine.connect() as conn:
                busy.set()
                await conn.execute(sa.text("SELECT pg_sleep(1.5)"))

        holder = asyncio.ensure_future(hold_the_only_connection())
        await busy.wait()
        with pytest.raises(LeaseLostError):
            await store.put(envelope("t", parent=first), lease=lease)
        await holder
        assert (await store.get("t")).checkpoint_id == first.checkpoint_id
    finally:
        await store.close()
