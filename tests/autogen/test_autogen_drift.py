"""Drift detection on every load: what changed, what each policy does, and bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import Team
from autogen_core.models import UserMessage
from autogen_core.tools import FunctionTool
from migration_support import (
    TASK,
    agent,
    customer_desk,
    find_customer,
    lookup,
    lookup_customer,
    materialized,
    new_registry,
    round_robin,
    stop_after,
)

from agent_persist import Change, DriftPolicy
from agent_persist.drift import CONFIG_LOG
from agent_persist.errors import ConfigDriftError, MigrationFailedError
from agent_persist.stores import BaseStore
from autogen_persist import DurableAgent, DurableTeam, durable, load_team, migrations
from autogen_persist._layout import team_layout
from autogen_persist._source import only_function_renamed
from autogen_persist.drift import config_changes, drift_config
from autogen_persist.errors import MigrationInputError, ParticipantsMismatchError
from autogen_persist.testing import HashChatCompletionClient


def v1() -> Team:
    return round_robin(agent("writer"), agent("critic"))


def config(team: Team, **renames: list[tuple[str, str]]) -> list[Change]:
    return config_changes(
        drift_config(v1(), team_layout(v1())),  # pyright: ignore[reportArgumentType]
        drift_config(team, team_layout(team)),  # pyright: ignore[reportArgumentType]
        renames=renames,
    )


async def snapshot(store: BaseStore) -> Any:
    """Everything stored for thread ``t``: checkpoints and every log, to compare."""
    checkpoints = await store.list_checkpoints("t")
    logs = {name: await store.read_log("t", name) for name in checkpoints[0].logs}
    return [c.model_dump() for c in checkpoints], logs


@pytest.fixture
async def stopped(memory_store: BaseStore) -> BaseStore:
    await stop_after(memory_store, v1, 3)
    return memory_store


def test_each_category_is_named() -> None:
    shots = [UserMessage(content="e.g.", source="user")]
    changed = round_robin(
        agent("writer", system="Be brief.", tool="lookup", initial=shots),
        agent("editor"),
        limit=20,
    )
    found = {(c.what, c.subject) for c in config(changed)}
    assert found == {
        ("system message changed", "writer"),
        ("tool added", "writer"),
        ("initial messages changed", "writer"),
        ("participant removed", "critic"),
        ("participant added", "editor"),
        ("setting changed", "$.config.termination_condition.config.max_messages"),
    }


def test_a_rename_is_a_rename_only_when_declared() -> None:
    renamed = round_robin(agent("critic"), agent("author"))
    undeclared = {c.what for c in config(renamed)}
    assert "participant renamed" not in undeclared
    assert {"participant removed", "participant added"} <= undeclared
    declared = config(renamed, participant=[("writer", "author")])
    assert Change("participant renamed", "writer", "writer", "author") in declared
    reorder = [c for c in declared if c.what == "participants reordered"]
    assert reorder == [
        Change("participants reordered", "participants", ["author", "critic"], ["critic", "author"])
    ]


async def test_the_config_is_appended_only_when_the_fingerprint_changes(
    stopped: BaseStore,
) -> None:
    assert await stopped.log_length("t", CONFIG_LOG) == 1, "one item for several checkpoints"
    await DurableTeam(v1, store=stopped, thread_id="t").run()
    assert await stopped.log_length("t", CONFIG_LOG) == 1

    def v2() -> Team:
        return round_robin(agent("writer", system="Be brief."), agent("critic"))

    await DurableTeam(v2, store=stopped, thread_id="t").run(task="again")
    assert await stopped.log_length("t", CONFIG_LOG) == 2
    head = await stopped.get("t")
    assert head.metadata["drift"]["changes"] == [
        "system message changed: writer ('You are writer.' -> 'Be brief.')"
    ]


async def test_a_new_system_message_and_model_load_by_default_but_not_strictly(
    stopped: BaseStore,
) -> None:
    def v2() -> Team:
        return round_robin(agent("writer", system="Be brief."), agent("critic", tool="lookup"))

    before = await snapshot(stopped)
    with pytest.raises(ConfigDriftError, match=r"strict policy\):\n  - system message changed"):
        await DurableTeam(v2, store=stopped, thread_id="t", drift="strict").run()
    with pytest.raises(ConfigDriftError, match="tool added: critic"):
        await load_team(stopped, "t", v2(), drift=DriftPolicy.STRICT)
    assert await snapshot(stopped) == before
    result = await durable(store=stopped)(v2)(thread_id="t").run()
    assert result.stop_reason is not None


async def test_an_uncovered_setting_is_refused_accepted_or_declared(stopped: BaseStore) -> None:
    def v2() -> Team:
        return round_robin(agent("writer"), agent("critic"), limit=14)

    before = await snapshot(stopped)
    with pytest.raises(ConfigDriftError, match=r"setting changed: \$\.config\.termination"):
        await DurableTeam(v2, store=stopped, thread_id="t").run()
    assert await snapshot(stopped) == before
    await load_team(stopped, "t", v2(), drift="accept")
    registry = new_registry()
    migrations.accept_changes("setting changed", registry=registry)
    result = await DurableTeam(v2, store=stopped, thread_id="t", registry=registry).run()
    assert result.stop_reason == "Maximum number of messages 14 reached, current message count: 14"


async def test_layout_changes_need_a_migration_even_when_accepted(stopped: BaseStore) -> None:
    def v2() -> Team:
        return round_robin(agent("writer"), agent("critic"), agent("editor"))

    with pytest.raises(ParticipantsMismatchError, match="new participants") as raised:
        await DurableTeam(v2, store=stopped, thread_id="t").run()
    assert Change("participant added", "editor") in raised.value.changes
    assert isinstance(raised.value, ConfigDriftError)
    with pytest.raises(ParticipantsMismatchError, match="new participants") as accepted:
        await load_team(stopped, "t", v2(), drift="accept")
    assert accepted.value.changes == [Change("participant added", "editor")]


def test_an_unknown_policy_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"drift must be one of .*, got 'lenient'"):
        DurableTeam(v1, store="memory://", thread_id="t", drift="lenient")


async def test_renaming_an_agent_the_state_does_not_hold_changes_nothing(
    stopped: BaseStore,
) -> None:
    def v2() -> Team:
        return round_robin(agent("author"), agent("critic"))

    registry = new_registry()
    migrations.rename_participant("ghost", "author", registry=registry)
    migrations.remove_participant("writer", registry=registry)
    before = await snapshot(stopped)
    with pytest.raises(MigrationFailedError, match="participant 'ghost' is not in the stored") as e:
        await DurableTeam(v2, store=stopped, thread_id="t", registry=registry).run()
    assert isinstance(e.value.__cause__, MigrationInputError)
    assert await snapshot(stopped) == before


async def test_a_migration_that_raises_changes_nothing(stopped: BaseStore) -> None:
    def v2() -> Team:
        return round_robin(agent("writer", system="Be brief."), agent("critic"))

    registry = new_registry()

    @registry.on_fingerprint_change("autogen.team", covers=["system message changed"])
    def broken(payload: Any, change: Any) -> Any:
        payload["team"]["agent_states"]["writer"]["agent_state"]["llm_context"] = None
        raise RuntimeError("boom")

    before = await snapshot(stopped)
    with pytest.raises(MigrationFailedError, match=r"'broken' of kind 'autogen\.team' raised"):
        await DurableTeam(v2, store=stopped, thread_id="t", registry=registry).run()
    with pytest.raises(MigrationFailedError):
        await load_team(stopped, "t", v2(), registry=registry)
    assert await snapshot(stopped) == before
    assert (await DurableTeam(v1, store=stopped, thread_id="t").run(task=TASK)).stop_reason


async def test_a_user_migration_reprimes_the_conversation(stopped: BaseStore) -> None:
    """The README's example: the system prompt changed, tell every agent once."""

    def v2() -> Team:
        return round_robin(agent("writer", system="Answer in French."), agent("critic"))

    registry = new_registry()

    @registry.on_fingerprint_change("autogen.team", covers=["system message changed"])
    def reprime(payload: Any, change: Any) -> Any:
        note = {"type": "UserMessage", "source": "user", "content": "New instructions apply."}
        for changed in change.changes:
            if changed.what == "system message changed":
                state = payload["team"]["agent_states"][changed.subject]["agent_state"]
                state["llm_context"]["messages"].append(note)
        return payload

    await DurableTeam(v2, store=stopped, thread_id="t", registry=registry).run()
    stored = await materialized(stopped)
    writer = stored["team"]["agent_states"]["writer"]["agent_state"]["llm_context"]["messages"]
    assert sum(m["content"] == "New instructions apply." for m in writer) == 1


