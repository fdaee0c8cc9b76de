"""Saved runs: fingerprints, renames by migration, clear errors, the decorator, checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call
from oa_support import Backend

from agent_persist import Registry
from agent_persist.errors import ConfigDriftError, ConflictError, InvalidPayloadError
from openai_agents_persist import (
    ITEM_FORMATS,
    MissingAgentError,
    PendingInterruptionError,
    StoreSession,
)
from openai_agents_persist.decorator import durable
from openai_agents_persist.fingerprint import agent_fingerprint
from openai_agents_persist.migrations import rename_agent, rename_tool
from openai_agents_persist.plugin import register
from openai_agents_persist.run_state import load_run_state, save_run_state


def ops(tool: str = "delete_file", name: str = "ops", *steps: Any) -> Agent[Any]:
    @function_tool(needs_approval=True, name_override=tool)
    def delete(path: str) -> str:
        """Delete a file."""
        return f"deleted {path}"

    return Agent(name=name, instructions="be careful", tools=[delete], model=ScriptedModel(steps))


def fresh_registry() -> Registry:
    registry = Registry()
    register(registry)
    return registry


async def interrupted(session: StoreSession) -> None:
    agent = ops("delete_file", "ops", [function_call("delete_file", {"path": "a"}, call_id="c1")])
    result = await Runner.run(agent, "delete a", session=session)
    await save_run_state(session, result, agent)


async def test_renamed_agent_and_tool_resume_through_migrations(backend: Backend) -> None:
    async with backend.open() as store:
        session = StoreSession("s", store=store)
        await interrupted(session)
        renamed = ops("remove_file", "operations", [assistant_message("done")])
        with pytest.raises(ConfigDriftError) as drifted:
            await load_run_state(session, renamed, registry=fresh_registry())
        assert [str(c) for c in drifted.value.changes] == [
            "agent removed: ops",
            "agent added: operations",
        ]
        with pytest.raises(MissingAgentError, match="'ops'") as missing_agent:
            await load_run_state(session, renamed, registry=fresh_registry(), drift="accept")
        assert missing_agent.value.names == ["ops"]
        registry, formats = fresh_registry(), ITEM_FORMATS.copy()
        rename_agent("ops", "operations", registry=registry, item_formats=formats)
        with pytest.raises(ConfigDriftError, match=r"tool removed: operations\.delete_file"):
            await load_run_state(session, renamed, registry=registry)
        rename_tool("delete_file", "remove_file", registry=registry, item_formats=formats)
        state = await load_run_state(session, renamed, registry=registry)
        assert state is not None
        for item in state.get_interruptions():
            state.approve(item)
        result = await Runner.run(renamed, state, session=session)
        assert result.final_output == "done"
        await save_run_state(session, result, renamed)
        assert await load_run_state(session, renamed, registry=registry) is None


async def test_fingerprint_follows_the_configuration() -> None:
    base = agent_fingerprint(ops())
    assert agent_fingerprint(ops()) == base
    assert agent_fingerprint(ops("other")) != base
    changed = ops()
    changed.instructions = "be bold"
    assert agent_fingerprint(changed) != base
    triage = Agent(name="triage", handoffs=[ops()])
    assert agent_fingerprint(triage) != agent_fingerprint(Agent(name="triage"))


async def test_decorator_refuses_new_input_while_a_run_waits(backend: Backend) -> None:
    agent = ops("delete_file", "ops", [function_call("delete_file", {"path": "a"}, call_id="c1")])
    async with backend.open() as store:

        @durable(store=store, agent=agent)
        async def chat(session: StoreSession, user_input: Any) -> Any:
            return await Runner.run(agent, user_input, session=session)

        with pytest.raises(ValueError, match="no pending run"):
            await chat("s")
        result = await chat("s", "delete a")
        assert [item.name for item in result.interruptions] == ["delete_file"]
        with pytest.raises(PendingInterruptionError, match="delete_file"):
            await chat("s", "something else")
        with pytest.raises(PendingInterruptionError):
            await chat("s")
        agent.model = ScriptedModel([[assistant_message("kept it")]])

        async def reject(item: Any) -> bool:
            return False

        result = await chat("s", approve=reject)
        assert result.final_output == "kept it"
        outputs = [i.get("output") for i in await StoreSession("s", store=store).get_items()]
        assert "deleted a" not in outputs


async def test_the_decorator_takes_a_url_and_closes_what_it_opens(tmp_path: Path) -> None:
    """``store=`` a URL: each call opens the store and closes it; a later call resumes."""
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    agent = ops("delete_file", "ops", [function_call("delete_file", {"path": "a"}, call_id="c1")])

    @durable(store=url, agent=agent)
    async def chat(session: StoreSession, user_input: Any) -> Any:
        return await Runner.run(agent, user_input, session=session)

    result = await chat("s", "delete a")
    assert [item.name for item in result.interruptions] == ["delete_file"]
    agent.model = ScriptedModel([[assistant_message("done")]])
    result = await chat("s", approve=lambda item: True)  # a new store: the saved run resumes
    assert result.final_output == "done"
    async with StoreSession.from_url("s", url=url) as session:
        outputs = [item.get("output") for item in await session.get_items()]
    assert "deleted a" in outputs


async def test_turn_checkpoints_record_state_and_usage(backend: Backend) -> None:
    agent = Agent(name="a", model=ScriptedModel([[assistant_message("one")]]))

    async def state(wrapper: Any) -> Any:
        return {"files_read": ["a.txt"], "task": wrapper.context["task"] if wrapper else None}

    async with backend.open() as store:
        session = StoreSession("s", store=store, state=state)
        assert await session.last_checkpoint() is None
        await Runner.run(agent, "hi", session=session, context={"task": "t-1"})
        last = await session.last_checkpoint()
        assert last is not None
        assert last.state == {"files_read": ["a.txt"], "task": "t-1"}
        assert last.usage["requests"] == 1
        assert last.items == 1
        assert last.step == 1

        broken = StoreSession("s", store=store, state=lambda _: {"x": object()})
        with pytest.raises(InvalidPayloadError):
            await broken.add_items([{"role": "user", "content": "lost?"}])
        assert len(await session.get_items()) == 2

        stale = StoreSession("s", store=store, checkpoints=True)
        await stale.head()
        await session.add_items([{"role": "user", "content": "newer"}])
        with pytest.raises(ConflictError):
            await stale.add_items([{"role": "user", "content": "stale"}])
        await stale.add_items([{"role": "user", "content": "retried"}])
        contents = [item.get("content") for item in await session.get_items()]
        assert contents[-2:] == ["newer", "retried"]
