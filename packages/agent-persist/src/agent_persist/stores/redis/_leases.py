"""The Redis store's leases: one hash per leased thread that expires with the lease.

    leases = Leases(keys, scripts, run)
    lease = await leases.acquire("thread-1", "worker-a", timedelta(seconds=30))

Taking, renewing and releasing are compare-and-set scripts, so two workers can never both
believe they hold a thread: the server compares the owner or token and acts in one step.
Expiry is Redis's own (``PEXPIRE``), so a crashed holder's lease simply runs out.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ...errors import LeaseHeldError, LeaseLostError
from .._records import describe
from ..base import Lease
from ._keys import STORE, RedisKeys, text

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

    from ._scripts import Scripts

__all__ = ["ACQUIRE_LEASE", "RELEASE_LEASE", "RENEW_LEASE", "Leases", "millis"]

ACQUIRE_LEASE = r"""
-- KEYS: lease. ARGV: owner, token, ttl_ms, has_take_over, take_over.
-- Returns {1} or {0, holder, ms left}. A lease of `take_over` is replaced like an expired one.
local holder = redis.call('HGET', KEYS[1], 'owner')
local replaceable = holder == ARGV[1] or (ARGV[4] == '1' and holder == ARGV[5])
if holder and not replaceable then return {0, holder, redis.call('PTTL', KEYS[1])} end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1}
"""

RENEW_LEASE = r"""
-- KEYS: lease. ARGV: token, ttl_ms. Returns 1 if renewed, 0 if the lease is lost.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""

RELEASE_LEASE = r"""
-- KEYS: lease. ARGV: token. Deletes the lease only if this token still holds it.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""

Run = Callable[["AsyncScript", Sequence[str], Sequence[Any]], Awaitable[Any]]
"""How the store runs a script (after its one-time setup, with its error translation)."""


def millis(duration: timedelta) -> int:
    """A positive duration in whole milliseconds, rounded up so it never becomes 0."""
    return max(1, math.ceil(duration / timedelta(milliseconds=1)))


class Leases:
    """The lease operations of one store (its keys, scripts and way to run them)."""

    def __init__(self, keys: RedisKeys, scripts: Scripts, run: Run) -> None:
        self._keys, self._scripts, self._run = keys, scripts, run

    async def acquire(
        self, thread_id: str, owner: str, ttl: timedelta, *, take_over: str | None = None
    ) -> Lease:
        """Take the lease if it is free, expired, ``owner``'s or ``take_over``'s (new token).

        ``expires_at`` is measured from before the request, so it never overstates the time
        the server grants.
        """
        token, now = secrets.token_hex(16), datetime.now(timezone.utc)
        keys = [self._keys.lease(thread_id)]
        taking = ["0", ""] if take_over is None else ["1", take_over]
        reply = await self._run(
            self._scripts.acquire_lease, keys, [owner, token, millis(ttl), *taking]
        )
        if int(reply[0]) == 0:
            until = now + timedelta(milliseconds=max(0, int(reply[2])))
            holder = text(reply[1])
            raise LeaseHeldError(
                f"{describe(STORE, thread_id)} is leased to {holder!r} "
                f"until about {until.isoformat()}",
                holder=holder,
                expires_at=until,
            )
        return Lease(thread_id, owner, token, now + ttl)

    async def renew(self, lease: Lease, ttl: timedelta) -> Lease:
        """Extend the lease while its token still holds it, else ``LeaseLostError``."""
        now = datetime.now(timezone.utc)
        keys = [self._keys.lease(lease.thread_id)]
        renewed = await self._run(self._scripts.renew_lease, keys, [lease.token, millis(ttl)])
        if not int(renewed):
            raise LeaseLostError(
                f"{describe(STORE, lease.thread_id)}: the lease of {lease.owner!r} "
                "expired or was taken over"
            )
        return Lease(lease.thread_id, lease.owner, lease.token, now + ttl)

    async def release(self, lease: Lease) -> None:
        """Delete the lease only if its token still holds it."""
        keys = [self._keys.lease(lease.thread_id)]
        await self._run(self._scripts.release_lease, keys, [lease.token])
