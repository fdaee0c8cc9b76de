"""The user-facing behaviour: decorator, streaming, cancellation, finished runs, errors, leases."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult, Team
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import MagenticOneGroupChat, RoundRobinGroupChat
from autogen_agentchat.ui import Console
from autogen_core import CancellationToken
from autogen_core.models import CreateResult, LLMMessage
from scenarios import AGENT_TASKS, TASK, TEAMS, round_robin_max, tool_agent
from support import Abort, abort_after, normalize, same_result

import agent_persist.errors
from agent_persist import Envelope, Status, canonical_json
from agent_persist.stores import BaseStore
from autogen_persist import DurableAgent, DurableTeam, durable, make_durable
from autogen_persist.errors import ResumeNotSupportedError, RunInProgressError, ThreadBusyError
from autogen_persist.testing import HashChatCompletionClient


async def test_the_decorator_builds_a_durable_team_that_resumes(memory_store: BaseStore) -> None:
    calls: list[str] = []

    @durable(store=memory_store)
    def build(label: str) -> Team:
        calls.append(label)
        return round_robin_max()

    first = build("x", thread_id="t")
    assert isinstance(first, DurableTeam)
    with pytest.raises(Abort):
        await DurableTeam(
            round_robin_max, store=memory_store, thread_id="t", on_checkpoint=abort_after(3)
        ).run(task=TASK)
    result = await first.run(task=TASK)
    expected = await make_durable(round_robin_max, store=memory_store, thread_id="ref").run(
        task=TASK
    )
    assert same_result(result, expected)
    assert calls == ["x"], "the probe build serves the first run"


async def test_the_decorator_on_an_agent_factory_gives_a_durable_agent(
    memory_store: BaseStore,
) -> None:
    agent = durable(store=memory_store)(tool_agent)(thread_id="a")
    assert isinstance(agent, DurableAgent)
    result = await agent.run(task=AGENT_TASKS[0])
    assert result.messages[0].source == "user"


async def test_a_store_url_is_opened_and_closed_by_each_run(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'team.db'}"
    team = DurableTeam(round_robin_max, store=url, thread_id="t")
    result = await team.run(task=TASK)
    async with DurableTeam(round_robin_max, store=url, thread_id="t") as again:
        assert same_result(await again.run(task=TASK), result)
        status = await again.status()
    assert status is not None
    assert status.status is Status.DONE


async def test_run_stream_works_with_console_and_yields_each_message_once(
    memory_store: BaseStore, capsys: pytest.CaptureFixture[str]
) -> None:
    team = DurableTeam(round_robin_max, store=memory_store, thread_id="t")
    result = await Console(team.run_stream(task=TASK))
    assert isinstance(result, TaskResult)
    assert len(result.messages) == 13
    assert capsys.readouterr().out.count("---------- TextMessage") == 13


async def test_output_task_messages_false_hides_the_task(memory_store: BaseStore) -> None:
    team = DurableTeam(round_robin_max, store=memory_store, thread_id="t")
    items = [item async for item in team.run_stream(task=TASK, output_task_messages=False)]
    result = items[-1]
    assert isinstance(result, TaskResult)
    assert all(getattr(m, "source", None) != "user" for m in result.messages)
    assert len(items) == 13  # 12 agent messages and the result


async def test_a_finished_run_resumes_as_finished_and_does_not_keep_talking(
    memory_store: BaseStore,
) -> None:
    team = DurableTeam(round_robin_max, store=memory_store, thread_id="t")
    first = await team.run(task=TASK)
    count = len(await memory_store.list_checkpoints("t"))
    for again in (await team.run(task=TASK), await team.run()):
        assert same_result(again, first)
    assert len(await memory_store.list_checkpoints("t")) == count
    status = await team.status()
    assert status is not None
    assert status.status is Status.DONE
    assert status.stop_reason == first.stop_reason


async def test_a_new_task_continues_the_conversation(memory_store: BaseStore) -> None:
    team = DurableTeam(round_robin_max, store=memory_store, thread_id="t")
    await team.run(task=TASK)
    second = await team.run(task="And a fourth day?")
    plain = round_robin_max()
    await plain.run(task=TASK)
    expected = await plain.run(task="And a fourth day?")
    assert same_result(second, expected)
    repeat = await team.run(task=TASK, resume=False)  # the same task again, on purpose
    assert len(repeat.messages) == 13


async def test_another_task_during_an_unfinished_run_is_refused(memory_store: BaseStore) -> None:
    with pytest.raises(Abort):
        await DurableTeam(
            round_robin_max, store=memory_store, thread_id="t", on_checkpoint=abort_after(2)
        ).run(task=TASK)
    before = await memory_store.list_checkpoints("t")
    team = DurableTeam(round_robin_max, store=memory_store, thread_id="t")
    with pytest.raises(RunInProgressError, match="unfinished run"):
        await team.run(task="Something else")
    assert await memory_store.list_checkpoints("t") == before


class _FailingModel(HashChatCompletionClient):
    """Raises once, on the n-th call counted across every instance (a flaky provider)."""

    budget: ClassVar[list[int]] = []

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        if self.budget:
            self.budget[0] -= 1
            if self.budget[0] == 0:
                raise ConnectionError("model provider unavailable")
        return await super().create(messages, **kwargs)


def _flaky_team() -> Team:
    agents = [
        AssistantAgent(
            name, model_client=_FailingModel(name=name), system_message=f"You are {name}."
        )
        for name in ("planner", "critic", "editor")
    ]
    return RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(13))


async def test_after_an_exception_mid_turn_the_retry_restores_fresh_objects(
    memory_store: BaseStore,
) -> None:
    expected = await DurableTeam(_flaky_team, store=memory_store, thread_id="ref").run(task=TASK)
    expected_state = normalize(
        await DurableTeam(_flaky_team, store=memory_store, thread_id="ref").state()
    )
    _FailingModel.budget[:] = [6]
    team = DurableTeam(_flaky_team, store=memory_store, thread_id="t")
    with pytest.raises(RuntimeError, match="model provider unavailable"):
        await team.run(task=TASK)
    status = await team.status()
    assert status is not None
    assert status.status is Status.ERROR
    assert "unavailable" in (status.stop_reason or "")
    result = await team.run(task=TASK)
    assert same_result(result, expected)
    assert normalize(await team.state()) == expected_state


async def test_a_cancellation_token_interrupts_and_the_run_resumes(
    memory_store: BaseStore,
) -> None:
    expected = await DurableTeam(round_robin_max, store=memory_store, thread_id="ref").run(
        task=TASK
    )
    token = CancellationToken()

    def cancel_at_third(envelope: Envelope) -> None:
        if envelope.step == 2:
            token.cancel()

    team = DurableTeam(
        round_robin_max, store=memory_store, thread_id="t", on_checkpoint=cancel_at_third
    )
    with pytest.raises(asyncio.CancelledError):
        await team.run(task=TASK, cancellation_token=token)
    status = await team.status()
    assert status is not None
    assert status.status is Status.INTERRUPTED
    assert same_result(await team.run(task=TASK), expected)


async def test_two_workers_at_once_one_runs_the_other_is_refused_or_waits(
    memory_store: BaseStore,
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def hold(envelope: Envelope) -> None:
        started.set()
        await release.wait()

    worker_a = DurableTeam(round_robin_max, store=memory_store, thread_id="t", on_checkpoint=hold)
    run_a = asyncio.create_task(worker_a.run(task=TASK))
    await started.wait()
    worker_b = DurableTeam(
        round_robin_max, store=memory_store, thread_id="t", lease_wait=timedelta(0)
    )
    with pytest.raises(ThreadBusyError, match="another worker"):
        await worker_b.run(task=TASK)
    waiting = DurableTeam(
        round_robin_max, store=memory_store, thread_id="t", lease_wait=timedelta(seconds=30)
    )
    run_c = asyncio.create_task(waiting.run(task=TASK))
    await asyncio.sleep(0.05)
    assert not run_c.done()
    release.set()
    result_a = await run_a
    assert same_result(await run_c, result_a)  # it waited, then found the run finished


def test_thread_busy_error_is_the_cores() -> None:
    """One class for both adapters: ``except`` either name catches what either raises."""
    assert ThreadBusyError is agent_persist.errors.ThreadBusyError
    assert issubclass(ThreadBusyError, agent_persist.errors.LeaseHeldError)


async def test_a_dead_workers_lease_expires(memory_store: BaseStore) -> None:
    await memory_store.acquire_lease("t", "dead-worker", ttl=timedelta(milliseconds=300))
    refusing = DurableTeam(
        round_robin_max, store=memory_store, thread_id="t", lease_wait=timedelta(0)
    )
    with pytest.raises(ThreadBusyError, match="dead-worker"):
        await refusing.run(task=TASK)
    team = DurableTeam(round_robin_max, store=memory_store, thread_id="t")  # waits by default
    result = await team.run(task=TASK)
    assert result.stop_reason is not None


async def test_checkpoints_are_linear_only_new_items_are_written(memory_store: BaseStore) -> None:
    checkpoints: list[Envelope] = []

    def chat() -> Team:
        agents = [AssistantAgent(n, model_client=HashChatCompletionClient(name=n)) for n in "ab"]
        return RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(61))

    team = DurableTeam(chat, store=memory_store, thread_id="t", on_checkpoint=checkpoints.append)
    await team.run(task=TASK)
    sizes = [len(canonical_json(c.payload)) for c in checkpoints]
    assert sizes[55] <= sizes[5] * 1.1, "the payload does not grow with the history"
    grown = [
        sum(b.logs.values()) - sum(a.logs.values()) for a, b in itertools.pairwise(checkpoints)
    ]
    assert max(grown) <= 6, "each turn appends a constant number of log items"


async def test_the_envelope_carries_fingerprint_versions_and_omitted_state(
    memory_store: BaseStore,
) -> None:
    checkpoints: list[Envelope] = []
    team = DurableTeam(
        TEAMS["graph_cycle"], store=memory_store, thread_id="t", on_checkpoint=checkpoints.append
    )
    await team.run(task=TASK)
    head = checkpoints[3]
    assert head.kind == "autogen.team"
    assert head.producer.framework == "autogen-agentchat"
    assert head.producer.framework_version
    assert head.fingerprint is not None
    assert head.fingerprint.startswith("sha256:")
    payload = head.payload
    assert payload["layout"]["participants"] == ["start", "a", "b", "c", "done"]
    assert payload["termination"]["type"] == "MaxMessageTermination"
    assert payload["run"]["done"] is False
    assert "" in payload["extras"]["activation_groups"]


async def test_the_fingerprint_changes_with_the_prompt() -> None:
    from autogen_persist._layout import config_fingerprint

    def team(prompt: str) -> Team:
        agent = AssistantAgent("a", model_client=HashChatCompletionClient(), system_message=prompt)
        return RoundRobinGroupChat([agent])

    assert config_fingerprint(team("x")) == config_fingerprint(team("x"))
    assert config_fingerprint(team("x")) != config_fingerprint(team("y"))


class _MagenticModel(HashChatCompletionClient):
    """Answers the orchestrator's progress ledger in JSON; satisfied after a few rounds."""

    def _reply(self, messages: Sequence[LLMMessage], tools: Sequence[Any]) -> CreateResult:
        result = super()._reply(messages, tools)
        if "is_request_satisfied" not in str(getattr(messages[-1], "content", "")):
            return result
        done = len(messages) >= 8

        def entry(answer: object) -> dict[str, object]:
            return {"reason": "because", "answer": answer}

        ledger = {
            "is_request_satisfied": entry(done),
            "is_progress_being_made": entry(True),
            "is_in_loop": entry(False),
            "instruction_or_question": entry(f"continue {len(messages)}"),
            "next_speaker": entry("worker"),
        }
        return result.model_copy(update={"content": json.dumps(ledger)})


