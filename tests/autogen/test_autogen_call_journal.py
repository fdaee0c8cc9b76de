"""The call journal in one process: a turn that failed or died mid-way repays nothing.

A model call that fails mid-turn (a rate limit, a timeout) or a worker that dies inside a
tool leaves the turn's completed calls in the journal; the next ``run()`` replays them. The
calls are counted inside the model double and the tool body, not in the journal's
wrappers. Real SIGKILLs of worker processes are in test_call_journal_kills.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import ChatAgent, Team
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import SelectorGroupChat
from autogen_core.models import CreateResult
from support import normalize, same_result

from agent_persist import open_store
from agent_persist.errors import (
    CorruptJournalError,
    StoreUnavailableError,
    ThreadNotFoundError,
    ToolOutcomeUnknownError,
)
from agent_persist.journal import JOURNAL_LOG, ToolCall, idempotency_key
from agent_persist.stores import BaseStore
from autogen_persist import DurableAgent, DurableTeam
from autogen_persist.testing import HashChatCompletionClient


class ModelDown(Exception):
    """A model call that fails (the provider's 429 or 500)."""


class Counts:
    """What completed, counted where it happens; and where to fail or die next."""

    def __init__(self) -> None:
        self.model = 0
        self.tools: list[tuple[str, str | None]] = []
        self.fail_model_at: int | None = None
        self.die_in_tool_at: int | None = None
        self.started_tools = 0
        self.dying: asyncio.Event = asyncio.Event()
        self.dying_task: asyncio.Task[Any] | None = None

    def model_call(self) -> None:
        if self.fail_model_at is not None and self.model + 1 == self.fail_model_at:
            self.fail_model_at = None
            raise ModelDown("the model is down")
        self.model += 1

    def tool_run(self, name: str) -> None:
        self.started_tools += 1
        self.tools.append((name, idempotency_key()))

    async def tool_run_or_die(self, name: str) -> None:
        """Count the run, or hang inside the tool until the test kills the worker."""
        if self.die_in_tool_at is not None and self.started_tools + 1 == self.die_in_tool_at:
            self.die_in_tool_at = None
            self.dying_task = asyncio.current_task()
            self.dying.set()
            await asyncio.Event().wait()
        self.tool_run(name)


COUNTS = Counts()


class CountingClient(HashChatCompletionClient):
    """The hash double, counting completed calls (and failing one on request)."""

    async def create(self, messages: Sequence[Any], **options: Any) -> CreateResult:
        result = await super().create(messages, **options)
        COUNTS.model_call()
        return result


async def send_mail(to: str) -> str:
    """Send a mail."""
    await COUNTS.tool_run_or_die("send_mail")
    return f"sent to {to}"


def lookup(key: str) -> str:
    """Look a key up."""
    COUNTS.tool_run("lookup")
    return f"value-of-{key}"


def reflecting_agent(system: str = "You answer with tools.") -> ChatAgent:
    """A model call with a tool call, the tool, then the reflection: three calls a run."""
    return AssistantAgent(
        "assistant",
        model_client=CountingClient(name="assistant", tool_every=1),
        tools=[send_mail, lookup],
        system_message=system,
        reflect_on_tool_use=True,
    )


def mail_agent() -> ChatAgent:
    """The reflecting agent with one tool, which has a side effect."""
    return AssistantAgent(
        "assistant",
        model_client=CountingClient(name="assistant", tool_every=1),
        tools=[send_mail],
        system_message="You send mail.",
        reflect_on_tool_use=True,
    )


def selector_team() -> Team:
    names = ["researcher", "analyst", "writer"]
    return SelectorGroupChat(
        [
            AssistantAgent(
                name,
                model_client=CountingClient(name=name, tool_every=3),
                tools=[lookup],
                system_message=f"You are {name}.",
            )
            for name in names
        ],
        model_client=CountingClient(name="selector", choices=names),
        termination_condition=MaxMessageTermination(8),
        allow_repeated_speaker=False,
    )


TASKS = ["Mail person 0 the plan.", "Mail person 1 the plan.", "Look up the weather."]


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    global COUNTS
    COUNTS.__init__()


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=[pytest.mark.postgres]),
        pytest.param("redis", id="redis", marks=[pytest.mark.redis]),
    ]
)
async def any_store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[BaseStore]:
    """Every store, the in-process one included."""
    kind = request.param
    if kind == "memory":
        url, options = "memory://", {}
    elif kind == "sqlite":
        url, options = f"sqlite:///{tmp_path / 'journal.db'}", {}
    elif kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        options = {"schema": request.getfixturevalue("postgres_schema")}
    else:
        url = request.getfixturevalue("redis_url")
        options = {"prefix": request.getfixturevalue("redis_prefix")}
    async with open_store(url, **options) as store:
        yield store