async def test_a_durable_agent_migrates_a_renamed_tool_and_a_new_prompt(
    memory_store: BaseStore,
) -> None:
    def helper(tool: str, system: str) -> AssistantAgent:
        return AssistantAgent(
            "helper",
            model_client=HashChatCompletionClient(name="helper", tool_every=1),
            tools=[FunctionTool(lookup, description="Look up.", name=tool)],
            system_message=system,
            reflect_on_tool_use=True,
        )

    await DurableAgent(lambda: helper("lookup", "Help."), store=memory_store, thread_id="t").run(
        task="Weather in Lisbon?"
    )
    registry = new_registry()
    migrations.rename_tool("lookup", "find_city", registry=registry)

    def v2() -> AssistantAgent:
        return helper("find_city", "Help briefly.")

    before = await snapshot(memory_store)
    with pytest.raises(ConfigDriftError, match="tool removed: helper"):
        await DurableAgent(v2, store=memory_store, thread_id="t").run(task="And Porto?")
    assert await snapshot(memory_store) == before
    agent = DurableAgent(v2, store=memory_store, thread_id="t", registry=registry)
    result = await agent.run(task="And Porto?")
    assert result.messages[-1].source == "helper"
    stored = await agent.state()
    names = {
        call["name"]
        for message in stored["llm_context"]["messages"]
        if isinstance(message["content"], list)
        for call in message["content"]
        if isinstance(call, dict) and "name" in call
    }
    assert names == {"find_city"}


