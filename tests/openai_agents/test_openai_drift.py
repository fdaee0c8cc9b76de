"""Drift policies on saved runs, the categories of changes, and bad input left untouched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, ModelSettings, Runner, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.tool import FunctionTool
from drift_graphs import fresh, graph, needs_fixture_schema, renamed_graph, saved_envelope
from oa_support import Backend

from agent_persist import BaseStore, Change, config_appends
from agent_persist.errors import (
    ConfigDriftError,
    FutureVersionError,
    MigrationFailedError,
)
from openai_agents_persist import (
    ITEM_FORMATS,
    ITEMS_LOG,
    RUN_STATE_KIND,
    FutureItemFormatError,
    ItemFormats,
    MissingAgentError,
    StoreSession,
    UnknownRenameError,
    agent_config,
    config_changes,
    durable,
    load_run_state,
    rename_agent,
    rename_tool,
    save_run_state,
)

SAVED = json.loads(
    (
        Path(__file__).parent.parent / "fixtures/openai_agents/run_state_tool_renamed.json"
    ).read_text()
)


async def seed(store: BaseStore, formats: ItemFormats | None = None) -> StoreSession:
    await store.append("s", ITEMS_LOG, SAVED["items"])
    session = StoreSession("s", store=store, item_formats=formats or ITEM_FORMATS.copy())
    config = config_appends(None, fingerprint=SAVED["fingerprint"], config=SAVED["config"])
    await session.put(saved_envelope(SAVED, "s"), logs=config)
    return session


async def snapshot(store: BaseStore) -> tuple[Any, ...]:
    head = await store.get("s")
    return (
        await store.read_log("s", ITEMS_LOG),
        await store.read_log("s", "config"),
        head.model_dump(mode="json"),
        len(await store.list_checkpoints("s")),
    )


def resumed(**changes: Any) -> Any:
    """The saving graph, resuming, with ``ops`` changed as given."""
    triage, worker = graph(saving=False)
    for name, value in changes.items():
        setattr(worker, name, value)
    return triage


def test_config_changes_name_each_category() -> None:
    old = agent_config(graph()[0])
    triage, worker = graph(ops="operations", delete="remove_file")
    worker.instructions = "be brave"
    worker.model = "gpt-test"
    worker.model_settings = ModelSettings(temperature=0.5)
    tool = worker.tools[1]
    assert isinstance(tool, FunctionTool)
    tool.description = "List every file."
    triage.handoffs = [*triage.handoffs, graph(ops="audit")[1]]
    new = agent_config(triage)
    changes = config_changes(
        old, new, agents=[("ops", "operations")], tools=[("delete_file", "remove_file")]
    )
    assert [c.what for c in changes] == [
        "agent renamed",
        "agent added",
        "instructions changed",
        "model changed",
        "model settings changed",
        "tool renamed",
        "handoffs changed",
        "setting changed",
    ]
    assert changes[0] == Change("agent renamed", "ops", old="ops", new="operations")
    assert changes[1].subject == "audit"
    assert changes[6] == Change(
        "handoffs changed", "triage", old=["ops"], new=["operations", "audit"]
    )
    assert changes[5] == Change(
        "tool renamed", "operations.delete_file", old="delete_file", new="remove_file"
    )
    assert changes[7].subject == "$.operations.tools.list_files.description"
    undeclared = [str(c) for c in config_changes(old, new)]
    assert "agent removed: ops" in undeclared
    assert "agent added: operations" in undeclared
    assert config_changes(old, old) == []


@needs_fixture_schema
async def test_migrate_loads_changes_that_need_no_state_change(backend: Backend) -> None:
    async with backend.open() as store:
        session = await seed(store)
        triage = resumed(instructions="be brave", model_settings=ModelSettings(temperature=0.2))
        with pytest.raises(ConfigDriftError) as refused:
            await load_run_state(session, triage, registry=fresh()[0], drift="strict")
        assert [c.what for c in refused.value.changes] == [
            "instructions changed",
            "model settings changed",
        ]
        state = await load_run_state(session, triage, registry=fresh()[0])
        assert state is not None
        for item in state.get_interruptions():
            state.approve(item)
        result = await Runner.run(triage, state, session=session)
        assert result.final_output == "done"


@needs_fixture_schema
async def test_uncovered_changes_refuse_and_accept_loads(backend: Backend) -> None:
    async with backend.open() as store:
        session = await seed(store)
        before = await snapshot(store)
        triage, worker = graph(saving=False)
        tool = worker.tools[0]
        assert isinstance(tool, FunctionTool)
        tool.description = "Delete a file for good."
        with pytest.raises(ConfigDriftError, match=r"\$\.ops\.tools\.delete_file\.description"):
            await load_run_state(session, triage, registry=fresh()[0])
        state = await load_run_state(session, triage, registry=fresh()[0], drift="accept")
        assert state is not None
        assert await snapshot(store) == before
        with pytest.raises(ValueError, match="drift must be one of"):
            await load_run_state(session, triage, drift="lenient")


@needs_fixture_schema
async def test_decorator_resumes_under_its_drift_policy(backend: Backend) -> None:
    async with backend.open() as store:
        await seed(store)
        triage = resumed(instructions="be brave")

        async def run(session: StoreSession, user_input: Any) -> Any:
            return await Runner.run(triage, user_input, session=session)

        strict = durable(store=store, agent=triage, registry=fresh()[0], drift="strict")
        with pytest.raises(ConfigDriftError, match="instructions changed: ops"):
            await strict(run)("s", approve=lambda item: True)
        migrate = durable(store=store, agent=triage, registry=fresh()[0])
        result = await migrate(run)("s", approve=lambda item: True)
        assert result.final_output == "done"


async def test_a_rename_of_a_name_the_run_never_had_is_refused(backend: Backend) -> None:
    async with backend.open() as store:
        session = await seed(store)
        before = await snapshot(store)
        triage, _ = renamed_graph("agent")
        registry, formats = fresh()
        rename_agent("opps", "operations", registry=registry, item_formats=formats)
        with pytest.raises(UnknownRenameError, match=r"rename_agent\('opps', 'operations'\)"):
            await load_run_state(session, triage, registry=registry)
        triage, _ = renamed_graph("tool")
        rename_tool("delete_fil", "remove_file", registry=registry, item_formats=formats)
        with pytest.raises(UnknownRenameError, match="delete_fil"):
            await load_run_state(session, triage, registry=registry)
        with pytest.raises(MissingAgentError):  # accept checks no rename, runs none
            await load_run_state(session, renamed_graph("agent")[0], drift="accept")
        assert await snapshot(store) == before


async def test_a_failing_handler_changes_nothing(backend: Backend) -> None:
    async with backend.open() as store:
        session = await seed(store)
        before = await snapshot(store)
        registry, formats = fresh()
        rename_agent("ops", "operations", registry=registry, item_formats=formats)

        @registry.on_fingerprint_change(RUN_STATE_KIND, covers=["agent renamed"])
        def broken(payload: Any, change: Any) -> Any:
            raise KeyError("current_agent")

        with pytest.raises(MigrationFailedError, match="broken"):
            await load_run_state(session, renamed_graph("agent")[0], registry=registry)

        def broken_rename(item: Any) -> Any:
            raise ValueError("bad item")

        formats.add_rename(broken_rename)
        reader = StoreSession("s", store=store, item_formats=formats)
        with pytest.raises(MigrationFailedError, match="broken_rename"):
            await reader.get_items()
        with pytest.raises(MigrationFailedError):
            await reader.pop_item()
        assert await snapshot(store) == before


async def test_future_formats_are_refused_and_kept(backend: Backend) -> None:
    async with backend.open() as store:
        session = await seed(store)
        future = {"v": 2, "sdk": "9.0.0", "item": {"role": "user", "content": "from the future"}}
        await store.append("s", ITEMS_LOG, [future])
        before = await snapshot(store)
        with pytest.raises(FutureItemFormatError, match="format 2"):
            await session.get_items()
        with pytest.raises(FutureItemFormatError):
            await session.pop_item()
        assert await snapshot(store) == before

        newer = saved_envelope(SAVED, "s").replace(schema_version=2)
        await session.put(newer)
        with pytest.raises(FutureVersionError, match="schema version 2"):
            await load_run_state(session, graph(saving=False)[0], registry=fresh()[0])


def customer_tools() -> dict[str, FunctionTool]:
    """``@function_tool`` on the Python function as first written, and renamed."""

    @function_tool(needs_approval=True)
    def lookup_customer(customer: str) -> str:
        """Find a customer's account."""
        return f"{customer}: gold tier"

    @function_tool(needs_approval=True)
    def find_customer(customer: str) -> str:
        """Find a customer's account."""
        return f"{customer}: gold tier"

    return {"lookup_customer": lookup_customer, "find_customer": find_customer}


