"""Bad input gives a typed, explained error, and nothing stored changes."""

from __future__ import annotations

from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import Team
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from scenarios import TASK, round_robin_max, tool_agent

from agent_persist import Envelope, Producer
from agent_persist.errors import (
    CorruptCheckpointError,
    FutureVersionError,
    ThreadNotFoundError,
)
from agent_persist.stores import BaseStore
from autogen_persist import DurableAgent, DurableTeam, load_agent, load_team
from autogen_persist.errors import (
    IncompatibleCheckpointError,
    KindMismatchError,
    ParticipantsMismatchError,
)
from autogen_persist.testing import HashChatCompletionClient


def _team(names: list[str], kind: type[RoundRobinGroupChat] = RoundRobinGroupChat) -> Team:
    agents = [
        AssistantAgent(
            n, model_client=HashChatCompletionClient(name=n), system_message=f"You are {n}."
        )
        for n in names
    ]
    return kind(agents, termination_condition=MaxMessageTermination(13))


async def _snapshot(store: BaseStore, thread_id: str) -> Any:
    checkpoints = await store.list_checkpoints(thread_id)
    logs = {name: await store.read_log(thread_id, name) for name in checkpoints[0].logs}
    return [c.model_dump() for c in checkpoints], logs


@pytest.fixture
async def saved(memory_store: BaseStore) -> BaseStore:
    await DurableTeam(round_robin_max, store=memory_store, thread_id="t").run(task=TASK)
    return memory_store


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["planner", "critic"], "missing participants"),
        (["planner", "critic", "editor", "extra"], "new participants"),
        (["planner", "critic", "writer"], "missing participants"),
        (["critic", "planner", "editor"], "reordered"),
    ],
)
async def test_participants_that_differ_are_refused(
    saved: BaseStore, names: list[str], problem: str
) -> None:
    before = await _snapshot(saved, "t")
    team = DurableTeam(lambda: _team(names), store=saved, thread_id="t")
    with pytest.raises(ParticipantsMismatchError, match=problem):
        await team.run(task=TASK)
    with pytest.raises(ParticipantsMismatchError):
        await load_team(saved, "t", _team(names))
    assert await _snapshot(saved, "t") == before


async def test_another_team_type_is_refused(saved: BaseStore) -> None:
    def selector() -> Team:
        agents = [
            AssistantAgent(n, model_client=HashChatCompletionClient(name=n))
            for n in ["planner", "critic", "editor"]
        ]
        return SelectorGroupChat(agents, model_client=HashChatCompletionClient(choices=["planner"]))

    with pytest.raises(ParticipantsMismatchError, match=r"written by a RoundRobinGroupChat"):
        await DurableTeam(selector, store=saved, thread_id="t").run(task=TASK)


async def test_a_checkpoint_of_another_kind_is_refused(saved: BaseStore) -> None:
    before = await _snapshot(saved, "t")
    with pytest.raises(KindMismatchError, match=r"autogen\.team"):
        await DurableAgent(tool_agent, store=saved, thread_id="t").run(task="hi")
    with pytest.raises(KindMismatchError):
        await load_agent(saved, "t", tool_agent())
    assert await _snapshot(saved, "t") == before


async def _put_head(store: BaseStore, **changes: Any) -> None:
    head = await store.get("t")
    await store.put(head.next(payload=changes.pop("payload", head.payload), **changes))


async def test_a_future_checkpoint_is_refused(saved: BaseStore) -> None:
    await _put_head(saved, schema_version=7)
    before = await _snapshot(saved, "t")
    with pytest.raises(FutureVersionError, match="newer than this code"):
        await DurableTeam(round_robin_max, store=saved, thread_id="t").run(task=TASK)
    assert await _snapshot(saved, "t") == before


async def test_a_payload_of_the_wrong_shape_is_corrupt(saved: BaseStore) -> None:
    await _put_head(saved, payload={"not": "a team"})
    before = await _snapshot(saved, "t")
    with pytest.raises(CorruptCheckpointError, match="does not have the schema-1 shape"):
        await DurableTeam(round_robin_max, store=saved, thread_id="t").run(task=TASK)
    assert await _snapshot(saved, "t") == before


async def test_a_log_that_does_not_match_its_reference_is_corrupt(saved: BaseStore) -> None:
    head = await saved.get("t")
    payload = head.payload
    thread = payload["team"]["agent_states"]["RoundRobinGroupChatManager"]["message_thread"]
    thread["digest"] = "0" * 32
    await _put_head(saved, payload=payload)
    before = await _snapshot(saved, "t")
    with pytest.raises(CorruptCheckpointError, match=r"does not hold the 13 items"):
        await DurableTeam(round_robin_max, store=saved, thread_id="t").state()
    with pytest.raises(CorruptCheckpointError):
        await DurableTeam(round_robin_max, store=saved, thread_id="t").run(task=TASK)
    assert await _snapshot(saved, "t") == before


async def test_a_missing_thread(memory_store: BaseStore) -> None:
    team = DurableTeam(round_robin_max, store=memory_store, thread_id="nope")
    assert await team.status() is None
    with pytest.raises(ThreadNotFoundError):
        await team.state()
    with pytest.raises(ThreadNotFoundError):
        await load_team(memory_store, "nope", round_robin_max())
    with pytest.raises(ThreadNotFoundError):
        await load_agent(memory_store, "nope", tool_agent())
    assert await memory_store.list_threads() == []


async def test_a_foreign_kind_is_refused(memory_store: BaseStore) -> None:
    await memory_store.put(
        Envelope.create(
            kind="my.chat",
            schema_version=1,
            thread_id="t",
            payload={},
            producer=Producer(package="x"),
        )
    )
    with pytest.raises(KindMismatchError, match=r"'my\.chat'"):
        await DurableTeam(round_robin_max, store=memory_store, thread_id="t").run(task=TASK)


async def test_agents_that_fail_to_build_for_a_checkpoint_are_a_typed_error(
    saved: BaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agents are built while the store answers; a failure names the checkpoint."""
    import autogen_persist.team as team_module

    async def broken(team: Any) -> None:
        raise ValueError("the runtime refused an agent")

    monkeypatch.setattr(team_module, "build_agents", broken)
    before = await _snapshot(saved, "t")
    with pytest.raises(IncompatibleCheckpointError, match="refused an agent") as raised:
        await DurableTeam(round_robin_max, store=saved, thread_id="t").run(task=TASK)
    assert "of thread 't'" in str(raised.value)
    assert await _snapshot(saved, "t") == before
