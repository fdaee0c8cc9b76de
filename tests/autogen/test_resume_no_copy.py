"""Resume without a whole-state copy, and log digests checked in O(new items) per load.

The loaded state is built from freshly decoded store data, so mutating it (AutoGen's
``load_state`` resets the turn count in place; a user may edit what ``state()`` returns)
can corrupt neither the stored data nor a later load. The digests of the logs are verified
once per open store and then only for the items added since. A transcript two logs hold
(the runs' output and the manager's thread) is read and verified once per load.
"""

# pyright: reportPrivateUsage=false

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from scenarios import TASK, round_robin_max

import autogen_persist._logs as logs_module
from agent_persist import DriftPolicy, Registry, default_registry
from agent_persist.errors import CorruptCheckpointError
from agent_persist.stores import BaseStore
from autogen_persist import DurableTeam, load_team
from autogen_persist._layout import team_layout
from autogen_persist._load import load_checkpoint
from autogen_persist._plugin import KIND_TEAM, ensure_registered
from autogen_persist.drift import drift_config
from autogen_persist.migrations import rename_message_type


async def _snapshot(store: BaseStore, thread_id: str) -> Any:
    checkpoints = await store.list_checkpoints(thread_id)
    names = {name for c in checkpoints for name in c.logs}
    logs = {name: await store.read_log(thread_id, name) for name in sorted(names)}
    return [c.model_dump() for c in checkpoints], logs


def _scramble(tree: Any) -> None:
    """Mutate every object and list of ``tree`` in place."""
    if isinstance(tree, dict):
        node: dict[str, Any] = tree  # pyright: ignore[reportUnknownVariableType]
        for value in list(node.values()):
            _scramble(value)
        node["scrambled"] = True
        if "content" in node:
            node["content"] = "tampered"
    elif isinstance(tree, list):
        items: list[Any] = tree  # pyright: ignore[reportUnknownVariableType]
        for value in items:
            _scramble(value)
        items.append("extra")


class _ReadSpy:
    """Records the logs each ``read_logs`` call of a store asks for."""

    def __init__(self, store: BaseStore) -> None:
        self.asked: list[set[str]] = []
        self.original = store.read_logs

    async def __call__(self, thread_id: str, logs: Any, *, at: Any) -> dict[str, list[Any]]:
        self.asked.append(set(logs))
        return await self.original(thread_id, logs, at=at)


def _manager_thread(payload: dict[str, Any]) -> list[Any]:
    return payload["team"]["agent_states"]["RoundRobinGroupChatManager"]["message_thread"]


async def _load(store: BaseStore, thread_id: str, registry: Registry | None = None) -> Any:
    team = round_robin_max()
    layout = team_layout(team)  # pyright: ignore[reportArgumentType]
    return await load_checkpoint(
        store,
        thread_id,
        kind=KIND_TEAM,
        registry=ensure_registered(registry or default_registry()),
        config=drift_config(team, layout),  # pyright: ignore[reportArgumentType]
        layout=layout,
        policy=DriftPolicy.MIGRATE,
    )


@pytest.fixture
async def saved(memory_store: BaseStore) -> BaseStore:
    await DurableTeam(round_robin_max, store=memory_store, thread_id="t").run(task=TASK)
    return memory_store


async def test_mutating_a_loaded_payload_corrupts_nothing(saved: BaseStore) -> None:
    before = await _snapshot(saved, "t")
    first = await _load(saved, "t")
    pristine = json.dumps(first.payload, sort_keys=True)
    assert first.migrated is False
    _scramble(first.payload)
    assert json.dumps(first.payload, sort_keys=True) != pristine
    second = await _load(saved, "t")
    assert json.dumps(second.payload, sort_keys=True) == pristine
    assert second.payload["team"] is not first.payload["team"]
    assert await _snapshot(saved, "t") == before


async def test_mutating_a_returned_state_corrupts_nothing(saved: BaseStore) -> None:
    team = DurableTeam(round_robin_max, store=saved, thread_id="t")
    before = await _snapshot(saved, "t")
    state = await team.state()
    pristine = json.dumps(state, sort_keys=True)
    _scramble(state)
    assert json.dumps(await team.state(), sort_keys=True) == pristine
    loaded_into = round_robin_max()
    await load_team(saved, "t", loaded_into)
    assert json.dumps(await loaded_into.save_state(), sort_keys=True) == pristine
    await DurableTeam(round_robin_max, store=saved, thread_id="t").run(task=TASK)
    after = await _snapshot(saved, "t")
    assert after[0][-len(before[0]) :] == before[0]  # the old checkpoints are unchanged
    for name, items in before[1].items():
        assert after[1][name][: len(items)] == items  # old log items too