def _magentic() -> Team:
    worker = AssistantAgent("worker", model_client=HashChatCompletionClient(name="worker"))
    return MagenticOneGroupChat([worker], model_client=_MagenticModel(name="orchestrator"))


async def test_magentic_one_checkpoints_but_refuses_to_resume_mid_task(
    memory_store: BaseStore,
) -> None:
    checkpoints: list[Envelope] = []
    team = DurableTeam(
        _magentic, store=memory_store, thread_id="m", on_checkpoint=checkpoints.append
    )
    result = await team.run(task=TASK)
    assert len(checkpoints) >= 3
    assert checkpoints[-1].status is Status.DONE
    state = await team.state(checkpoint_id=checkpoints[1].checkpoint_id)
    assert state["agent_states"]["MagenticOneOrchestrator"]["task"]
    assert same_result(await team.run(task=TASK), result)  # finished: replayed, not re-run

    with pytest.raises(Abort):
        await DurableTeam(
            _magentic, store=memory_store, thread_id="cut", on_checkpoint=abort_after(2)
        ).run(task=TASK)
    before = await memory_store.list_checkpoints("cut")
    with pytest.raises(ResumeNotSupportedError, match="cannot continue a task mid-way"):
        await DurableTeam(_magentic, store=memory_store, thread_id="cut").run(task=TASK)
    assert await memory_store.list_checkpoints("cut") == before
    fresh = await DurableTeam(_magentic, store=memory_store, thread_id="cut").run(
        task=TASK, resume=False
    )
    assert fresh.stop_reason is not None