async def _agent_runs(agent: DurableAgent) -> list[Any]:
    status = await agent.status()
    done = 0 if status is None or status.run is None else status.run.index + 1
    return [await agent.run(task=task) for task in TASKS[done:]]


async def _reference_agent(store: BaseStore, factory: Callable[[], ChatAgent]) -> Any:
    results = await _agent_runs(DurableAgent(factory, store=store, thread_id="reference"))
    counted = COUNTS.model, len(COUNTS.tools)
    keys = [key for _, key in COUNTS.tools]
    assert all(keys), "every tool body saw its idempotency key"
    assert len(set(keys)) == len(keys), "every call had its own key"
    assert {name for name, _ in COUNTS.tools} == {"send_mail", "lookup"}, "sync and async"
    COUNTS.__init__()
    return results, counted


async def test_a_failed_model_call_repays_no_completed_call(any_store: BaseStore) -> None:
    expected, (model_calls, tool_runs) = await _reference_agent(any_store, reflecting_agent)
    assert model_calls == 2 * len(TASKS)
    assert tool_runs == len(TASKS)

    for k in range(1, model_calls + 1):
        COUNTS.__init__()
        COUNTS.fail_model_at = k
        thread = f"failed-at-{k}"
        with pytest.raises(ModelDown):
            await _agent_runs(DurableAgent(reflecting_agent, store=any_store, thread_id=thread))
        resumed = DurableAgent(reflecting_agent, store=any_store, thread_id=thread)
        results = await _agent_runs(resumed)
        assert (COUNTS.model, len(COUNTS.tools)) == (model_calls, tool_runs), f"k={k}"
        assert same_result(results[-1], expected[-1])
        assert await any_store.log_length(thread, JOURNAL_LOG) == 0


async def test_without_the_journal_the_completed_calls_are_paid_again(
    any_store: BaseStore,
) -> None:
    _, (model_calls, tool_runs) = await _reference_agent(any_store, reflecting_agent)
    COUNTS.fail_model_at = 2  # the reflection of the first run: its model call and tool ran
    with pytest.raises(ModelDown):
        await _agent_runs(
            DurableAgent(reflecting_agent, store=any_store, thread_id="off", journal=False)
        )
    await _agent_runs(
        DurableAgent(reflecting_agent, store=any_store, thread_id="off", journal=False)
    )
    assert (COUNTS.model, len(COUNTS.tools)) == (model_calls + 1, tool_runs + 1)


async def test_a_team_turn_that_failed_replays_the_selector_and_the_speaker(
    any_store: BaseStore,
) -> None:
    reference = DurableTeam(selector_team, store=any_store, thread_id="reference")
    expected = await reference.run(task="Write the report.")
    model_calls, tool_runs = COUNTS.model, len(COUNTS.tools)
    expected_state = normalize(await reference.state())

    for k in range(1, model_calls + 1):
        COUNTS.__init__()
        COUNTS.fail_model_at = k
        thread = f"failed-at-{k}"
        with pytest.raises((ModelDown, RuntimeError), match="the model is down"):
            await DurableTeam(selector_team, store=any_store, thread_id=thread).run(
                task="Write the report."
            )
        resumed = DurableTeam(selector_team, store=any_store, thread_id=thread)
        result = await resumed.run(task="Write the report.")
        assert (COUNTS.model, len(COUNTS.tools)) == (model_calls, tool_runs), f"k={k}"
        assert same_result(result, expected)
        assert normalize(await resumed.state()) == expected_state


