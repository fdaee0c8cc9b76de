"""Context policies, the audit trail, cross-session memory and retention, on every store."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import Usage
from oa_support import Backend

from openai_agents_persist import StoreSession
from openai_agents_persist.audit import AuditTrail
from openai_agents_persist.policies import (
    SlidingWindow,
    SummaryPlusRecent,
    TrimToolOutputs,
    context_policy,
)
from openai_agents_persist.retention import cleanup_idle_sessions
from openai_agents_persist.user_memory import UserMemory

SYSTEM = {"role": "system", "content": "rules"}


def user(n: int) -> dict[str, Any]:
    return {"role": "user", "content": f"u{n}"}


async def test_sliding_window_keeps_the_system_item_and_whole_tool_pairs() -> None:
    call = {"type": "function_call", "call_id": "c", "name": "t", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "c", "output": "x"}
    history = [SYSTEM, user(1), call, output, user(2)]
    assert SlidingWindow(last=2)(history) == [SYSTEM, user(2)]
    assert SlidingWindow(last=3)(history) == [SYSTEM, call, output, user(2)]
    assert SlidingWindow(last=9)(history) == history
    assert SlidingWindow(last=1)([user(1), user(2)]) == [user(2)]
    with pytest.raises(ValueError, match="at least 1"):
        SlidingWindow(last=0)


async def test_summary_plus_recent_calls_the_summarizer_once_per_prefix() -> None:
    calls: list[int] = []

    async def summarize(previous: str | None, items: list[dict[str, Any]]) -> str:
        calls.append(len(items))
        return f"{len(items)} earlier items"

    policy = SummaryPlusRecent(recent=2, summarize=summarize)
    history = [SYSTEM, *(user(n) for n in range(5))]
    shaped = await policy(history)
    assert shaped == [
        SYSTEM,
        {"role": "developer", "content": "Summary of the earlier conversation: 3 earlier items"},
        user(3),
        user(4),
    ]
    assert await policy(history) == shaped
    assert calls == [3]
    assert await policy([user(1)]) == [user(1)]


async def test_policies_shape_model_input_but_the_store_keeps_everything(backend: Backend) -> None:
    @function_tool
    def read_log() -> str:
        """Read a long log."""
        return "line one\n" + "x" * 5000

    model = ScriptedModel(
        [
            [function_call("read_log", {}, call_id="c1")],
            [assistant_message("read it")],
            [assistant_message("second")],
        ]
    )
    agent = Agent(name="a", tools=[read_log], model=model)
    config = RunConfig(
        session_input_callback=context_policy(
            TrimToolOutputs(max_chars=100), SlidingWindow(last=50)
        )
    )
    async with backend.open() as store:
        session = StoreSession("s", store=store)
        await Runner.run(agent, "read", session=session, run_config=config)
        await Runner.run(agent, "again", session=session, run_config=config)
        sent = model.last_call
        assert sent is not None
        outputs = [i["output"] for i in sent.input if i.get("type") == "function_call_output"]
        assert outputs == ["[tool output of 5009 characters trimmed; it began: line one]"]
        stored = [i for i in await session.get_items() if i.get("type") == "function_call_output"]
        assert [len(item["output"]) for item in stored] == [5009]  # no trimmed copy stored


async def test_audit_trail_by_session_and_user(backend: Backend) -> None:
    @function_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    usage = Usage(requests=1, input_tokens=1000, output_tokens=500, total_tokens=1500)
    model = ScriptedModel(
        [
            ModelStep(output=[function_call("add", {"a": 1, "b": 2}, call_id="c1")], usage=usage),
            ModelStep(output=[assistant_message("3")], usage=usage),
            ModelStep(output=[assistant_message("hi")], usage=usage),
        ]
    )
    agent = Agent(name="calc", tools=[add], model=model)
    async with backend.open(namespace="audit") as audit_store, backend.open() as store:
        audit = AuditTrail(audit_store, prices={"ScriptedModel": (2.0, 10.0)})
        for session_id, text in (("s1", "1+2?"), ("s2", "hello")):
            session = StoreSession(session_id, store=store)
            await Runner.run(
                agent, text, session=session, hooks=audit.hooks(session_id, user="ann")
            )
        report = await audit.report("s1")
        assert [(m["role"], m["content"]) for m in report.messages] == [
            ("user", "1+2?"),
            ("assistant", "3"),
        ]
        [call] = report.tool_calls
        assert (call["name"], call["input"], call["output"]) == ("add", '{"a":1,"b":2}', "3")
        assert call["duration_ms"] >= 0
        assert (report.input_tokens, report.output_tokens) == (2000, 1000)
        assert report.cost_usd == pytest.approx(2 * (1000 * 2.0 + 500 * 10.0) / 1e6)
        assert await audit.sessions_of("ann") == ["s1", "s2"]
        total = await audit.report_for_user("ann")
        assert total.input_tokens == 3000
        assert await audit.report("nobody") == type(report)()
        assert await StoreSession("s1", store=audit_store).get_items() == []


async def test_memory_injects_the_top_facts_in_a_new_session(backend: Backend) -> None:
    async with backend.open(namespace="memory") as memory_store, backend.open() as store:
        memory = UserMemory(memory_store)
        await memory.remember("ann", "likes tea", importance=0.2)
        await memory.remember("ann", "lives in Oslo", importance=0.9)
        await memory.remember("ann", "has a cat", importance=0.5)
        await memory.remember("ann", "likes tea", importance=0.95)
        with pytest.raises(ValueError, match="between 0 and 1"):
            await memory.remember("ann", "x", importance=2)
        assert [f.text for f in await memory.top("ann", 2)] == ["likes tea", "lives in Oslo"]
        model = ScriptedModel([[assistant_message("hej")]])
        agent = Agent(name="a", instructions=memory.instructions("Be kind.", user="ann", count=2))
        agent.model = model
        await Runner.run(agent, "hi", session=StoreSession("new", store=store))
        assert model.last_call is not None
        assert model.last_call.system_instructions == (
            "Be kind.\n\nWhat you know about this user:\n- likes tea\n- lives in Oslo"
        )
        await memory.forget("ann")
        assert await memory.facts("ann") == []


async def test_ttl_refreshed_on_read_and_idle_cleanup(backend: Backend) -> None:
    ttl = timedelta(seconds=1.5)
    async with backend.open(ttl=ttl) as store:
        reader = StoreSession("read", store=store, refresh_on_read=True)
        idle = StoreSession("idle", store=store)
        await reader.add_items([user(1)])
        await idle.add_items([user(1)])
        for _ in range(4):
            await asyncio.sleep(0.5)
            assert await reader.get_items() == [user(1)]
        assert await idle.get_items() == []
        await store.purge_expired()
    async with backend.open() as store:
        await StoreSession("old", store=store).add_items([user(1)])
        await asyncio.sleep(1.1)
        await StoreSession("fresh", store=store).add_items([user(2)])
        assert await cleanup_idle_sessions(store, idle_for=timedelta(seconds=1)) >= 1
        assert await StoreSession("old", store=store).get_items() == []
        assert await StoreSession("fresh", store=store).get_items() == [user(2)]
        with pytest.raises(ValueError, match="positive"):
            await cleanup_idle_sessions(store, idle_for=timedelta(0))


async def test_audit_trail_fills_the_sql_tables_in_clear_columns(tmp_path: Path) -> None:
    import sqlite3

    from agent_persist import open_store

    @function_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    usage = Usage(requests=1, input_tokens=1000, output_tokens=500, total_tokens=1500)
    model = ScriptedModel(
        [
            ModelStep(output=[function_call("add", {"a": 1, "b": 2}, call_id="c1")], usage=usage),
            ModelStep(output=[assistant_message("3")], usage=usage),
        ]
    )
    agent = Agent(name="calc", tools=[add], model=model)
    path = tmp_path / "audit.db"
    session_id = "s'1%_"
    async with open_store(f"sqlite:///{path}", namespace="audit") as audit_store:
        audit = AuditTrail(audit_store, prices={"ScriptedModel": (2.0, 10.0)})
        await Runner.run(agent, "1+2?", hooks=audit.hooks(session_id, user="ann"))
        report = await audit.report(session_id)
        with pytest.raises(ValueError, match="user must be 1 to 256 characters"):
            audit.hooks(session_id, user="")
    db = sqlite3.connect(path)
    try:
        messages = db.execute(
            "SELECT thread_id, role, model, content, input_tokens, output_tokens, cost_usd "
            "FROM agent_persist_audit_messages ORDER BY seq"
        ).fetchall()
        calls = db.execute(
            "SELECT thread_id, call_id, name, input, output, duration_ms >= 0 "
            "FROM agent_persist_audit_tool_calls"
        ).fetchall()
        sessions = db.execute(
            "SELECT namespace, thread_id, user_id, first_at <= last_at "
            "FROM agent_persist_audit_sessions"
        ).fetchall()
    finally:
        db.close()
    cost = (1000 * 2.0 + 500 * 10.0) / 1e6
    assert messages == [
        (session_id, "user", None, "1+2?", 0, 0, 0.0),
        (session_id, "assistant", "ScriptedModel", None, 1000, 500, pytest.approx(cost)),
        (session_id, "assistant", "ScriptedModel", "3", 1000, 500, pytest.approx(cost)),
    ]
    assert calls == [(session_id, "c1", "add", '{"a":1,"b":2}', "3", 1)]
    assert sessions == [("audit", session_id, "ann", 1)]
    assert sum(row[6] for row in messages) == pytest.approx(report.cost_usd)
    assert (report.input_tokens, report.output_tokens) == (2000, 1000)
