"""PostgreSQL behind a fault-injecting proxy: typed errors, recovery, nothing acknowledged lost.

The proxy (:mod:`fault_proxy`) sits on a loopback port between the store and the shared
server, which is never stopped: only the proxied connections break.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fault_matrix import Tally, lost_checkpoints, run_matrix
from fault_proxy import FaultProxy

from agent_persist.stores.base import BaseStore
from agent_persist.stores.sql import SQLStore

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
