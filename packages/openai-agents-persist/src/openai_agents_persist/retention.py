"""Retention: sessions expire when idle, and a cleanup call removes the long-idle ones.

    store = open_store("redis://localhost:6379/0", ttl=timedelta(days=30))   # every store
    session = StoreSession("user-1", store=store, refresh_on_read=True)
    removed = await cleanup_idle_sessions(store, idle_for=timedelta(days=90))

A store's ``ttl`` expires a thread not written for that long, and every write refreshes it.
Reads do not write, so a session read but never written would expire under a reader:
:func:`touch` refreshes it with one cheap write (an item appended to and popped from a
private log), which :class:`.StoreSession` does on ``get_items`` when ``refresh_on_read``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from agent_persist import BaseStore

__all__ = ["TOUCH_LOG", "cleanup_idle_sessions", "touch"]

TOUCH_LOG = "_touch"


async def touch(store: BaseStore, session_id: str) -> None:
    """Refresh the session's TTL without changing anything it holds."""
    await store.append(session_id, TOUCH_LOG, [0])
    await store.pop(session_id, TOUCH_LOG)


async def cleanup_idle_sessions(store: BaseStore, *, idle_for: timedelta) -> int:
    """Delete every thread not written for ``idle_for`` (and the expired ones); how many."""
    if idle_for <= timedelta(0):
        raise ValueError(f"idle_for must be positive, got {idle_for}")
    cutoff = datetime.now(timezone.utc) - idle_for
    removed = await store.purge_expired()
    for info in await store.list_threads():
        if info.updated_at < cutoff and await store.delete_thread(info.thread_id):
            removed += 1
    return removed
