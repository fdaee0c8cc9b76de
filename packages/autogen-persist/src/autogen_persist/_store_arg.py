"""A ``store=`` argument: a store the caller owns, or a URL the callee opens and closes.

async with opened(store) as checkpoints:   # a URL: opened, set up, closed on exit
    await checkpoints.get(thread_id)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from agent_persist import open_store
from agent_persist.stores import CheckpointStore

__all__ = ["StoreArg", "opened"]

StoreArg = CheckpointStore | str
"""A store, or the URL of one (``sqlite:///agents.db``, ``postgresql://...``)."""


@asynccontextmanager
async def opened(store: StoreArg) -> AsyncGenerator[CheckpointStore, None]:
    """The store given as is, or the store a URL names, set up and closed on exit."""
    if not isinstance(store, str):
        yield store
        return
    async with open_store(store) as own:
        yield own
