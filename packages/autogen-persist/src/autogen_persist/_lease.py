"""Exclusive ownership of a thread while a worker runs it.

    holder = LeaseHolder(store, "t-1", owner="worker-a", ttl=timedelta(seconds=30),
                         wait=timedelta(seconds=10))
    await holder.acquire()      # ThreadBusyError if another live worker holds it
    holder.check()              # LeaseLostError if renewal failed; call before each write
    await holder.release()

A background task renews the lease every third of its ``ttl``, so a long turn keeps the
thread; a worker that dies stops renewing and another can take over once the lease expires.
Correctness does not rest on the lease alone: every checkpoint names its parent, so a worker
that lost the thread gets ``ConflictError`` from the store instead of overwriting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from datetime import timedelta

from agent_persist import Lease
from agent_persist.errors import LeaseHeldError, LeaseLostError, StoreUnavailableError
from agent_persist.stores import CheckpointStore

from .errors import ThreadBusyError

__all__ = ["LeaseHolder", "default_owner"]

logger = logging.getLogger("autogen_persist")


def default_owner() -> str:
    """A worker id unique to this process and object: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseHolder:
    """Acquires, renews in the background, and releases one thread's lease."""

    def __init__(
        self,
        store: CheckpointStore,
        thread_id: str,
        *,
        owner: str,
        ttl: timedelta,
        wait: timedelta | None,
    ) -> None:
        self._store, self._thread_id, self._owner = store, thread_id, owner
        self._ttl, self._wait = ttl, wait
        self._lease: Lease | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._lost: LeaseLostError | None = None

    async def acquire(self) -> None:
        """Take the lease, waiting up to ``wait`` for another holder's to expire."""
        deadline = time.monotonic() + (self._wait.total_seconds() if self._wait else 0.0)
        while True:
            try:
                self._lease = await self._store.acquire_lease(
                    self._thread_id, self._owner, ttl=self._ttl
                )
                break
            except LeaseHeldError as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    waited = f" after waiting {self._wait}" if self._wait else ""
                    raise ThreadBusyError(
                        f"thread {self._thread_id!r} is being run by another worker{waited} "
                        f"({exc}); retry later, or pass lease_wait= to wait for it"
                    ) from exc
                await asyncio.sleep(min(0.05, remaining))
        self._lost = None
        self._renewer = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        interval = self._ttl.total_seconds() / 3
        while self._lease is not None:
            await asyncio.sleep(interval)
            try:
                self._lease = await self._store.renew_lease(self._lease, ttl=self._ttl)
            except LeaseLostError as exc:
                self._lost = exc
                return
            except StoreUnavailableError as exc:  # the lease still runs; try at the next tick
                logger.warning(
                    "lease on thread %r: renewal failed (%s); retrying in %.1f s",
                    self._thread_id,
                    exc,
                    interval,
                )

    def check(self) -> None:
        """Raise ``LeaseLostError`` if the lease could not be renewed."""
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