def edited_find_customer() -> Callable[[str], str]:
    """``find_customer`` with a new body: renamed, and changed."""

    def find_customer(customer: str) -> str:
        """Find a customer's account."""
        return f"{customer}: platinum tier"

    return find_customer


async def test_a_renamed_function_needs_its_declaration_which_covers_no_body_edit(
    memory_store: BaseStore,
) -> None:
    await stop_after(memory_store, lambda: customer_desk(lookup_customer), 3)
    before = await snapshot(memory_store)

    def renamed() -> Team:
        return customer_desk(find_customer)

    def edited() -> Team:
        return customer_desk(edited_find_customer())

    with pytest.raises(ConfigDriftError, match="tool removed: writer") as undeclared:
        await DurableTeam(renamed, store=memory_store, thread_id="t", registry=new_registry()).run()
    assert "source_code" not in str(undeclared.value), "a removed tool's source is no change"
    registry = new_registry()
    migrations.rename_tool("lookup_customer", "find_customer", registry=registry)
    source = r"setting changed: \$\.participants\.writer\.tools\.find_customer\.config\.source_code"
    with pytest.raises(ConfigDriftError, match=source) as edit:
        await DurableTeam(edited, store=memory_store, thread_id="t", registry=registry).run()
    assert [c.what for c in edit.value.changes] == ["setting changed"], "the rename is covered"
    assert await snapshot(memory_store) == before
    migrations.accept_changes("setting changed", registry=registry)
    result = await DurableTeam(edited, store=memory_store, thread_id="t", registry=registry).run()
    assert result.stop_reason is not None
    assert "platinum tier" in json.dumps(await materialized(memory_store))


def test_a_tool_rename_covers_its_function_renamed_whatever_the_names() -> None:
    def desk(function: Callable[[str], str], name: str) -> Any:
        writer = AssistantAgent(
            "writer",
            model_client=HashChatCompletionClient(name="writer"),
            tools=[FunctionTool(function, description="Find.", name=name)],
        )
        team = round_robin(writer, agent("critic"))
        return drift_config(team, team_layout(team))  # pyright: ignore[reportArgumentType]

    old = desk(lookup_customer, "lookup")
    declared = {"tool": [("lookup", "find")]}
    assert config_changes(old, desk(find_customer, "find"), renames=declared) == [
        Change("tool renamed", "writer", "lookup", "find")
    ]
    assert config_changes(old, desk(find_customer, "lookup"), renames=declared) == [
        Change("setting changed", "$.participants.writer.tools.lookup.config.source_code")
    ], "a function renamed behind the same tool name is no tool rename"


RENAMED = "def find_customer(customer: str) -> str:\n    return customer.upper()\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("def lookup_customer(customer: str) -> str:\n    return customer.upper()\n", RENAMED),
        (
            'async def lookup(c):  # lookup\n    """lookup_customer: finds c."""\n    return c\n',
            'async def find(c):  # lookup\n    """lookup_customer: finds c."""\n    return c\n',
        ),
        (
            "@cache\n@trace\ndef lookup(c):\n    return c\n",
            "@cache\n@trace\ndef find(c):\n    return c\n",
        ),
    ],
)
def test_a_source_differing_only_by_its_def_name_is_a_rename(before: str, after: str) -> None:
    assert only_function_renamed(before, after)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("def lookup_customer(customer: str) -> str:\n    return customer\n", RENAMED),
        (
            "def lookup_customer(customer: str) -> str:\n    return customer.upper()  # up\n",
            RENAMED,
        ),
        ("def lookup_customer(customer: str) -> str:\n  return customer.upper()\n", RENAMED),
        ("def find_customer(customer: str) -> str:\n    return customer.upper()\n", RENAMED),
        (
            'def lookup(c):\n    """Find c."""\n    return c\n',
            'def find(c):\n    """Find it."""\n    return c\n',
        ),
        # recursion: the new name, or the old one, in the body changes what the code calls
        ("def lookup(n):\n    return lookup(n - 1)\n", "def find(n):\n    return find(n - 1)\n"),
        ("def lookup(n):\n    return lookup(n - 1)\n", "def find(n):\n    return lookup(n - 1)\n"),
        ("def lookup(n):\n    return find(n)\n", "def find(n):\n    return find(n)\n"),
        ("def lookup(c):\n    return c.lookup\n", "def find(c):\n    return c.lookup\n"),
        # only the function's own def: a nested function renamed is a body change
        ("def f():\n    def g():\n        pass\n", "def f():\n    def h():\n        pass\n"),
        ("lookup = lambda c: c\n", "find = lambda c: c\n"),
        ("def lookup(c:\n", "def find(c:\n"),
        (None, RENAMED),
        (RENAMED, 1),
    ],
)
def test_any_other_source_change_is_not_a_rename(before: Any, after: Any) -> None:
    assert not only_function_renamed(before, after)
