"""The Agents SDK Session over an encrypted store: items sealed, read back, never in clear."""

from __future__ import annotations

import os
from typing import Any

from agent_persist.crypto import Encryption, KeyRing
from agent_persist.stores import open_store
from openai_agents_persist import StoreSession

CANARY = "CANARY-session-4b1d"


async def test_session_items_are_sealed_and_read_back() -> None:
    ring = KeyRing({"k": os.urandom(32)}, primary="k")
    space = f"enc-session-{os.urandom(4).hex()}"
    async with open_store(f"memory://{space}", encryption=Encryption(ring)) as store:
        session = StoreSession("s", store=store)
        items: list[Any] = [
            {"role": "user", "content": CANARY},
            {"role": "assistant", "content": f"echo {CANARY}"},
        ]
        await session.add_items(items)
        assert await session.get_items() == items
        assert await session.get_items(limit=1) == items[-1:]
        assert await session.pop_item() == items[-1]
        thread = store._namespaces["default"].threads["s"]  # pyright: ignore[reportAttributeAccessIssue]
        stored = b"".join(item.data for log in thread.logs.values() for item in log.items)
        assert b"aes256gcm" in stored
        assert CANARY.encode() not in stored
