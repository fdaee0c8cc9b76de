from __future__ import annotations

from typing import Any

import pytest
from backends import JOURNAL, journal_turns

from agent_persist.stores.base import BaseStore
from agent_persist.stores.memory import MemoryStore
from agent_persist.testing import StoreConformance, StoreFactory, Tamper


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        shared: dict[str, Any] = {}

        async def make(**options: Any) -> BaseStore:
            store = MemoryStore(shared=shared, **options)
            await store.setup()
            return store

        return make

    @pytest.fixture
    def tamper(self) -> Tamper:
        async def overwrite(
            store: BaseStore,
            thread_id: str,
            checkpoint_id: str,
            *,
            header: str | None = None,
            payload: bytes | None = None,
        ) -> None:
            assert isinstance(store, MemoryStore)
            thread = store._threads[thread_id]
            for checkpoint in thread.checkpoints:
                if checkpoint.checkpoint_id == checkpoint_id:
                    if header is not None:
                        checkpoint.header = header
                    if payload is not None:
                        checkpoint.payload = payload

        return overwrite


def _journal_items(store: MemoryStore, thread_id: str) -> Any:
    """Counts the journal items the store's structures hold, live or stamped removed."""

    async def count() -> int:
        log = store._threads[thread_id].logs.get(JOURNAL)
        return 0 if log is None else len(log.items)

    return count


async def test_put_clear_logs_frees_the_journal_items() -> None:
    store = MemoryStore()
    assert await journal_turns(store, "t", _journal_items(store, "t")) == [0] * 12
    # Cleared after the put instead, each checkpoint pins its turn's items: they stay.
    kept = await journal_turns(store, "u", _journal_items(store, "u"), clear_in_put=False)
    assert kept == [3 * (turn + 1) for turn in range(12)]
