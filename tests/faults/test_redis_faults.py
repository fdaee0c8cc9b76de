"""Redis behind a fault-injecting proxy: typed errors, recovery, nothing acknowledged lost.

The proxy (:mod:`fault_proxy`) sits on a loopback port between the store and the shared
server, which is never stopped: only the proxied connections break.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

pytest.importorskip("redis", reason="the redis extra is not installed")

from fault_matrix import Tally, lost_checkpoints, run_matrix
from fault_proxy import FaultProxy

from agent_persist.stores.base import BaseStore
from agent_persist.stores.redis import RedisStore

pytestmark = [pytest.mark.redis]


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[FaultProxy]:
    started = await FaultProxy.start(redis_url, "redis")
    yield started
    await started.close()


async def test_every_operation_survives_connection_faults(
    proxy: FaultProxy, redis_url: str, redis_prefix: str, tallies: list[Tally]
) -> None:
    tally = Tally("redis")
    tallies.append(tally)
    store = RedisStore.from_url(proxy.url(redis_url), prefix=redis_prefix)
    direct = RedisStore.from_url(redis_url, prefix=redis_prefix)

    async def reopen() -> BaseStore:
        return RedisStore.from_url(proxy.url(redis_url), prefix=redis_prefix)

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
    assert tally.injected > 80
    assert tally.recovered == tally.injected
    assert len(tally.acknowledged) >= 5
