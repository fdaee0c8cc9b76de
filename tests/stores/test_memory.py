from __future__ import annotations

from typing import Any

import pytest

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
