"""What the Agents SDK adapter tells an operator when it resumes: a saved run, a session."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from agents import Agent, Runner, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call

from agent_persist import open_store
from openai_agents_persist import StoreSession, load_run_state, save_run_state

LOGGER = "openai_agents_persist"


def ops(*steps: Any) -> Agent[Any]:
    @function_tool(needs_approval=True, name_override="delete_file")
    def delete(path: str) -> str:
        """Delete a file."""
        return f"deleted {path}"

    return Agent(name="ops", instructions="be careful", tools=[delete], model=ScriptedModel(steps))


def resumed(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.INFO and "resumed from" in r.getMessage()
    ]


async def test_a_saved_run_and_a_continued_session_are_info_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with open_store("memory://") as store:
        session = StoreSession("s", store=store)
        agent = ops([function_call("delete_file", {"path": "a"}, call_id="c1")])
        with caplog.at_level(logging.INFO, logger=LOGGER):
            result = await Runner.run(agent, "delete a", session=session)
            saved = await save_run_state(session, result, agent)
        assert resumed(caplog) == []  # a new session resumes nothing

        later = StoreSession("s", store=store, checkpoints=True)
        with caplog.at_level(logging.INFO, logger=LOGGER):
            state = await load_run_state(later, ops([assistant_message("done")]))
        assert state is not None
        assert resumed(caplog) == [
            f"thread 's': resumed from checkpoint {saved.checkpoint_id!r} (step 0, "
            "kind 'openai_agents.run_state', schema version 1)"
        ]

        caplog.clear()
        another = StoreSession("s", store=store, checkpoints=True)  # a new process, say
        with caplog.at_level(logging.INFO, logger=LOGGER):
            await another.add_items([{"role": "user", "content": "hello again"}])
        assert resumed(caplog) == [
            f"thread 's': resumed from checkpoint {saved.checkpoint_id!r} (step 0, "
            "kind 'openai_agents.run_state', schema version 1)"
        ]