async def _die_in_first_tool(store: BaseStore, thread: str) -> None:
    """Run until the tool is inside its body, then kill the worker's tasks there."""
    COUNTS.die_in_tool_at = 1
    worker = DurableAgent(mail_agent, store=store, thread_id=thread)
    run = asyncio.create_task(worker.run(task=TASKS[0]))
    await COUNTS.dying.wait()
    assert COUNTS.dying_task is not None
    for task in (COUNTS.dying_task, run):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_tool_the_worker_died_in_raises_by_default_until_resolved(
    any_store: BaseStore,
) -> None:
    await _die_in_first_tool(any_store, "t")
    journal = await any_store.read_log("t", JOURNAL_LOG)
    agent = DurableAgent(mail_agent, store=any_store, thread_id="t")
    with pytest.raises(ToolOutcomeUnknownError) as raised:
        await agent.run(task=TASKS[0])
    unknown = raised.value
    assert unknown.tool == "send_mail"
    assert unknown.thread_id == "t"
    assert isinstance(unknown.arguments, dict)
    assert len(unknown.idempotency_key) == 32
    assert "run 0" in str(unknown)
    assert unknown.idempotency_key in str(unknown)
    assert COUNTS.tools == []
    assert await any_store.read_log("t", JOURNAL_LOG) == journal, "nothing written"

    with pytest.raises(ValueError, match="idempotency_key"):
        await agent.resolve_tool_call("no-such-key", "x")
    call = await agent.resolve_tool_call(unknown.idempotency_key, "sent, checked by hand")
    assert call.name == unknown.tool
    result = await agent.run(task=TASKS[0])
    assert COUNTS.tools == [], "the tool never ran again"
    texts = [str(getattr(m, "content", "")) for m in result.messages]
    assert any("sent, checked by hand" in text for text in texts)


async def test_rerun_runs_an_idempotent_tool_again_with_the_same_key(
    any_store: BaseStore,
) -> None:
    await _die_in_first_tool(any_store, "t")
    started = await any_store.read_log("t", JOURNAL_LOG)
    key = next(e["idem"] for e in started if e["type"] == "started")  # type: ignore[index]
    agent = DurableAgent(
        mail_agent, store=any_store, thread_id="t", tool_policies={"send_mail": "rerun"}
    )
    await agent.run(task=TASKS[0])
    assert COUNTS.tools == [("send_mail", key)], "ran exactly once more, with the same key"


async def test_reconcile_supplies_the_result_and_the_tool_never_runs_again(
    any_store: BaseStore,
) -> None:
    await _die_in_first_tool(any_store, "t")
    asked: list[ToolCall] = []

    async def reconcile(call: ToolCall) -> str:
        asked.append(call)
        return f"provider says {call.name} went out"

    agent = DurableAgent(
        mail_agent, store=any_store, thread_id="t", tool_policies={"send_mail": reconcile}
    )
    result = await agent.run(task=TASKS[0])
    assert COUNTS.tools == []
    assert len(asked) == 1
    assert asked[0].thread_id == "t"
    assert asked[0].idempotency_key
    assert any("went out" in str(getattr(m, "content", "")) for m in result.messages)


