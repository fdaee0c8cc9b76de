"""``@durable`` holds the session's lease for each call, as AutoGen's durable runs do.

* Two calls resuming the same pending run at once (two approvers, a retried job) run the
  approved tool once: the second waits for the first's lease, then finds the run resumed.
  Without the lease (two sessions loading the pending run, as the decorator did before) the
  tool runs twice.
* A live worker's lease is not taken (``ThreadBusyError`` with ``lease_wait=0``, nothing
  written); a dead worker's is, at once; a worker whose lease was taken over mid-run cannot
  write any more (``LeaseLostError``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from agents import Agent, Runner, RunResult, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call
from oa_support import Backend

from agent_persist import BaseStore
from agent_persist.errors import (
    ConflictError,
    LeaseLostError,
    ThreadBusyError,
    ThreadNotFoundError,
)
from agent_persist.leases import owner_is_dead
from openai_agents_persist import StoreSession, durable
from openai_agents_persist.decorator import DurableRun
from openai_agents_persist.run_state import load_run_state, save_run_state

LOGGER = "openai_agents_persist"
HOUR = timedelta(hours=1)


def approval_agent(
    runs: list[str], body: Callable[[], Awaitable[None]] | None = None
) -> Agent[Any]:
    """An agent whose first turn calls a tool needing approval; ``runs`` counts its bodies."""

    @function_tool(needs_approval=True)
    async def delete_file(path: str) -> str:
        """Delete a file."""
        runs.append(path)
        if body is not None:
            await body()
        return f"deleted {path}"

    model = ScriptedModel(
        [
            [function_call("delete_file", {"path": "a"}, call_id="c1")],
            [assistant_message("done")],
            [assistant_message("done again")],  # only reached if the tool ran twice
        ]
    )
    return Agent(name="ops", tools=[delete_file], model=model)


def durable_chat(store: BaseStore, agent: Agent[Any], **options: Any) -> DurableRun:
    @durable(store=store, agent=agent, **options)
    async def chat(session: StoreSession, user_input: Any) -> RunResult:
        return await Runner.run(agent, user_input, session=session)

    return chat


def approve_all(item: Any) -> bool:
    return True


async def _dead_owner() -> str:
    """The owner id of a process that ran on this machine and exited."""
    code = "from agent_persist.leases import owner_id; print(owner_id())"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await child.communicate()
    return output.decode().strip()


async def _written(store: BaseStore, thread_id: str) -> tuple[int, int]:
    """How many checkpoints and session items the thread holds."""
    try:
        checkpoints = len(await store.list_checkpoints(thread_id))
    except ThreadNotFoundError:
        checkpoints = 0
    return checkpoints, await store.log_length(thread_id, "items")


async def test_two_concurrent_resumes_run_the_approved_tool_once(
    durable_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[str] = []

    async def until_the_other_call_waits() -> None:
        """Keep the lease until the second call has found it held (so they overlap)."""
        for _ in range(2000):
            if any("waiting up to" in r.getMessage() for r in caplog.records):
                return
            await asyncio.sleep(0.01)

    agent = approval_agent(runs, until_the_other_call_waits)
    async with durable_backend.open() as store:
        chat = durable_chat(store, agent)
        first = await chat("s", "delete a")
        assert [item.name for item in first.interruptions] == ["delete_file"]
        with caplog.at_level(logging.INFO, logger=LOGGER):
            outcomes = await asyncio.gather(
                chat("s", approve=approve_all),
                chat("s", approve=approve_all),
                return_exceptions=True,
            )
        results = [o for o in outcomes if isinstance(o, RunResult)]
        errors = [o for o in outcomes if not isinstance(o, RunResult)]
        assert [r.final_output for r in results] == ["done"]
        assert len(errors) == 1
        assert isinstance(errors[0], ValueError)
        assert "has no pending run: its last one was already resumed" in str(errors[0])
        assert runs == ["a"], "the approved tool ran once"
        waits = [r for r in caplog.records if "waiting up to" in r.getMessage()]
        assert len(waits) == 1, "the calls overlapped: the second waited for the first"
        assert waits[0].name == LOGGER
        outputs = [i.get("output") for i in await StoreSession("s", store=store).get_items()]
        assert outputs.count("deleted a") == 1


async def test_without_the_lease_two_resumes_run_the_tool_twice(durable_backend: Backend) -> None:
    """The contrast: two sessions that both load the pending run before either resumes it."""
    runs: list[str] = []
    agent = approval_agent(runs)
    async with durable_backend.open() as store:
        await durable_chat(store, agent)("s", "delete a")
        sessions = [StoreSession("s", store=store, checkpoints=True) for _ in range(2)]
        states = [await load_run_state(session, agent) for session in sessions]
        first, second = states
        assert first is not None
        assert second is not None
        for state in (first, second):
            for item in state.get_interruptions():
                state.approve(item)
        result = await Runner.run(agent, first, session=sessions[0])
        await save_run_state(sessions[0], result, agent)
        with pytest.raises(ConflictError):  # only its write is refused, after the tool ran
            await Runner.run(agent, second, session=sessions[1])
        assert runs == ["a", "a"]


async def test_a_live_workers_lease_refuses_the_call_before_any_write(backend: Backend) -> None:
    runs: list[str] = []
    agent = approval_agent(runs)
    async with backend.open() as store:
        await store.acquire_lease("s", "a worker elsewhere", ttl=HOUR)
        chat = durable_chat(store, agent, lease_wait=timedelta(0))
        with pytest.raises(ThreadBusyError, match="another worker") as busy:
            await chat("s", "delete a")
        assert busy.value.holder == "a worker elsewhere"
        assert await _written(store, "s") == (0, 0)
        assert isinstance(agent.model, ScriptedModel)
        assert agent.model.last_call is None, "the model was not called"


async def test_a_dead_workers_lease_is_taken_over_at_once(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    dead = await _dead_owner()
    assert owner_is_dead(dead)
    agent = approval_agent([])
    async with backend.open() as store:
        await store.acquire_lease("s", dead, ttl=HOUR)  # it would never expire
        chat = durable_chat(store, agent, lease_wait=timedelta(0))  # no waiting allowed
        with caplog.at_level(logging.INFO, logger=LOGGER):
            result = await chat("s", "delete a")
        assert [item.name for item in result.interruptions] == ["delete_file"]
        taken = [r.getMessage() for r in caplog.records if "took over" in r.getMessage()]
        assert len(taken) == 1
        assert dead in taken[0]
        await store.acquire_lease("s", "next worker", ttl=HOUR)  # released at the end


async def test_a_call_whose_lease_was_taken_over_writes_nothing_more(backend: Backend) -> None:
    async with backend.open() as store:
        at_steal: list[tuple[int, int]] = []

        @function_tool
        async def slow_step() -> str:
            """A step during which another worker takes the session over."""
            await store.acquire_lease("s", "thief", ttl=HOUR, take_over="worker-a")
            at_steal.append(await _written(store, "s"))
            return "stepped"

        model = ScriptedModel(
            [[function_call("slow_step", {}, call_id="c1")], [assistant_message("done")]]
        )
        agent = Agent(name="a", tools=[slow_step], model=model)
        chat = durable_chat(store, agent, worker_id="worker-a")
        with pytest.raises(LeaseLostError):
            await chat("s", "go")
        assert len(at_steal) == 1
        assert await _written(store, "s") == at_steal[0], "nothing written after the steal"
        with pytest.raises(ThreadBusyError, match="thief"):  # still the thief's
            await durable_chat(store, agent, lease_wait=timedelta(0))("s", "again")
