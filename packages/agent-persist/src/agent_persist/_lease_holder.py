"""Exclusive ownership of a thread while a worker runs it, and a quick restart after a crash.

Shared by the adapters' durable runs (AutoGen's teams and agents, the Agents SDK's
``@durable``); re-exported from :mod:`agent_persist.leases`::

    holder = LeaseHolder(store, "t-1", owner=owner_id(), ttl=DEFAULT_LEASE_TTL, wait=None)
    await holder.acquire()      # ThreadBusyError if another live worker keeps it
    await store.put(envelope, lease=holder.lease)   # LeaseLostError once the lease is lost
    await holder.release()

A background task renews the lease every third of its ``ttl`` (the heartbeat). When another
owner holds the thread, :meth:`LeaseHolder.acquire` takes its lease over at once if that
owner is provably dead (a process of this machine and pid namespace that no longer runs,
see :func:`agent_persist.leases.owner_is_dead`), else waits for it to expire or be
released: by default for at most the TTL plus one heartbeat, the longest a lease of a
crashed worker with the same settings can outlive it. Every write passes :attr:`lease`, and
the store checks its token in the write's own transaction, so a worker that lost the thread
can never write, whatever its clock or its renewals say.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from ._owners import owner_is_dead
from .errors import AgentPersistError, LeaseHeldError, LeaseLostError, ThreadBusyError
from .stores.base import CheckpointStore, Lease

__all__ = ["DEFAULT_LEASE_TTL", "LeaseHolder", "default_lease_wait", "heartbeat"]

_logger = logging.getLogger("agent_persist")

DEFAULT_LEASE_TTL = timedelta(seconds=15)
"""How long a lease lasts without renewal: how long a crashed worker on another machine
can keep its thread from the next one."""

_POLL = 0.25
"""Seconds between two attempts while waiting for another worker's lease."""


def heartbeat(ttl: timedelta) -> timedelta:
    """How often a lease of ``ttl`` is renewed: every third of it."""
    return ttl / 3


def default_lease_wait(ttl: timedelta) -> timedelta:
    """The default wait for another worker's lease: ``ttl`` plus one heartbeat."""
    return ttl + heartbeat(ttl)


class LeaseHolder:
    """Acquires, renews in the background, and releases one thread's lease.

    Args:
        store: Where the lease lives.
        thread_id: The thread to hold.
        owner: This worker's owner id (:func:`agent_persist.leases.owner_id` unless chosen
            by hand).
        ttl: How long the lease lasts without renewal; renewed every third of it.
        wait: How long to wait for another live worker's lease; ``None`` for the default
            (:func:`default_lease_wait`), ``timedelta(0)`` to fail at once.
        logger: Where waits, take-overs and failed renewals are logged: the calling
            adapter's logger, so its users see them where they look (``agent_persist``'s
            by default).
    """

    def __init__(
        self,
        store: CheckpointStore,
        thread_id: str,
        *,
        owner: str,
        ttl: timedelta,
        wait: timedelta | None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._store, self._thread_id, self._owner = store, thread_id, owner
        self._logger = logger if logger is not None else _logger
        self._ttl = ttl
        self._wait = default_lease_wait(ttl) if wait is None else wait
        self._lease: Lease | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._lost: LeaseLostError | None = None

    @property
    def lease(self) -> Lease:
        """The lease held now, to pass to every write.

        Raises:
            LeaseLostError: Renewing it failed, or it is not held.
        """
        self.check()
        if self._lease is None:
            raise LeaseLostError(f"thread {self._thread_id!r}: the lease is not held")
        return self._lease

    async def acquire(self) -> None:
        """Take the lease: at once if free or its holder is provably dead, else wait for it.

        Raises:
            ThreadBusyError: Another live worker kept it longer than ``wait``.
        """
        started = time.monotonic()
        deadline = started + self._wait.total_seconds()
        waited_for: str | None = None
        while True:
            try:
                self._lease = await self._store.acquire_lease(
                    self._thread_id, self._owner, ttl=self._ttl
                )
                break
            except LeaseHeldError as refused:
                held = refused
            if self._provably_dead(held.holder):
                try:
                    self._lease = await self._take_over(held.holder)
                    break
                except LeaseHeldError as faster:  # another restarting worker took it first
                    held = faster
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._busy(held) from held
            if waited_for is None:
                waited_for = held.holder or "another worker"
                self._logger.warning(
                    "thread %r is leased to %s until %s; waiting up to %.1f s for it",
                    self._thread_id,
                    waited_for,
                    held.expires_at.isoformat() if held.expires_at else "an unknown time",
                    remaining,
                )
            await asyncio.sleep(min(_POLL, remaining))
        if waited_for is not None:  # the holder released the lease or let it expire
            self._logger.info(
                "thread %r: lease of %s taken after waiting %.1f s",
                self._thread_id,
                waited_for,
                time.monotonic() - started,
            )
        self._logger.debug(
            "thread %r: lease acquired by %s until %s",
            self._thread_id,
            self._owner,
            self._lease.expires_at.isoformat(),
        )
        self._lost = None
        self._renewer = asyncio.create_task(self._renew())

    def _provably_dead(self, holder: str | None) -> bool:
        return holder is not None and holder != self._owner and owner_is_dead(holder)

    async def _take_over(self, holder: str | None) -> Lease:
        """The lease of a provably dead holder, replaced only if that holder still has it.

        So when several workers restart at once only one takes it; the others get
        ``LeaseHeldError`` naming the winner and wait like for any live holder.
        """
        lease = await self._store.acquire_lease(
            self._thread_id, self._owner, ttl=self._ttl, take_over=holder
        )
        self._logger.info(
            "thread %r: took over the lease of %s, a process that is no longer running",
            self._thread_id,
            holder,
        )
        return lease

    def _busy(self, held: LeaseHeldError) -> ThreadBusyError:
        waited = f" after waiting {self._wait}" if self._wait > timedelta(0) else ""
        return ThreadBusyError(
            f"thread {self._thread_id!r} is being run by another worker{waited} ({held}); "
            "retry later, or pass a longer lease_wait=",
            holder=held.holder,
            expires_at=held.expires_at,
        )

    async def _renew(self) -> None:
        interval = heartbeat(self._ttl).total_seconds()
        while self._lease is not None:
            await asyncio.sleep(interval)
            try:
                self._lease = await self._store.renew_lease(self._lease, ttl=self._ttl)
            except LeaseLostError as exc:
                self._lost = exc
                return
            except AgentPersistError as exc:  # the store is down: retry at the next beat
                self._logger.warning(
                    "lease on thread %r: renewal failed (%s); retrying in %.1f s",
                    self._thread_id,
                    exc,
                    interval,
                )

    def check(self) -> None:
        """Raise ``LeaseLostError`` if the lease could not be renewed.

        A fast early exit; the store checks the lease with every write anyway.
        """
        if self._lost is not None:
            raise self._lost

    async def release(self) -> None:
        """Stop renewing and give the thread up (best effort: it expires anyway)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        lease, self._lease = self._lease, None
        if lease is not None:
            with contextlib.suppress(Exception):
                await self._store.release_lease(lease)