def redocumented_find_customer() -> FunctionTool:
    """The renamed function with a new docstring: its description changed too."""

    @function_tool(needs_approval=True)
    def find_customer(customer: str) -> str:
        """Find a customer's account, or fail."""
        return f"{customer}: gold tier"

    return find_customer


def customer_desk(tool: FunctionTool, *steps: Any) -> Agent[Any]:
    return Agent(name="desk", instructions="help", tools=[tool], model=ScriptedModel(steps))


async def test_a_renamed_python_function_resumes_with_its_declared_rename(
    backend: Backend,
) -> None:
    async with backend.open() as store:
        saving = customer_desk(
            customer_tools()["lookup_customer"],
            [function_call("lookup_customer", {"customer": "ada"}, call_id="c1")],
        )
        result = await Runner.run(saving, "find ada", session=StoreSession("s", store=store))
        await save_run_state(StoreSession("s", store=store), result, saving)
        before = await snapshot(store)
        resuming = customer_desk(customer_tools()["find_customer"], [assistant_message("done")])

        with pytest.raises(ConfigDriftError) as undeclared:
            await load_run_state(StoreSession("s", store=store), resuming, registry=fresh()[0])
        assert [str(c) for c in undeclared.value.changes] == ["tool removed: desk.lookup_customer"]
        registry, formats = fresh()
        rename_tool("lookup_customer", "find_customer", registry=registry, item_formats=formats)
        session = StoreSession("s", store=store, item_formats=formats)
        edited = customer_desk(redocumented_find_customer())
        with pytest.raises(ConfigDriftError, match=r"\$\.desk\.tools\.find_customer\.description"):
            await load_run_state(session, edited, registry=registry)
        assert await snapshot(store) == before

        assert config_changes(
            agent_config(saving),
            agent_config(resuming),
            tools=registry.renames(RUN_STATE_KIND)["tool"],
        ) == [Change("tool renamed", "desk.lookup_customer", "lookup_customer", "find_customer")]
        state = await load_run_state(session, resuming, registry=registry)
        assert state is not None
        for item in state.get_interruptions():
            state.approve(item)
        result = await Runner.run(resuming, state, session=session)
        assert result.final_output == "done"
        items = await session.get_items()
        assert {i["name"] for i in items if i.get("type") == "function_call"} == {"find_customer"}
        assert "ada: gold tier" in [i.get("output") for i in items]
