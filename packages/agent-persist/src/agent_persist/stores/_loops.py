"""Connections that belong to one event loop: one pool per loop, or a caller's pinned to one.

    clients = PerLoop(make_client, close_client)
    client = clients.get()      # the running loop's client, opened on first use there
    await clients.close()       # every loop's client (this loop's now, others' on their loop)

asyncpg and redis-py connections are bound to the event loop that opened them: used from
another loop they fail, hang or (asyncpg, from another thread) crash the interpreter. A store
called from several threads, each with its own loop (``Runner.run_sync`` in a web worker,
``asyncio.run`` per call), therefore holds one pool per loop. Each pool is closed on its own
loop: by :meth:`PerLoop.close`, or when the loop shuts down the way ``asyncio.run`` and
``asyncio.Runner`` do (they cancel the loop's tasks first, which wakes the pool's keeper
task). A loop closed with a bare ``loop.close()`` while the store still holds connections on
it leaves them to the garbage collector, as for any asyncio client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ..errors import EventLoopMismatchError

__all__ = ["LoopBound", "LoopLock", "PerLoop", "Pinned"]

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
logger = logging.getLogger("agent_persist")


class LoopBound(Protocol[R_co]):
    """What a store holds its connections in: the running loop's, and a way to close all."""

    def get(self) -> R_co:
        """The running loop's resource."""
        ...

    async def close(self) -> None:
        """Close (or give back) every loop's resource."""
        ...


@dataclass(eq=False)
class _Entry(Generic[R]):
    value: R
    done: asyncio.Future[None]
    """Set when the loop's resource is to be closed; the keeper task waits for it."""
    keeper: asyncio.Task[None] | None = None
    detached: bool = False
    """Closed by :meth:`PerLoop.close` itself, so the keeper must not close it again."""


class PerLoop(Generic[R]):
    """One resource per event loop, opened on first use there and closed on that loop.

    The lookup on the hot path is one dict lookup keyed by the running loop; a lock is taken
    only when a loop is seen for the first time. ``first`` (optional) is handed to the
    first loop that asks instead of opening a new one, so a single-loop program uses the
    resource the store was built with; once that loop is done with it, it is never handed
    out again (its loop may still be closing it).
    """

    def __init__(
        self,
        make: Callable[[], R],
        close: Callable[[R], Awaitable[None]],
        *,
        first: R | None = None,
    ) -> None:
        self._make, self._close = make, close
        self._unused = first
        self._entries: dict[asyncio.AbstractEventLoop, _Entry[R]] = {}
        self._lock = threading.Lock()

    def get(self) -> R:
        """The running loop's resource, opened now if this loop has none yet."""
        loop = asyncio.get_running_loop()
        entry = self._entries.get(loop)
        if entry is None:
            entry = self._add(loop)
        return entry.value

    def _add(self, loop: asyncio.AbstractEventLoop) -> _Entry[R]:
        with self._lock:
            entry = self._entries.get(loop)
            if entry is not None:
                return entry
            self._forget_closed_loops()
            value = self._unused if self._unused is not None else self._make()
            self._unused = None
            entry = _Entry(value, loop.create_future())
            entry.keeper = loop.create_task(self._keep(loop, entry), name="agent-persist-pool")
            self._entries[loop] = entry
            return entry

    def _forget_closed_loops(self) -> None:
        """Drop what closed loops held: nothing can reach their connections any more."""
        for loop in [loop for loop in self._entries if loop.is_closed()]:
            del self._entries[loop]

    async def _keep(self, loop: asyncio.AbstractEventLoop, entry: _Entry[R]) -> None:
        """Wait until the loop shuts down (or :meth:`close` says so), then close on it."""
        try:
            await entry.done
        finally:
            with self._lock:
                if self._entries.get(loop) is entry:
                    del self._entries[loop]
            if not entry.detached:
                try:
                    await self._close(entry.value)
                except Exception as exc:  # nobody awaits a keeper: say it, do not raise
                    logger.warning(
                        "closing a connection pool failed: %s: %s", type(exc).__name__, exc
                    )

    async def close(self) -> None:
        """Close this loop's resource now and ask every other open loop to close its own.

        Another loop closes its resource when it next runs, or when it shuts down; a loop
        that is already closed has nothing left to close on. The store stays usable: the
        next call on any loop opens a new resource.
        """
        with self._lock:
            entries, self._entries = self._entries, {}
        here = asyncio.get_running_loop()
        mine: _Entry[R] | None = None
        for loop, entry in entries.items():
            if loop is here:
                mine = entry
            elif not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # closed meanwhile
                    loop.call_soon_threadsafe(_wake, entry)
        if mine is not None:
            mine.detached = True
            _wake(mine)
            await self._close(mine.value)


def _wake(entry: _Entry[R]) -> None:
    if not entry.done.done():
        entry.done.set_result(None)


class Pinned(Generic[R]):
    """A resource the caller built and owns, used on one event loop only.

    It belongs to the first loop the store runs it on; from any other loop the store raises
    :class:`~agent_persist.errors.EventLoopMismatchError` instead of letting the driver hang
    or crash. :meth:`close` never closes it (the caller does) but releases the pin, so after
    the caller has disposed of it, another loop may use it.
    """

    def __init__(self, value: R, *, what: str) -> None:
        self.value = value
        self._what = what
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def get(self) -> R:
        """The caller's resource, if the running loop is the one it belongs to."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            with self._lock:
                if self._loop is None:
                    self._loop = loop
                elif self._loop is not loop:
                    raise EventLoopMismatchError(
                        f"{self._what} belongs to the event loop the store first used it on, "
                        "and this is another one; to call the store from several event loops "
                        "(threads, asyncio.run per call, Runner.run_sync) give it a URL: it "
                        "then opens one connection pool per loop"
                    )
        return self.value

    async def close(self) -> None:
        """Release the pin; the caller's resource stays open."""
        with self._lock:
            self._loop = None


class LoopLock:
    """An ``asyncio.Lock`` per event loop, for work that one loop should not repeat at once.

    An ``asyncio.Lock`` serves only the loop that first waited on it; another loop waiting on
    it fails. So each loop gets its own, and what it guards (a store's one-time setup) must
    be safe when two loops run it at the same time, as when two processes do.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()

    def get(self) -> asyncio.Lock:
        """The running loop's lock."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            with self._guard:
                lock = self._locks.setdefault(loop, asyncio.Lock())
        return lock
