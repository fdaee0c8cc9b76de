"""PostgreSQL behind a fault-injecting proxy: typed errors, recovery, nothing acknowledged lost.

The proxy (:mod:`fault_proxy`) sits on a loopback port between the store and the shared
server, which is never stopped: only the proxied connections break.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, cast

import pytest
import sqlalchemy as sa
from fault_matrix import Tally, lost_checkpoints, run_matrix
from fault_proxy import FaultProxy

from agent_persist.errors import StoreUnavailableError
from agent_persist.stores.base import BaseStore
from agent_persist.stores.sql import SQLStore
from agent_persist.testing.conformance import envelope

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = [pytest.mark.postgres, pytest.mark.needs_extras]


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[FaultProxy]:
    started = await FaultProxy.start(postgres_url, "postgres")
    yield started
    await started.close()


async def test_every_operation_survives_connection_faults(
    proxy: FaultProxy, postgres_url: str, postgres_schema: str, tallies: list[Tally]
) -> None:
    tally = Tally("postgresql")
    tallies.append(tally)
    store = SQLStore(proxy.url(postgres_url), schema=postgres_schema)
    direct = SQLStore(postgres_url, schema=postgres_schema)

    async def reopen() -> BaseStore:
        return SQLStore(proxy.url(postgres_url), schema=postgres_schema)

    try:
        await store.setup()
        await run_matrix(store, proxy, tally, reopen=reopen)
        lost = await lost_checkpoints(direct, tally.acknowledged)
        tally.lost = len(lost)
    finally:
        await store.close()
        await direct.close()
    assert tally.raw == [], "\n".join(tally.raw)
    assert lost == []
    assert tally.injected > 100
    assert tally.recovered == tally.injected
    assert len(tally.acknowledged) >= 5


async def test_a_backend_the_server_terminates_mid_call_is_unavailable_then_recovers(
    postgres_url: str, postgres_schema: str
) -> None:
    """``pg_terminate_backend`` on the store's own connection while its put waits for a lock."""
    store = SQLStore(postgres_url, schema=postgres_schema)
    blocker = SQLStore(postgres_url, schema=postgres_schema)
    try:
        first = await store.put(envelope("t"))
        engine = cast("AsyncEngine", blocker.engine)
        async with engine.connect() as locker, engine.connect() as admin:
            await locker.begin()
            locker_pid = (await locker.execute(sa.text("SELECT pg_backend_pid()"))).scalar()
            await locker.execute(
                sa.text(f'SELECT 1 FROM "{postgres_schema}".agent_persist_threads FOR UPDATE')
            )
            put = asyncio.create_task(store.put(envelope("t", parent=first)))
            blocked = None
            while blocked is None and not put.done():  # the put waits for the row lock
                await asyncio.sleep(0.01)
                blocked = (
                    await admin.execute(
                        sa.text(
                            "SELECT pid FROM pg_stat_activity "
                            "WHERE :locker = ANY(pg_blocking_pids(pid))"
                        ),
                        {"locker": locker_pid},
                    )
                ).scalar()
            await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": blocked})
            with pytest.raises(StoreUnavailableError, match="terminat"):
                await put
            await locker.rollback()
        assert (await store.get("t")).checkpoint_id == first.checkpoint_id  # rolled back
        second = await store.put(envelope("t", parent=first))  # the same store object
        assert (await store.get("t")).checkpoint_id == second.checkpoint_id
    finally:
        await store.close()
        await blocker.close()
