"""The SQL store's leases: one conditional statement each, so they are race-free.

    lease = acquire(conn, scope, "thread-1", "worker-a", now, ttl=30.0)
    lease = renew(conn, scope, lease, now, ttl=30.0)

A lease row is (namespace, thread id) -> owner, token, expiry (epoch seconds, wall clock).
Taking a lease is a single upsert whose ``ON CONFLICT ... DO UPDATE`` only fires when the
stored lease expired or belongs to the same owner (or to the dead owner being taken over);
the database's row lock makes it atomic across processes, so of N concurrent takers exactly
one gets a row back. A write under a lease checks its token first in the write's own
transaction (:func:`hold`).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

from sqlalchemy.engine import Connection

from ...errors import LeaseHeldError, LeaseLostError
from ..base import Lease
from ._statements import Scope

__all__ = ["acquire", "hold", "lease_lost", "release", "renew"]

_ATTEMPTS = 5


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def acquire(
    conn: Connection,
    scope: Scope,
    thread_id: str,
    owner: str,
    now: float,
    *,
    ttl: float,
    take_over: str | None = None,
) -> Lease:
    """Take the thread if it is free, expired, ``owner``'s or ``take_over``'s, with a new token.

    Raises:
        LeaseHeldError: Another owner holds an unexpired lease (named in the error).
    """
    token, expires_at = secrets.token_hex(16), now + ttl
    identity = scope.identity(thread_id)
    for _ in range(_ATTEMPTS):
        taken = scope.sql.take_lease(
            conn,
            **identity,
            owner=owner,
            token=token,
            expires_at=expires_at,
            now=now,
            take_over=take_over,
        )
        if taken.first() is not None:
            return Lease(thread_id, owner, token, _when(expires_at))
        held = scope.sql.lease_holder(conn, **scope.key(thread_id)).first()
        if held is not None:
            until = _when(held.expires_at)
            raise LeaseHeldError(
                f"{scope.where(thread_id)} is leased to {held.owner!r} until {until.isoformat()}",
                holder=held.owner,
                expires_at=until,
            )
        # Released between the two statements: try to take it again.
    raise LeaseHeldError(f"{scope.where(thread_id)} is contended; try again")


def hold(conn: Connection, scope: Scope, lease: Lease | None, now: float) -> None:
    """Check, first in a write's transaction, that ``lease`` still holds its thread.

    The lease row stays locked until the write commits, so the write and the lease it was
    made under are one atomic step.

    Raises:
        LeaseLostError: The lease expired, was released or another acquire replaced it.
    """
    if lease is None:
        return
    found = scope.sql.hold_lease(conn, **scope.key(lease.thread_id), token=lease.token, now=now)
    if found.first() is None:
        raise lease_lost(scope, lease)


def lease_lost(scope: Scope, lease: Lease) -> LeaseLostError:
    """The error for a write refused because ``lease`` no longer holds its thread."""
    return LeaseLostError(
        f"{scope.where(lease.thread_id)}: the lease of {lease.owner!r} "
        "expired or was taken over; nothing was written"
    )


def renew(conn: Connection, scope: Scope, lease: Lease, now: float, *, ttl: float) -> Lease:
    """Extend a lease whose token still holds the thread and has not expired.

    Raises:
        LeaseLostError: The lease expired or another acquire replaced its token.
    """
    expires_at = now + ttl
    renewed = scope.sql.renew_lease(
        conn, **scope.key(lease.thread_id), token=lease.token, now=now, expires_at=expires_at
    )
    if renewed.first() is None:
        raise LeaseLostError(
            f"{scope.where(lease.thread_id)}: the lease of {lease.owner!r} "
            "expired or was taken over"
        )
    return Lease(lease.thread_id, lease.owner, lease.token, _when(expires_at))


def release(conn: Connection, scope: Scope, lease: Lease) -> None:
    """Delete the lease only if its token still holds the thread."""
    scope.sql.release_lease(conn, **scope.key(lease.thread_id), token=lease.token)
