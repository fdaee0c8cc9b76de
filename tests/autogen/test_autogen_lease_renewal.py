"""The lease holder retries a renewal the store could not make at the next heartbeat.

The fault is a store double whose ``renew_lease`` raises ``StoreUnavailableError`` (what
every back end translates a broken connection into, tests/faults) while it refuses.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from agent_persist.errors import LeaseHeldError, StoreUnavailableError
from agent_persist.leases import LeaseHolder
from agent_persist.stores import Lease, MemoryStore


class FlakyRenewals(MemoryStore):
    """A memory store whose lease renewals fail while ``refusing`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.refusing = False
        self.renewed = 0

    async def _renew_lease(self, lease: Lease, *, ttl: timedelta) -> Lease:
        if self.refusing:
            raise StoreUnavailableError("connection refused (test double)")
        self.renewed += 1
        return await super()._renew_lease(lease, ttl=ttl)


async def test_a_failed_lease_renewal_is_retried_at_the_next_tick(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyRenewals()
    holder = LeaseHolder(store, "leased", owner="me", ttl=timedelta(seconds=0.6), wait=None)
    await holder.acquire()
    with caplog.at_level(logging.WARNING, logger="agent_persist"):
        store.refusing = True
        for _ in range(500):  # until a renewal has failed (one comes every 0.2 s)
            if any("renewal failed" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.01)
        store.refusing = False
        renewed = store.renewed
        for _ in range(500):  # until a renewal has gone through again
            if store.renewed > renewed:
                break
            await asyncio.sleep(0.01)
    assert any("renewal failed" in r.getMessage() for r in caplog.records)
    assert store.renewed > renewed, "renewed at a later tick"
    holder.check()  # not lost
    with pytest.raises(LeaseHeldError):
        await store.acquire_lease("leased", "other", ttl=timedelta(seconds=1))
    await holder.release()  # the failed renewal does not surface here
    await store.acquire_lease("leased", "other", ttl=timedelta(seconds=1))
