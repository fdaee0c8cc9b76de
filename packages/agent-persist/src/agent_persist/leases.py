"""Leases for durable runs: owner ids a restart can prove dead, and a holder that keeps one.

    holder = LeaseHolder(store, "t-1", owner=owner_id(), ttl=DEFAULT_LEASE_TTL, wait=None)
    await holder.acquire()      # ThreadBusyError if another live worker keeps the thread
    await store.put(envelope, lease=holder.lease)   # LeaseLostError once the lease is lost
    await holder.release()

:func:`owner_id` names this process so that :func:`owner_is_dead` can later prove it gone
(see :mod:`agent_persist._owners`); :class:`LeaseHolder` acquires a thread's lease (taking it
over at once from a provably dead owner, else waiting a bounded time), renews it in the
background and releases it (see :mod:`agent_persist._lease_holder`). Both adapters' durable
runs hold one per run.
"""

from __future__ import annotations

from ._lease_holder import DEFAULT_LEASE_TTL, LeaseHolder, default_lease_wait, heartbeat
from ._owners import OwnerIdentity, owner_id, owner_is_dead, parse_owner

__all__ = [
    "DEFAULT_LEASE_TTL",
    "LeaseHolder",
    "OwnerIdentity",
    "default_lease_wait",
    "heartbeat",
    "owner_id",
    "owner_is_dead",
    "parse_owner",
]
