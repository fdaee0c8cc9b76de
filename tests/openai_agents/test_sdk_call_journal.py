"""Durable SDK runs pay for no completed model call twice and run no completed tool twice.

The model double's replies are a hash of its input and the tool counts its runs in its body
(:mod:`journal_doubles`), so each test compares completed work and session items with an
uninterrupted run. A crash is the model failing (``ModelDown``) or the worker dying inside a
tool (``WorkerDied``, a ``BaseException``); calling the durable run again with the same input
finishes the run the crash cut short.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from agents import Agent, Runner, RunResult, function_tool
from agents.lifecycle import RunHooks
from agents.run_context import RunContextWrapper
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.tool import Tool
from journal_doubles import (
    TURNS,
    Counter,
    ModelDown,
    WorkerDied,
    events,
    make_agent,
    tool_runs,
)
from oa_support import Backend

from agent_persist import BaseStore, open_store
from agent_persist.errors import CorruptJournalError, ToolOutcomeUnknownError
from agent_persist.journal import JOURNAL_LOG, ToolCall
from openai_agents_persist import (
    RunInProgressError,
    StoreSession,
    agent_config,
    agent_fingerprint,
    durable,
)
from openai_agents_persist._journaled import JournaledModel
from openai_agents_persist.decorator import DurableRun

ITEMS = "items"
TOOL_RUNS = tool_runs()


def durable_chat(store: BaseStore | str, agent: Agent[Any], **options: Any) -> DurableRun:
    hooks = options.pop("hooks", None)

    @durable(store=store, agent=agent, **options)
    async def chat(session: StoreSession, user_input: Any) -> RunResult:
        return await Runner.run(agent, user_input, session=session, hooks=hooks)

    return chat


async def reference_items(parallel: int = 1) -> list[Any]:
    """The session items of one uninterrupted durable run."""
    counter = Counter()
    async with open_store("memory://") as store:
        await durable_chat(store, make_agent(counter, parallel=parallel))("s", "go")
        assert (counter.model, counter.tools) == (TURNS, tool_runs(parallel))
        return await store.read_log("s", ITEMS)


async def crash_then_finish(
    backend: Backend, crash_at: int, parallel: int = 1, **options: Any
) -> tuple[Counter, list[Any]]:
    """Crash at the ``crash_at``-th event, call again with the same input: counts and items."""
    counter = Counter(crash_at=crash_at)
    agent = make_agent(counter, parallel=parallel)
    async with backend.open() as store:
        chat = durable_chat(store, agent, **options)
        with pytest.raises((ModelDown, WorkerDied)):
            await chat("s", "go")
        result = await chat("s", "go")
        assert str(result.final_output).startswith("done")
        return counter, await store.read_log("s", ITEMS)


# -- installation --------------------------------------------------------------------------


def test_decorating_keeps_the_fingerprint_and_wraps_the_graph() -> None:
    counter = Counter()
    helper = make_agent(counter)
    helper.name = "helper"
    agent = make_agent(counter)
    agent.handoffs = [helper]
    before, config = agent_fingerprint(agent), agent_config(agent)
    durable_chat("memory://", agent)
    assert agent_fingerprint(agent) == before
    assert agent_config(agent) == config
    for member in (agent, helper):
        assert isinstance(member.model, JournaledModel)
    tool = agent.tools[0]
    durable_chat("memory://", agent)  # decorating again wraps nothing twice
    assert agent.tools[0] is tool
    assert isinstance(agent.model, JournaledModel)
    assert not isinstance(agent.model.inner, JournaledModel)


async def test_outside_a_durable_call_the_wrappers_pass_through() -> None:
    counter = Counter()
    agent = make_agent(counter)
    durable_chat("memory://", agent)
    async with open_store("memory://") as store:
        session = StoreSession("plain", store=store)
        result = await Runner.run(agent, "go", session=session)
        assert str(result.final_output).startswith("done")
        assert await store.read_log("plain", JOURNAL_LOG) == []
        assert await store.read_log("plain", ITEMS) == await reference_items()


# -- (a) a crash at every event --------------------------------------------------------------


async def sweep(backend: Backend, journal: bool, parallel: int) -> tuple[int, int]:
    """Crash at each event of a run in turn, finish it: the model calls and tool runs repaid.

    A tool crash is the worker dying as the tool body starts (before its side effect), so
    the ``rerun`` policy is right for it.
    """
    reference = await reference_items(parallel)
    model = tools = 0
    for crash_at in range(1, events(parallel) + 1):
        counter, items = await crash_then_finish(
            backend, crash_at, parallel, journal=journal, tool_policies={"step": "rerun"}
        )
        assert items == reference, f"crash at {crash_at}: the session differs"
        model += counter.model - TURNS
        tools += counter.tools - tool_runs(parallel)
        async with backend.open() as store:  # a fresh session for the next crash
            await store.delete_thread("s")
    print(
        f"\n{backend.name}, {parallel} tool call(s) a turn, journal {'on' if journal else 'off'}: "
        f"crash at each of {events(parallel)} events, repaid {model} model calls, "
        f"{tools} tool runs"
    )
    return model, tools


@pytest.mark.sweep
async def test_a_crash_at_every_event_repays_nothing(backend: Backend) -> None:
    assert await sweep(backend, journal=True, parallel=1) == (0, 0)
    model, _ = await sweep(backend, journal=False, parallel=1)
    assert model > 0, "the contrast shows nothing"  # one tool a turn: no finished tool lost


@pytest.mark.sweep
async def test_parallel_tools_a_crash_repays_no_model_call(backend: Backend) -> None:
    """Two tool calls a turn: the Runner cancels the sibling of a tool whose worker died.

    A sibling cancelled after its body returned but before its result was recorded has an
    unknown outcome, as after a real crash, and ``rerun`` runs it again: at most one tool
    run is repaid per crash, never a model call.
    """
    model, tools = await sweep(backend, journal=True, parallel=2)
    assert model == 0
    assert tools <= events(2)
    off_model, off_tools = await sweep(backend, journal=False, parallel=2)
    assert off_model > 0
    assert off_tools > 0


async def test_streamed_runs_replay_the_completed_event(backend: Backend) -> None:
    reference = await reference_items()
    counter = Counter(crash_at=2)  # the first tool: the first model call is journaled
    agent = make_agent(counter)
    async with backend.open() as store:

        @durable(store=store, agent=agent, tool_policies={"step": "rerun"})
        async def chat(session: StoreSession, user_input: Any) -> Any:
            streamed = Runner.run_streamed(agent, user_input, session=session)
            async for _ in streamed.stream_events():
                pass
            return streamed

        with pytest.raises(WorkerDied):
            await chat("s", "go")
        await chat("s", "go")
        assert (counter.model, counter.tools) == (TURNS, TOOL_RUNS)
        assert await store.read_log("s", ITEMS) == reference


async def test_other_input_over_an_unfinished_run(backend: Backend) -> None:
    counter = Counter(crash_at=3)  # the second model call: the first turn is saved
    agent = make_agent(counter)
    async with backend.open() as store:
        chat = durable_chat(store, agent)
        with pytest.raises(ModelDown):
            await chat("s", "go")
        with pytest.raises(RunInProgressError, match="unfinished run"):
            await chat("s", "something else")
        result = await chat("s", "something else", resume=False)
        assert str(result.final_output).startswith("done")
        with pytest.raises(ValueError, match="give an input"):
            await chat("s")  # nothing unfinished, nothing pending


# -- (b) a worker dies inside a tool --------------------------------------------------------


async def died_in_tool(store: BaseStore, counter: Counter) -> tuple[Agent[Any], ToolCall]:
    """Run until the worker dies in the first tool run (after its side effect)."""
    agent = make_agent(counter)
    chat = durable_chat(store, agent)
    with pytest.raises(WorkerDied):
        await chat("s", "go")
    done = (counter.model, counter.tools)  # the other tool of the turn may have finished
    with pytest.raises(ToolOutcomeUnknownError) as unknown:
        await chat("s", "go")
    error = unknown.value
    assert error.tool == "step"
    assert error.idempotency_key == counter.keys[0]
    assert (counter.model, counter.tools) == done, "nothing ran on the refused call"
    return agent, ToolCall("s", error.tool, error.arguments, error.call_id, error.idempotency_key)


async def test_a_tool_that_died_is_rerun_once_with_the_same_key(backend: Backend) -> None:
    reference = await reference_items()
    counter = Counter(die_in_tool=1)
    async with backend.open() as store:
        agent, call = await died_in_tool(store, counter)
        await durable_chat(store, agent, tool_policies={"step": "rerun"})("s", "go")
        assert counter.keys.count(call.idempotency_key) == 2, "ran once more, same key"
        assert (counter.model, counter.tools) == (TURNS, TOOL_RUNS + 1)
        assert await store.read_log("s", ITEMS) == reference


async def test_a_resolved_tool_call_never_runs_again(backend: Backend) -> None:
    reference = await reference_items()
    counter = Counter(die_in_tool=1)
    async with backend.open() as store:
        agent, call = await died_in_tool(store, counter)
        chat = durable_chat(store, agent)
        with pytest.raises(ValueError, match="names no unfinished tool call"):
            await chat.resolve_tool_call("s", "no-such-key", "x")
        n = call.arguments["n"]
        resolved = await chat.resolve_tool_call("s", call.idempotency_key, f"step {n} done")
        assert resolved.name == "step"
        await chat("s", "go")
        assert counter.keys.count(call.idempotency_key) == 1
        assert (counter.model, counter.tools) == (TURNS, TOOL_RUNS)
        assert await store.read_log("s", ITEMS) == reference


async def test_a_reconciled_tool_call_never_runs_again(backend: Backend) -> None:
    reference = await reference_items()
    counter = Counter(die_in_tool=1)
    seen: list[ToolCall] = []

    def reconcile(call: ToolCall) -> str:
        seen.append(call)
        return f"step {call.arguments['n']} done"

    async with backend.open() as store:
        agent, call = await died_in_tool(store, counter)
        await durable_chat(store, agent, tool_policies={"step": reconcile})("s", "go")
        assert [c.idempotency_key for c in seen] == [call.idempotency_key]
        assert (counter.model, counter.tools) == (TURNS, TOOL_RUNS)
        assert await store.read_log("s", ITEMS) == reference


# -- (c) two resumes of one approval --------------------------------------------------------


class DieAfterTool(RunHooks[Any]):
    """The worker dies after the approved tool ran, before the turn is saved."""

    def __init__(self) -> None:
        self.armed = True

    async def on_tool_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool, result: object
    ) -> None:
        if self.armed:
            self.armed = False
            raise WorkerDied("died after the tool ran")


def approval_agent(runs: list[str]) -> Agent[Any]:
    """A fresh process's agent: a tool needing approval, the model's two replies."""

    @function_tool(needs_approval=True)
    async def delete_file(path: str) -> str:
        """Delete a file."""
        runs.append(path)
        return f"deleted {path}"

    model = ScriptedModel(
        [
            [function_call("delete_file", {"path": "a"}, call_id="c1")],
            [assistant_message("done")],
        ]
    )
    return Agent(name="ops", tools=[delete_file], model=model)


@pytest.mark.parametrize("journal", [True, False])
async def test_a_second_resume_replays_the_approved_tool(backend: Backend, journal: bool) -> None:
    runs: list[str] = []
    async with backend.open() as store:
        first = approval_agent(runs)
        result = await durable_chat(store, first, journal=journal)("s", "delete a")
        assert result.interruptions
        dying = approval_agent(runs)
        dying.model = ScriptedModel([[assistant_message("done")]])
        hooks = DieAfterTool()
        with pytest.raises(WorkerDied):
            await durable_chat(store, dying, journal=journal, hooks=hooks)(
                "s", approve=lambda item: True
            )
        assert runs == ["a"]
        second = approval_agent(runs)
        second.model = ScriptedModel([[assistant_message("done")]])
        result = await durable_chat(store, second, journal=journal)("s", approve=lambda item: True)
        assert result.final_output == "done"
        assert runs == (["a"] if journal else ["a", "a"])


# -- (d) a changed prompt ends replay --------------------------------------------------------


async def test_a_changed_instruction_ends_replay(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    counter = Counter(crash_at=2)  # in the first tool, after the first model call
    async with backend.open() as store:
        with pytest.raises(WorkerDied):
            await durable_chat(store, make_agent(counter))("s", "go")
        changed = make_agent(counter, instructions="work in other steps")
        caplog.set_level(logging.WARNING, "agent_persist")
        chat = durable_chat(store, changed, tool_policies={"step": "rerun"})
        result = await chat("s", "go")
        assert str(result.final_output).startswith("done")
        assert "journal replay ends at worker#0" in caplog.text
        assert counter.model == 1 + TURNS, "the first call was made again, live"
        history = await store.list_checkpoints("s")  # newest first
        notes = [e.metadata["journal"] for e in history if "journal" in e.metadata]
        assert len(notes) == 1
        assert notes[0]["replay_ended"]["at"] == "worker#0"


# -- (e) a corrupt journal --------------------------------------------------------------------


async def test_a_corrupt_journal_raises_and_discard_goes_live(backend: Backend) -> None:
    reference = await reference_items()
    counter = Counter(crash_at=2)  # in the first tool, after the first model call
    agent = make_agent(counter)
    async with backend.open() as store:
        with pytest.raises(WorkerDied):
            await durable_chat(store, agent)("s", "go")
        await store.append("s", JOURNAL_LOG, ["not an entry"])
        chat = durable_chat(store, agent, tool_policies={"step": "rerun"})
        with pytest.raises(CorruptJournalError, match=r"thread 's'.*not an object"):
            await chat("s", "go")
        assert (counter.model, counter.tools) == (1, 0)
        discarding = durable_chat(store, agent, journal="discard")
        await discarding("s", "go")
        assert (counter.model, counter.tools) == (TURNS + 1, TOOL_RUNS), "went live"
        assert await store.read_log("s", ITEMS) == reference
        assert await store.read_log("s", JOURNAL_LOG) == []
