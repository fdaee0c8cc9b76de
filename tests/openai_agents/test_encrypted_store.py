"""The Agents SDK Session over an encrypted store: items sealed, read back, never in clear."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from agent_persist.crypto import Encryption, KeyRing
from agent_persist.stores import open_store
from agent_persist.stores.sql import SQLStore
from openai_agents_persist import StoreSession, StoreToolOutputs, full_tool_output

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


async def test_a_long_tool_output_lands_sealed_in_the_audit_row(tmp_path: Path) -> None:
    ring = KeyRing({"k": os.urandom(32)}, primary="k")
    full = CANARY * 300
    call = {"type": "function_call", "call_id": "c1", "name": "fetch", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "c1", "output": full}
    path = tmp_path / "agents.db"
    async with open_store(f"sqlite:///{path}", encryption=Encryption(ring)) as store:
        assert isinstance(store, SQLStore)
        session = StoreSession(
            "s", store=store, tool_outputs=StoreToolOutputs(max_chars=50), checkpoints=True
        )
        await session.add_items([call, output])  # pyright: ignore[reportArgumentType]
        [_, short] = await session.get_items()
        assert await full_tool_output(session, short) == full
        [row] = await store.read_audit_rows("s", "tool_calls")
        assert (row["name"], row["call_id"], row["output"]) == ("fetch", "c1", full)
    connection = sqlite3.connect(path)
    try:
        [(stored,)] = connection.execute("SELECT output FROM agent_persist_audit_tool_calls")
        listed = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = [name for (name,) in listed]
        dump = "\n".join(repr(connection.execute(f"SELECT * FROM {t}").fetchall()) for t in tables)
    finally:
        connection.close()
    assert stored.startswith("aes256gcm:")
    assert CANARY not in dump
