"""The built-in migrations: frozen before/after fixtures, and the run continuing in a new team.

Each test stops a thread mid-run with the "before" team (the frozen ``.before`` fixture is
that thread's materialized payload), loads it for the "after" team with the migration
declared (the result must equal the frozen ``.after`` fixture), then lets fresh objects of
the new team finish the run on the prompt-hash model, and checks the next checkpoint wrote
the migrated lists, not stale ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import pytest
from autogen_agentchat.base import Team
from autogen_agentchat.messages import BaseTextChatMessage
from autogen_core.models import UserMessage
from migration_support import (
    TASK,
    agent,
    customer_desk,
    find_customer,
    fixture,
    lookup_customer,
    materialized,
    new_registry,
    put_fixture,
    round_robin,
    selector,
    stop_after,
)
from support import same_result

from agent_persist import Change, DriftPolicy, Registry, open_store
from agent_persist.stores import BaseStore
from autogen_persist import KIND_TEAM, DurableTeam, load_team, migrations
from autogen_persist._layout import team_layout
from autogen_persist._load import load_checkpoint
from autogen_persist._transforms import change_team_type
from autogen_persist.drift import config_changes, drift_config


async def frozen_before(name: str, old: Callable[[], Team], checkpoints: int) -> Any:
    """The frozen ``<name>.before`` payload (made by running ``old`` when missing)."""
    async with open_store("memory://") as scratch:
        from migration_support import REGENERATE

        fresh: Any = None
        if REGENERATE:
            await stop_after(scratch, old, checkpoints)
            fresh = await materialized(scratch)
        return fixture(f"{name}.before", fresh)


async def migrate(
    name: str,
    store: BaseStore,
    old: Callable[[], Team],
    new: Callable[[], Team],
    registry: Registry,
    checkpoints: int = 3,
) -> dict[str, Any]:
    """Store the before fixture as written by ``old``; load it for ``new``; check the after."""
    before = await frozen_before(name, old, checkpoints)
    await put_fixture(store, old, before)
    team = new()
    loaded = await load_checkpoint(
        store,
        "t",
        kind=KIND_TEAM,
        registry=registry,
        config=drift_config(team, team_layout(team)),  # pyright: ignore[reportArgumentType]
        layout=team_layout(team),  # pyright: ignore[reportArgumentType]
        policy=DriftPolicy.MIGRATE,
    )
    assert loaded.migrated
    after = fixture(f"{name}.after", loaded.payload)
    assert loaded.payload == after, f"{name}: the migration's output changed"
    return after


def sources(payload: Any) -> set[str]:
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("source"), str):
                found.add(node["source"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(payload)
    return found


def tool_results(payload: Any, tool: str) -> set[str]:
    """The call ids of the stored results of ``tool``."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("name") == tool and "call_id" in node and "content" in node:
                found.add(node["call_id"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(payload)
    return found


def manager(payload: Any) -> dict[str, Any]:
    layout = payload["layout"]
    return payload["team"]["agent_states"][layout["manager"]]


async def finish(store: BaseStore, new: Callable[[], Team], registry: Registry) -> list[str]:
    """Resume thread ``t`` with fresh objects of ``new``; the speakers of the resumed turns."""
    result = await DurableTeam(new, store=store, thread_id="t", registry=registry).run()
    assert result.stop_reason is not None
    assert "Maximum number of messages" in result.stop_reason
    stored = await materialized(store)
    assert stored["layout"] == team_layout(new()).model_dump()  # pyright: ignore[reportArgumentType]
    return [m.source for m in result.messages]


async def test_rename_participant(memory_store: BaseStore) -> None:
    def old() -> Team:
        return round_robin(agent("writer"), agent("critic"))

    def new() -> Team:
        return round_robin(agent("author"), agent("critic"))

    registry = new_registry()
    migrations.rename_participant("writer", "author", registry=registry)
    after = await migrate("rename_participant", memory_store, old, new, registry)
    assert "writer" not in sources(after)
    assert set(after["team"]["agent_states"]) == {"author", "critic", "RoundRobinGroupChatManager"}
    speakers = await finish(memory_store, new, registry)
    assert set(speakers) == {"user", "author", "critic"}
    assert "writer" not in sources(await materialized(memory_store)), "no stale list kept"


@pytest.mark.parametrize("prime", [True, False])
async def test_add_participant(memory_store: BaseStore, prime: bool) -> None:
    def old() -> Team:
        return round_robin(agent("writer"), agent("critic"))

    def new() -> Team:
        return round_robin(agent("writer"), agent("editor"), agent("critic"))

    registry = new_registry()
    migrations.add_participant("editor", prime=prime, registry=registry)
    name = "add_participant" + ("_primed" if prime else "")
    before = await frozen_before(name, old, 3)
    next_before = before["layout"]["participants"][manager(before)["next_speaker_index"]]
    after = await migrate(name, memory_store, old, new, registry)
    editor = after["team"]["agent_states"]["editor"]
    thread = manager(after)["message_thread"]
    assert editor["message_buffer"] == (thread if prime else [])
    order = after["layout"]["participants"]
    assert order[manager(after)["next_speaker_index"]] == next_before, "same next speaker"
    speakers = await finish(memory_store, new, registry)
    assert speakers[len(thread)] == next_before
    context = (await materialized(memory_store))["team"]["agent_states"]["editor"]
    seen = [m.get("source") for m in context["agent_state"]["llm_context"]["messages"]]
    assert ("user" in seen) is prime, "a primed editor read the task; another did not"


async def test_remove_participant(memory_store: BaseStore) -> None:
    def old() -> Team:
        return round_robin(agent("writer"), agent("critic"), agent("editor"))

    def new() -> Team:
        return round_robin(agent("writer"), agent("editor"))

    registry = new_registry()
    migrations.remove_participant("critic", registry=registry)
    before = await frozen_before("remove_participant", old, 4)
    assert before["layout"]["participants"][manager(before)["next_speaker_index"]] == "critic"
    after = await migrate("remove_participant", memory_store, old, new, registry, 4)
    assert "critic" not in after["team"]["agent_states"]
    assert manager(after)["next_speaker_index"] == 1, "critic was next: editor, after it"
    speakers = await finish(memory_store, new, registry)
    assert speakers[len(manager(after)["message_thread"])] == "editor"


async def test_reorder_participants(memory_store: BaseStore) -> None:
    def old() -> Team:
        return round_robin(agent("writer"), agent("critic"), agent("editor"))

    def new() -> Team:
        return round_robin(agent("editor"), agent("writer"), agent("critic"))

    registry = new_registry()
    migrations.reorder_participants(registry=registry)
    before = await frozen_before("reorder_participants", old, 3)
    next_before = before["layout"]["participants"][manager(before)["next_speaker_index"]]
    after = await migrate("reorder_participants", memory_store, old, new, registry)
    assert after["layout"]["participants"][manager(after)["next_speaker_index"]] == next_before
    speakers = await finish(memory_store, new, registry)
    assert speakers[len(manager(after)["message_thread"])] == next_before, "same agent next"


async def test_round_robin_becomes_selector(memory_store: BaseStore) -> None:
    def old() -> Team:
        return round_robin(agent("writer"), agent("critic"))

    def new() -> Team:
        return selector(agent("writer"), agent("critic"))

    registry = new_registry()
    migrations.change_team_type(registry=registry)
    after = await migrate("round_robin_to_selector", memory_store, old, new, registry)
    state = after["team"]["agent_states"]["SelectorGroupChatManager"]
    assert state["type"] == "SelectorManagerState"
    assert state["previous_speaker"] == state["message_thread"][-1]["source"]
    assert "RoundRobinGroupChatManager" not in after["team"]["agent_states"]
    await finish(memory_store, new, registry)


def test_selector_becomes_round_robin_with_the_next_agent_after_the_last_speaker() -> None:
    payload = {
        "layout": {
            "team_type": "SelectorGroupChat",
            "manager": "SelectorGroupChatManager",
            "participants": ["a", "b", "c"],
        },
        "team": {
            "agent_states": {
                "SelectorGroupChatManager": {
                    "type": "SelectorManagerState",
                    "message_thread": [],
                    "current_turn": 2,
                    "previous_speaker": "b",
                }
            }
        },
    }
    converted = change_team_type(payload, "RoundRobinGroupChat")
    assert converted["team"]["agent_states"]["RoundRobinGroupChatManager"] == {
        "type": "RoundRobinManagerState",
        "version": "1.0.0",
        "message_thread": [],
        "current_turn": 2,
        "next_speaker_index": 2,
    }


async def test_replace_initial_messages(memory_store: BaseStore) -> None:
    old_shots = [UserMessage(content="Example: a haiku has 17 syllables.", source="user")]
    new_shots = [UserMessage(content="Example: a haiku is 5-7-5.", source="user")]

    def old() -> Team:
        return round_robin(agent("writer", initial=old_shots), agent("critic"))

    def new() -> Team:
        return round_robin(agent("writer", initial=new_shots), agent("critic"))

    registry = new_registry()
    migrations.replace_initial_messages("writer", registry=registry)
    after = await migrate("replace_initial_messages", memory_store, old, new, registry)
    messages = after["team"]["agent_states"]["writer"]["agent_state"]["llm_context"]["messages"]
    assert messages[0]["content"] == "Example: a haiku is 5-7-5."
    assert "17 syllables" not in json.dumps(after)
    await finish(memory_store, new, registry)
    stored = await materialized(memory_store)
    assert "17 syllables" not in json.dumps(stored["team"]), "no stale context kept"


async def test_rename_tool(memory_store: BaseStore) -> None:
    def old() -> Team:
        return round_robin(agent("writer", tool="lookup", tool_every=1), agent("critic"))

    def new() -> Team:
        return round_robin(agent("writer", tool="find_city", tool_every=1), agent("critic"))

    registry = new_registry()
    migrations.rename_tool("lookup", "find_city", registry=registry)
    before = await frozen_before("rename_tool", old, 3)
    assert '"name": "lookup"' in json.dumps(before)
    after = await migrate("rename_tool", memory_store, old, new, registry)
    assert '"name": "lookup"' not in json.dumps(after)
    assert '"name": "find_city"' in json.dumps(after)
    await finish(memory_store, new, registry)
    assert '"name": "lookup"' not in json.dumps(await materialized(memory_store))


async def test_rename_tool_covers_the_renamed_python_function(memory_store: BaseStore) -> None:
    """The function itself renamed (``def find_customer``), not only ``FunctionTool(name=)``."""
    registry = new_registry()
    migrations.rename_tool("lookup_customer", "find_customer", registry=registry)
    old, new = customer_desk(lookup_customer), customer_desk(find_customer)
    assert config_changes(
        drift_config(old, team_layout(old)),  # pyright: ignore[reportArgumentType]
        drift_config(new, team_layout(new)),  # pyright: ignore[reportArgumentType]
        renames=registry.renames(KIND_TEAM),
    ) == [Change("tool renamed", "writer", "lookup_customer", "find_customer")]

    before = await frozen_before("rename_tool_function", lambda: customer_desk(lookup_customer), 3)
    assert '"name": "lookup_customer"' in json.dumps(before)
    after = await migrate(
        "rename_tool_function",
        memory_store,
        lambda: customer_desk(lookup_customer),
        lambda: customer_desk(find_customer),
        registry,
    )
    assert '"name": "lookup_customer"' not in json.dumps(after)
    assert '"name": "find_customer"' in json.dumps(after)
    await finish(memory_store, lambda: customer_desk(find_customer), registry)
    stored = await materialized(memory_store)
    assert '"name": "lookup_customer"' not in json.dumps(stored)
    assert tool_results(stored, "find_customer") > tool_results(after, "find_customer"), (
        "the renamed function ran in the resumed turns"
    )


class Note(BaseTextChatMessage):
    """A custom message type, as first named."""

    type: Literal["Note"] = "Note"


class Memo(BaseTextChatMessage):
    """The same message type, renamed."""

    type: Literal["Memo"] = "Memo"


async def test_rename_message_type(memory_store: BaseStore) -> None:
    from autogen_agentchat.conditions import MaxMessageTermination
    from autogen_agentchat.teams import RoundRobinGroupChat

    def team(kind: type[BaseTextChatMessage]) -> Team:
        return RoundRobinGroupChat(
            [agent("writer"), agent("critic")],
            termination_condition=MaxMessageTermination(8),
            custom_message_types=[kind],
        )

    async with open_store("memory://") as scratch:
        first = DurableTeam(lambda: team(Note), store=scratch, thread_id="t")
        await first.run(task=[Note(content=TASK, source="user")])
        before = fixture("rename_message_type.before", await materialized(scratch))
    await put_fixture(memory_store, lambda: team(Note), before)
    with pytest.raises(Exception, match="Unknown message type"):
        await DurableTeam(lambda: team(Memo), store=memory_store, thread_id="t").run(task="more")

    registry = new_registry()
    migrations.rename_message_type("Note", "Memo", registry=registry)
    fresh = team(Memo)
    loaded = await load_checkpoint(
        memory_store,
        "t",
        kind=KIND_TEAM,
        registry=registry,
        config=drift_config(fresh, team_layout(fresh)),  # pyright: ignore[reportArgumentType]
        layout=team_layout(fresh),  # pyright: ignore[reportArgumentType]
        policy=DriftPolicy.MIGRATE,
    )
    assert loaded.changes == [], "a message type is not part of the configuration"
    after = fixture("rename_message_type.after", loaded.payload)
    assert loaded.payload == after
    renamed = DurableTeam(lambda: team(Memo), store=memory_store, thread_id="t", registry=registry)
    result = await renamed.run(task="And another?")
    assert result.stop_reason is not None
    stored = json.dumps(await materialized(memory_store))
    assert '"type": "Note"' not in stored
    assert '"type": "Memo"' in stored


async def test_state_from_before_0_4_9_is_rekeyed_on_adoption(memory_store: BaseStore) -> None:
    def build() -> Team:
        return round_robin(agent("writer"), agent("critic"), limit=8)

    plain = build()
    await plain.run(task=TASK)
    state = json.loads(json.dumps(await plain.save_state()))
    team_id = "9f0c2a6e-0000-4000-8000-000000000001"
    names = {"RoundRobinGroupChatManager": "group_chat_manager"}
    legacy = {
        "type": "TeamState",
        "version": "1.0.0",
        "team_id": team_id,
        "agent_states": {
            f"{names.get(k, k)}_{team_id}/{team_id}": v for k, v in state["agent_states"].items()
        },
    }
    raw = fixture("legacy_0_4_8.before", legacy)
    registry = new_registry()
    adopted = registry.upgrade(registry.adopt(raw, thread_id="t"))
    assert fixture("legacy_0_4_8.after", adopted.payload) == adopted.payload
    assert set(adopted.payload["team"]["agent_states"]) == {
        "writer",
        "critic",
        "RoundRobinGroupChatManager",
    }
    assert "team_id" not in adopted.payload["team"]
    await memory_store.put(adopted)
    fresh = build()
    await load_team(memory_store, "t", fresh, registry=registry)
    result = await fresh.run(task="One more, about winter.")
    assert same_result(result, await plain.run(task="One more, about winter.")), "exact resume"


def test_declaring_a_migration_again_installs_it_once() -> None:
    """A team factory that declares its migrations on every build must not stack them."""
    registry = Registry()
    for _ in range(3):
        first = migrations.rename_participant("writer", "author", registry=registry)
        added = migrations.add_participant("editor", prime=True, registry=registry)
    assert migrations.rename_participant("writer", "author", registry=registry) is first
    assert migrations.add_participant("editor", prime=True, registry=registry) is added
    handlers = registry._kinds[KIND_TEAM].fingerprint_handlers  # pyright: ignore[reportPrivateUsage]
    names = [h.function.__name__ for h in handlers]
    assert names.count("rename_participant('writer', 'author')") == 1
    assert names.count("add_participant('editor', prime=True)") == 1
    with pytest.raises(ValueError, match="already declared"):
        migrations.rename_participant("writer", "editor", registry=registry)