async def test_a_renaming_migration_marks_the_load_migrated_without_touching_the_store(
    saved: BaseStore,
) -> None:
    registry = ensure_registered(Registry())
    before = await _snapshot(saved, "t")
    assert (await _load(saved, "t", registry)).migrated is False
    rename_message_type("TextMessage", "RenamedText", registry=registry)
    loaded = await _load(saved, "t", registry)
    assert loaded.migrated is True
    assert "RenamedText" in json.dumps(loaded.payload)
    assert await _snapshot(saved, "t") == before
    assert "RenamedText" not in json.dumps(await _snapshot(saved, "t"), default=str)


class _Counter:
    def __init__(self) -> None:
        self.hashed = 0
        self.original = logs_module.chain_digest

    def __call__(self, digest: str, items: Sequence[Any]) -> str:
        self.hashed += len(items)
        return self.original(digest, items)


async def test_a_second_load_hashes_only_new_items(
    saved: BaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = _Counter()
    monkeypatch.setattr(logs_module, "chain_digest", counter)
    await _load(saved, "t")
    warm = counter.hashed
    counter.hashed = 0
    await _load(saved, "t")
    assert counter.hashed == 0 < warm


async def test_a_wrong_digest_is_caught_after_a_verified_load(saved: BaseStore) -> None:
    await _load(saved, "t")  # the chains are now known to this store
    head = await saved.get("t")
    payload = head.payload
    thread = payload["team"]["agent_states"]["RoundRobinGroupChatManager"]["message_thread"]
    thread["digest"] = "0" * 32
    await saved.put(head.next(payload=payload))
    with pytest.raises(CorruptCheckpointError, match="does not hold"):
        await _load(saved, "t")


async def test_a_recreated_thread_with_other_items_loads(saved: BaseStore) -> None:
    await _load(saved, "t")
    await saved.delete_thread("t")
    other = DurableTeam(round_robin_max, store=saved, thread_id="t")
    await other.run(task="Something else entirely.")
    loaded = await _load(saved, "t")
    assert "Something else entirely." in json.dumps(loaded.payload)


async def test_a_transcript_two_logs_hold_is_read_once(
    saved: BaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _ReadSpy(saved)
    monkeypatch.setattr(saved, "read_logs", spy)
    head = await saved.get("t")
    refs = logs_module.find_refs(head.payload)
    assert refs["output"].digest == refs["thread"].digest  # the same 13 messages
    loaded = await _load(saved, "t")
    assert len(spy.asked) == 1
    assert len({"output", "thread"} & spy.asked[0]) == 1
    assert "critic/context" in spy.asked[0]
    output, thread = loaded.payload["output"], _manager_thread(loaded.payload)
    assert output == thread == await saved.read_log("t", "output")
    assert output is not thread  # each list its own: AutoGen may keep or extend one


async def test_a_shared_transcript_with_a_wrong_digest_is_corrupt(saved: BaseStore) -> None:
    await _load(saved, "t")
    head = await saved.get("t")
    payload = head.payload
    payload["output"]["digest"] = _manager_thread(payload)["digest"] = "0" * 32
    await saved.put(head.next(payload=payload))
    with pytest.raises(CorruptCheckpointError, match="does not hold"):
        await _load(saved, "t")


async def test_a_resumed_team_continues_a_shared_transcript(saved: BaseStore) -> None:
    """The output and thread loaded from one read grow apart safely on the next run."""
    await DurableTeam(round_robin_max, store=saved, thread_id="t").run(task="And Porto?")
    head = await saved.get("t")
    refs = logs_module.find_refs(head.payload)
    loaded = await _load(saved, "t")
    assert refs["output"].length == refs["thread"].length == 26
    assert loaded.payload["output"] == await saved.read_log("t", "output")
    assert _manager_thread(loaded.payload) == await saved.read_log(
        "t", "thread", start=refs["thread"].start
    )