async def test_a_changed_prompt_ends_replay_at_the_first_changed_call(
    any_store: BaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    COUNTS.fail_model_at = 2  # after the tool ran
    with pytest.raises(ModelDown):
        await DurableAgent(reflecting_agent, store=any_store, thread_id="t").run(task=TASKS[0])
    assert (COUNTS.model, len(COUNTS.tools)) == (1, 1)

    def changed() -> ChatAgent:
        return reflecting_agent("You answer with tools, briefly.")

    caplog.set_level(logging.WARNING, "agent_persist")
    agent = DurableAgent(changed, store=any_store, thread_id="t", drift="accept")
    await agent.run(task=TASKS[0])
    assert COUNTS.model == 1 + 2, "every call of the changed turn went live"
    assert "journal replay ends at $agent#0" in caplog.text
    note = (await any_store.get("t")).metadata["journal"]
    assert note["replay_ended"]["at"] == "$agent#0"


async def test_a_corrupt_entry_is_a_typed_error_and_discard_goes_live(
    any_store: BaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    COUNTS.fail_model_at = 2
    with pytest.raises(ModelDown):
        await DurableAgent(reflecting_agent, store=any_store, thread_id="t").run(task=TASKS[0])
    await any_store.append("t", JOURNAL_LOG, [{"j": 1, "by": "x", "type": "model"}])
    journal = await any_store.read_log("t", JOURNAL_LOG)
    producer = journal[0]["by"]  # type: ignore[index]
    await any_store.append("t", JOURNAL_LOG, [{"j": 1, "by": producer, "type": "bogus"}])

    with pytest.raises(CorruptJournalError) as raised:
        await DurableAgent(reflecting_agent, store=any_store, thread_id="t").run(task=TASKS[0])
    message = str(raised.value)
    assert "'t'" in message
    assert "run 0" in message
    assert "journal='discard'" in message
    assert len(await any_store.read_log("t", JOURNAL_LOG)) == len(journal) + 1, "kept"

    caplog.set_level(logging.WARNING, "agent_persist")
    agent = DurableAgent(reflecting_agent, store=any_store, thread_id="t", journal="discard")
    await agent.run(task=TASKS[0])
    assert "call journal discarded" in caplog.text
    assert COUNTS.model == 1 + 2


async def test_bad_journal_options_are_refused(memory_store: BaseStore) -> None:
    with pytest.raises(ValueError, match="journal"):
        DurableAgent(reflecting_agent, store=memory_store, thread_id="t", journal="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"tool_policies\['send_mail'\]"):
        DurableAgent(
            reflecting_agent,
            store=memory_store,
            thread_id="t",
            tool_policies={"send_mail": "sometimes"},  # type: ignore[dict-item]
        )
    with pytest.raises(TypeError, match="tool_policies"):
        DurableAgent(reflecting_agent, store=memory_store, thread_id="t", tool_policies=["x"])  # type: ignore[arg-type]


async def test_the_journal_holds_one_turn_at_most(tmp_path: Any) -> None:
    async with open_store(f"sqlite:///{tmp_path / 'j.db'}") as store:
        agent = DurableAgent(reflecting_agent, store=store, thread_id="t")
        await _agent_runs(agent)
        assert await store.log_length("t", JOURNAL_LOG) == 0
        head = await store.get("t")
        assert await store.read_log("t", JOURNAL_LOG, at=head) == []


async def test_a_journal_write_that_failed_inside_a_tool_stops_the_run(
    memory_store: BaseStore,
) -> None:
    """AutoGen hands a tool's exception to the model: the journal's must still stop the run."""
    append = memory_store.append

    async def refuse_results(thread_id: str, log: str, items: Any, **options: Any) -> None:
        if log == JOURNAL_LOG and items[0]["type"] == "tool":
            raise StoreUnavailableError("the store went away")
        await append(thread_id, log, items, **options)

    memory_store.append = refuse_results  # type: ignore[method-assign]
    agent = AssistantAgent(  # no reflection: the tool is the turn's last call
        "assistant",
        model_client=CountingClient(name="assistant", tool_every=1),
        tools=[lookup],
    )
    durable_agent = DurableAgent(lambda: agent, store=memory_store, thread_id="t")
    with pytest.raises(StoreUnavailableError):
        await durable_agent.run(task=TASKS[0])
    assert len(COUNTS.tools) == 1, "the tool ran"
    with pytest.raises(ThreadNotFoundError):
        await memory_store.get("t")  # no checkpoint emptied the journal
    journal = await memory_store.read_log("t", JOURNAL_LOG)
    assert [entry["type"] for entry in journal] == ["model", "started"]  # type: ignore[index]
