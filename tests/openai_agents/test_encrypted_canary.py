"""A marker written through every SDK path of an encrypted store never reaches the raw storage.

One durable run (session items, turn checkpoints and the saved state, the call journal of a
run a crash cut short, the audit trail through its hooks), then long tool outputs kept in
full, user memory and a running summary, on memory, SQLite, PostgreSQL and Redis. The raw
data (every table of the schema, every key of the prefix) is searched for the marker, and
everything is read back through the API.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner, RunResult, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call

from agent_persist import BaseStore
from agent_persist.crypto import Encryption, KeyRing
from agent_persist.journal import JOURNAL_LOG
from openai_agents_persist import (
    AuditTrail,
    StoreSession,
    StoreToolOutputs,
    UserMemory,
    durable,
    full_tool_output,
)
from openai_agents_persist.summaries import SummaryRecord
from stores.encryption_raw import BACKENDS, Raw, SQLRaw, open_raw

CANARY = "CANARY-sdk-7c3e"
RING = KeyRing({"k": os.urandom(32)}, primary="k")
LONG = f"{CANARY} " + "y" * 400


class WorkerDied(BaseException):
    """The worker's death inside a tool, as a crash leaves the stack."""


@pytest.fixture(params=BACKENDS)
async def raw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Raw]:
    async for opened in open_raw(request.param, request, tmp_path):
        yield opened


async def everything(raw: Raw) -> bytes:
    """Every stored byte: on SQL every table of the database or schema (audit tables too)."""
    if not isinstance(raw, SQLRaw):
        return await raw.dump()
    if raw.schema is None:
        path = raw.url.removeprefix("sqlite:///")
        connection = sqlite3.connect(path)
        try:
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
            names = [r[0] for r in connection.execute(query)]
        finally:
            connection.close()
        tables = [n for n in names if n.startswith("agent_persist")]
    else:
        found = await raw.q(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :s",
            s=raw.schema,
        )
        tables = [f'"{raw.schema}"."{row[0]}"' for row in found]
    rows: list[str] = []
    for table in tables:
        rows += [repr(row) for row in await raw.q(f"SELECT * FROM {table}")]
    assert rows, "the dump found nothing: it reads the wrong place"
    return "\n".join(rows).encode()


def agent_that_crashes_once() -> Agent[Any]:
    crashed: list[bool] = []

    @function_tool
    def lookup(q: str) -> str:
        """Look a thing up (dies the first time, as a worker would)."""
        if not crashed:
            crashed.append(True)
            raise WorkerDied
        return f"found {q}"

    model = ScriptedModel(
        [
            [function_call("lookup", {"q": CANARY}, call_id="call-1")],
            [assistant_message(f"done {CANARY}")],
        ]
    )
    return Agent(name="a", instructions="help", model=model, tools=[lookup])


async def durable_run(store: BaseStore, raw: Raw) -> RunResult:
    agent = agent_that_crashes_once()
    audit = AuditTrail(store)

    note = {"note": CANARY}

    @durable(store=store, agent=agent, state=lambda ctx: note, tool_policies={"lookup": "rerun"})
    async def chat(session: StoreSession, user_input: Any) -> RunResult:
        hooks = audit.hooks(session.session_id, user="ann")
        return await Runner.run(agent, user_input, session=session, hooks=hooks)

    with pytest.raises(WorkerDied):
        await chat("s", f"hello {CANARY}")
    journal = await store.read_log("s", JOURNAL_LOG)
    assert CANARY in repr(journal)  # the crash left the model call journaled
    assert CANARY.encode() not in await everything(raw)
    return await chat("s", f"hello {CANARY}")


async def test_the_canary_never_reaches_the_raw_storage_on_the_sdk_paths(raw: Raw) -> None:
    store = await raw.open(encryption=Encryption(RING))
    result = await durable_run(store, raw)
    assert result.final_output == f"done {CANARY}"

    outputs = StoreToolOutputs(max_chars=40)
    tools = StoreSession("t", store=store, tool_outputs=outputs, ttl=600)
    output: Any = {"type": "function_call_output", "call_id": "c1", "output": LONG}
    await tools.add_items([{"role": "user", "content": CANARY}, output])
    memory = UserMemory(store)
    await memory.remember("ann", f"likes {CANARY}", importance=0.9)
    await tools.add_summary(SummaryRecord(through=1, text=f"said {CANARY}", last="x"))

    dump = await everything(raw)
    assert CANARY.encode() not in dump
    assert b"aes256gcm" in dump

    # everything reads back through the API
    history = await StoreSession("s", store=store).get_items()
    assert {"role": "user", "content": f"hello {CANARY}"} in history
    assert f"found {CANARY}" in repr(history)
    stored = await tools.get_items()
    assert stored[0] == {"role": "user", "content": CANARY}
    assert len(stored[1]["output"]) < len(LONG)
    assert await full_tool_output(tools, stored[1]) == LONG
    assert [fact.text for fact in await memory.facts("ann")] == [f"likes {CANARY}"]
    summary = await tools.latest_summary()
    assert summary is not None
    assert summary.text == f"said {CANARY}"
    report = await AuditTrail(store).report_for_user("ann")
    assert f"hello {CANARY}" in [m.get("content") for m in report.messages]
    assert any(CANARY in str(call.get("output")) for call in report.tool_calls)
    checkpoint = await StoreSession("s", store=store).last_checkpoint()
    assert checkpoint is not None
    assert checkpoint.state == {"note": CANARY}

    clear = await raw.open(namespace="clear")  # the dump finds a marker stored in clear
    await clear.append("c", "log", [CANARY])
    assert CANARY.encode() in await everything(raw)
