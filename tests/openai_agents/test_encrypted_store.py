"""The Agents SDK Session over an encrypted store: items sealed, read back, never in clear."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from agents import Agent, Runner, Usage, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from agent_persist.crypto import Encryption, KeyRing
from agent_persist.stores import open_store
from agent_persist.stores.sql import SQLStore
from openai_agents_persist import StoreSession, StoreToolOutputs, full_tool_output
from openai_agents_persist.audit import AuditTrail

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


async def test_the_audit_trail_on_an_encrypted_store_is_complete_and_sealed(
    tmp_path: Path,
) -> None:
    @function_tool
    def secret(key: str) -> str:
        """Look a secret up."""
        return f"{CANARY} for {key}"

    usage = Usage(requests=1, input_tokens=100, output_tokens=50, total_tokens=150)
    model = ScriptedModel(
        [
            ModelStep(output=[function_call("secret", {"key": CANARY}, call_id="c1")], usage=usage),
            ModelStep(output=[assistant_message(f"it is {CANARY}")], usage=usage),
        ]
    )
    agent = Agent(name="a", tools=[secret], model=model)
    ring = KeyRing({"k": os.urandom(32)}, primary="k")
    path = tmp_path / "audit.db"
    async with open_store(f"sqlite:///{path}", encryption=Encryption(ring)) as store:
        assert isinstance(store, SQLStore)
        audit = AuditTrail(store, prices={"ScriptedModel": (2.0, 10.0)})
        await Runner.run(agent, f"tell me {CANARY}", hooks=audit.hooks("s", user="ann"))
        report = await audit.report("s")
        assert [m["content"] for m in report.messages] == [f"tell me {CANARY}", f"it is {CANARY}"]
        [call] = await store.read_audit_rows("s", "tool_calls")
        assert (call["name"], call["output"]) == ("secret", f"{CANARY} for {CANARY}")
    connection = sqlite3.connect(path)
    try:
        messages = connection.execute(
            "SELECT role, model, input_tokens, output_tokens, cost_usd, content "
            "FROM agent_persist_audit_messages ORDER BY seq"
        ).fetchall()
        calls = connection.execute(
            "SELECT name, call_id, input, output FROM agent_persist_audit_tool_calls"
        ).fetchall()
        [(user,)] = connection.execute("SELECT user_id FROM agent_persist_audit_sessions")
        dump = repr(messages) + repr(calls)
        dump += repr(connection.execute("SELECT * FROM agent_persist_log_items").fetchall())
    finally:
        connection.close()
    # every row with its names and numbers, the content sealed
    assert [row[:5] for row in messages] == [
        ("user", None, 0, 0, 0.0),
        ("assistant", "ScriptedModel", 100, 50, 0.0007),
        ("assistant", "ScriptedModel", 100, 50, 0.0007),
    ]
    assert [row[5] is None for row in messages] == [False, True, False]
    assert [call[:2] for call in calls] == [("secret", "c1")]
    assert user == "ann"
    assert CANARY not in dump
