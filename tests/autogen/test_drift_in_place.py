"""A drifted load migrates the loaded tree itself (no copy), and says precisely if it changed.

The core's migrations run in place on the state the load materialized
(``Registry.upgrade(..., owned=True)``): a handler sees that very tree, the transcript two
lists hold is not shared between them (an in-place edit applies once to each), nothing is
written, and :attr:`Loaded.migrated` is set only when the payload changed.
"""

# pyright: reportPrivateUsage=false

from __future__ import annotations

import json
from typing import Any

import pytest
from migration_support import TASK, agent, new_registry, round_robin, stop_after

from agent_persist import DriftPolicy, Registry
from agent_persist.stores import BaseStore
from autogen_persist import DurableTeam
from autogen_persist._layout import team_layout
from autogen_persist._load import Loaded, load_checkpoint
from autogen_persist._plugin import KIND_TEAM, register
from autogen_persist.drift import drift_config


def v1() -> Any:
    return round_robin(agent("writer"), agent("critic"))


def v2() -> Any:
    return round_robin(agent("writer", system="Be brief."), agent("critic"))


async def load(
    store: BaseStore, team: Any, registry: Registry, policy: DriftPolicy = DriftPolicy.MIGRATE
) -> Loaded:
    layout = team_layout(team)
    return await load_checkpoint(
        store,
        "t",
        kind=KIND_TEAM,
        registry=registry,
        config=drift_config(team, layout),
        layout=layout,
        policy=policy,
    )


async def snapshot(store: BaseStore) -> Any:
    checkpoints = await store.list_checkpoints("t")
    logs = {name: await store.read_log("t", name) for name in checkpoints[0].logs}
    return [c.model_dump() for c in checkpoints], logs


def manager_thread(payload: Any) -> list[Any]:
    return payload["team"]["agent_states"]["RoundRobinGroupChatManager"]["message_thread"]


@pytest.fixture
async def stopped(memory_store: BaseStore) -> BaseStore:
    await stop_after(memory_store, v1, 3)
    return memory_store


@pytest.fixture
async def finished(memory_store: BaseStore) -> BaseStore:
    await DurableTeam(v1, store=memory_store, thread_id="t").run(task=TASK)
    return memory_store


async def test_a_handler_edits_the_loaded_tree_itself_once_per_list(finished: BaseStore) -> None:
    stopped = finished
    registry = Registry()  # this handler first: before the built-in one (whose output is
    given: list[Any] = []  # checked, and unshared, by the core)

    @registry.on_fingerprint_change(KIND_TEAM, covers=["system message changed"])
    def exclaim(payload: Any, change: Any) -> Any:
        given.append(payload)
        for message in [*payload["output"], *manager_thread(payload)]:
            message["content"] += "!"  # not idempotent: shared items would get two
        return payload

    register(registry)
    before = await snapshot(stopped)
    plain = await load(stopped, v1(), registry)
    assert plain.refs["output"].digest == plain.refs["thread"].digest  # one transcript
    loaded = await load(stopped, v2(), registry)
    assert loaded.payload is given[0]  # no copy before, during or after the handler
    assert loaded.migrated is True
    assert loaded.head.metadata["drift"]["policy"] == "migrate"
    assert loaded.head.checkpoint_id == plain.head.checkpoint_id
    output, thread = loaded.payload["output"], manager_thread(loaded.payload)
    assert output == thread
    assert [m["content"] for m in output] == [m["content"] + "!" for m in plain.payload["output"]]
    assert output[0] is not thread[0]
    expected = json.loads(json.dumps(plain.payload))
    for message in [*expected["output"], *manager_thread(expected)]:
        message["content"] += "!"
    assert loaded.payload == expected
    assert await snapshot(stopped) == before  # nothing written, the store's data untouched
    assert (await load(stopped, v1(), registry)).payload == plain.payload


async def test_a_handler_that_changes_nothing_does_not_mark_the_load_migrated(
    stopped: BaseStore,
) -> None:
    registry = new_registry()  # its built-in handler covers a new system message, as is
    plain = await load(stopped, v1(), registry)
    loaded = await load(stopped, v2(), registry)
    assert loaded.migrated is False
    assert loaded.payload == plain.payload
    assert loaded.head.metadata["drift"]["changes"] == [
        "system message changed: writer ('You are writer.' -> 'Be brief.')"
    ]


async def test_accepted_drift_runs_nothing_and_is_not_migrated(stopped: BaseStore) -> None:
    registry = new_registry()
    ran: list[Any] = []
    registry.on_fingerprint_change(KIND_TEAM)(lambda payload, change: ran.append(1) or payload)
    plain = await load(stopped, v1(), registry)
    loaded = await load(stopped, v2(), registry, DriftPolicy.ACCEPT)
    assert ran == []
    assert loaded.migrated is False
    assert loaded.payload == plain.payload
    assert loaded.head.metadata["drift"]["policy"] == "accept"


async def test_a_team_resumes_from_a_migrated_load_and_checkpoints_the_change(
    stopped: BaseStore,
) -> None:
    registry = new_registry()

    @registry.on_fingerprint_change(KIND_TEAM, covers=["system message changed"])
    def reprime(payload: Any, change: Any) -> Any:
        state = payload["team"]["agent_states"]["writer"]["agent_state"]
        state["llm_context"]["messages"].append(
            {"type": "UserMessage", "source": "user", "content": "Be brief from now on."}
        )
        return payload

    result = await DurableTeam(v2, store=stopped, thread_id="t", registry=registry).run()
    assert result.stop_reason is not None
    head = await stopped.get("t")
    layout = team_layout(v2())
    reloaded = await load_checkpoint(
        stopped,
        "t",
        kind=KIND_TEAM,
        registry=registry,
        config=drift_config(v2(), layout),
        layout=layout,
        policy=DriftPolicy.STRICT,  # the configuration is now the saved one
    )
    writer = reloaded.payload["team"]["agent_states"]["writer"]["agent_state"]
    contents = [m["content"] for m in writer["llm_context"]["messages"]]
    assert contents.count("Be brief from now on.") == 1
    assert reloaded.head.checkpoint_id == head.checkpoint_id
    assert TASK in json.dumps(reloaded.payload)
