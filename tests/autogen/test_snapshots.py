"""save_agent / load_agent and the team twins; adoption of raw save_state() files; termination."""

from __future__ import annotations

import json
import time
from pathlib import Path

from autogen_agentchat.conditions import MaxMessageTermination, TimeoutTermination
from autogen_core.models import UserMessage
from scenarios import AGENT_TASKS, TASK, TEAMS, round_robin_max, tool_agent
from support import normalize, same_result

from agent_persist import Registry, canonical_json, default_registry
from agent_persist.stores import BaseStore
from autogen_persist import DurableTeam, load_agent, load_team, save_agent, save_team
from autogen_persist._termination import load_condition, save_condition


async def test_save_agent_after_each_run_then_load_in_a_fresh_agent(
    memory_store: BaseStore,
) -> None:
    agent = tool_agent()
    sizes: list[int] = []
    for task in AGENT_TASKS[:6]:
        await agent.run(task=task)
        saved = await save_agent(memory_store, "a", agent)
        sizes.append(len(canonical_json(saved.payload)))
    assert max(sizes) - min(sizes) < 64, "the payload holds references, not the context"

    fresh = tool_agent()
    await load_agent(memory_store, "a", fresh)
    assert normalize(await fresh.save_state()) == normalize(await agent.save_state())
    assert same_result(await fresh.run(task=AGENT_TASKS[6]), await agent.run(task=AGENT_TASKS[6]))


async def test_a_context_that_is_rewritten_is_stored_whole_once(memory_store: BaseStore) -> None:
    agent = tool_agent()
    await agent.run(task=AGENT_TASKS[0])
    await save_agent(memory_store, "a", agent)
    context = agent._model_context  # pyright: ignore[reportPrivateUsage]
    await context.clear()
    await context.add_message(UserMessage(content="only this", source="user"))
    second = await save_agent(memory_store, "a", agent)
    ref = second.payload["agent"]["llm_context"]["messages"]
    assert ref["start"] > 0, "the new list starts after the old one in the log"
    assert ref["length"] == 1
    fresh = tool_agent()
    await load_agent(memory_store, "a", fresh)
    assert normalize(await fresh.save_state()) == normalize(await agent.save_state())
    first = await load_agent(memory_store, "a", tool_agent(), checkpoint_id=second.parent_id)
    assert first.checkpoint_id == second.parent_id


async def test_save_team_and_load_team_between_runs(memory_store: BaseStore) -> None:
    team = TEAMS["graph_cycle"]()
    await team.run(task=TASK)
    await save_team(memory_store, "t", team)
    fresh = TEAMS["graph_cycle"]()
    await load_team(memory_store, "t", fresh)
    assert normalize(await fresh.save_state()) == normalize(await team.save_state())
    assert same_result(await fresh.run(task="again"), await team.run(task="again"))


async def test_save_and_load_take_a_url_and_close_what_they_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'snapshots.db'}"
    agent = tool_agent()
    await agent.run(task=AGENT_TASKS[0])
    saved = await save_agent(url, "a", agent)
    fresh = tool_agent()
    assert (await load_agent(url, "a", fresh)).checkpoint_id == saved.checkpoint_id
    assert normalize(await fresh.save_state()) == normalize(await agent.save_state())

    team = TEAMS["graph_cycle"]()
    await team.run(task=TASK)
    await save_team(url, "t", team)
    again = TEAMS["graph_cycle"]()
    await load_team(url, "t", again)
    assert normalize(await again.save_state()) == normalize(await team.save_state())

    closed: list[str] = []
    real_close = BaseStore.close

    async def close(self: BaseStore) -> None:
        closed.append(type(self).__name__)
        await real_close(self)

    BaseStore.close = close  # type: ignore[method-assign]
    try:
        await save_agent(url, "a", agent)
        await load_agent(url, "a", tool_agent())
    finally:
        BaseStore.close = real_close  # type: ignore[method-assign]
    assert len(closed) == 2, "each call closes the store it opened"


async def test_a_raw_save_state_file_is_adopted_and_resumed(
    memory_store: BaseStore, tmp_path: Path
) -> None:
    plain = round_robin_max()
    await plain.run(task=TASK)
    path = tmp_path / "team.json"
    path.write_text(json.dumps(await plain.save_state()))

    registry = default_registry()
    adopted = registry.adopt(json.loads(path.read_text()), thread_id="t")
    assert adopted.kind == "autogen.team"
    assert adopted.schema_version == 0
    await memory_store.put(registry.upgrade(adopted))

    team = DurableTeam(round_robin_max, store=memory_store, thread_id="t")
    result = await team.run(task="And a fourth day?")
    assert same_result(result, await plain.run(task="And a fourth day?"))
    head = await memory_store.get("t")
    assert (
        head.payload["team"]["agent_states"]["RoundRobinGroupChatManager"]["message_thread"][
            "length"
        ]
        == 26
    ), "the inline lists moved to logs"


async def test_a_raw_agent_state_is_recognised() -> None:
    agent = tool_agent()
    registry = Registry()
    from autogen_persist._plugin import register

    register(registry)
    raw = json.loads(json.dumps(await agent.save_state()))
    assert registry.adopt(raw, thread_id="a").kind == "autogen.agent"
    assert registry.upgrade(registry.adopt(raw, thread_id="a")).payload == {"agent": raw}


def test_timeout_state_is_elapsed_time_not_a_clock_reading() -> None:
    condition = TimeoutTermination(60)
    condition._start_time = time.monotonic() - 30  # pyright: ignore[reportPrivateUsage]
    state = save_condition(condition)
    assert 29 < state["elapsed_seconds"] < 40
    fresh = TimeoutTermination(60)
    load_condition(fresh, state)
    elapsed = time.monotonic() - fresh._start_time  # pyright: ignore[reportPrivateUsage]
    assert 29 < elapsed < 40


async def test_a_restored_timeout_past_its_limit_fires() -> None:
    condition = TimeoutTermination(5) | MaxMessageTermination(100)
    load_condition(
        condition,
        {
            "type": "OrTerminationCondition",
            "children": [
                {"type": "TimeoutTermination", "terminated": False, "elapsed_seconds": 10.0},
                {"type": "MaxMessageTermination", "message_count": 3},
            ],
        },
    )
    assert await condition([]) is not None
