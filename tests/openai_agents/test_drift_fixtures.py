"""Frozen before/after fixtures of every built-in migration, and resuming what they migrate.

Each fixture under ``tests/fixtures/openai_agents/`` was written once by a real SDK run
(``make_drift_fixtures.py``); the migrations must still turn its "before" into its frozen
"after", and the migrated run must finish in the renamed graph with the same session.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner
from agents.testing import ScriptedModel, assistant_message
from drift_graphs import (
    AGENT_RENAME,
    TOOL_RENAME,
    declare,
    fresh,
    migrate_items,
    migrate_run_state,
    needs_fixture_schema,
    renamed_graph,
    saved_envelope,
)
from oa_support import Backend

from agent_persist import BaseStore, config_appends
from openai_agents_persist import (
    ITEM_FORMATS,
    ITEMS_LOG,
    ItemFormats,
    StoreSession,
    load_run_state,
    save_run_state,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai_agents"
RENAMES = {"agent": AGENT_RENAME, "tool": TOOL_RENAME}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


async def seed(store: BaseStore, saved: dict[str, Any], formats: ItemFormats) -> StoreSession:
    """The session as the saving process left it: its items, the saved run, its config."""
    await store.append("s", ITEMS_LOG, saved["items"])
    session = StoreSession("s", store=store, item_formats=formats)
    config = config_appends(None, fingerprint=saved["fingerprint"], config=saved["config"])
    await session.put(saved_envelope(saved, "s"), logs=config)
    return session


@pytest.mark.parametrize("which", ["agent", "tool"])
def test_run_state_renames_match_the_frozen_after(which: str) -> None:
    frozen = fixture(f"run_state_{which}_renamed")
    assert frozen["rename"] == list(RENAMES[which])
    assert migrate_run_state(frozen, which) == frozen["after"]
    assert frozen["before"] != frozen["after"]


@pytest.mark.parametrize("which", ["agent", "tool"])
def test_session_item_renames_match_the_frozen_after(which: str) -> None:
    frozen = fixture(f"session_items_{which}_renamed")
    before = json.loads(json.dumps(frozen["before"]))
    assert migrate_items(before, which) == frozen["after"]
    assert before == frozen["before"]  # pure: the stored items are not touched
    old, new = RENAMES[which]
    calls = [item.get("name") for item in frozen["after"] if item.get("type") == "function_call"]
    old_call, new_call = (
        (f"transfer_to_{old}", f"transfer_to_{new}") if which == "agent" else (old, new)
    )
    assert old_call not in calls
    assert new_call in calls


def test_format_0_items_match_the_frozen_after() -> None:
    frozen = fixture("items_format_0")
    assert all("v" not in item for item in frozen["before"])  # bare, as SQLiteSession stores
    assert migrate_items(frozen["before"], None) == frozen["after"]
    reasoning = [item for item in frozen["after"] if item.get("type") == "reasoning"]
    assert reasoning
    assert all("id" not in item for item in reasoning)


@needs_fixture_schema
@pytest.mark.parametrize("which", ["agent", "tool"])
async def test_migrated_run_finishes_in_the_renamed_graph(backend: Backend, which: str) -> None:
    saved = fixture(f"run_state_{which}_renamed")
    registry, formats = fresh()
    declare(which, registry, formats)
    async with backend.open() as store:
        session = await seed(store, saved, formats)
        triage, worker = renamed_graph(which)
        state = await load_run_state(session, triage, registry=registry)
        assert state is not None
        for item in state.get_interruptions():
            state.approve(item)
        result = await Runner.run(triage, state, session=session)
        assert result.final_output == "done"
        await save_run_state(session, result, triage)
        assert await load_run_state(session, triage, registry=registry) is None

        items = await session.get_items()
        outputs = [item.get("output") for item in items]
        assert "deleted a.txt" in outputs
        old = RENAMES[which][0]
        calls = {item.get("name") for item in items if item.get("type") == "function_call"}
        old_call = f"transfer_to_{old}" if which == "agent" else old
        assert old_call not in calls
        sent = json.dumps(worker.model.calls[-1].input, default=str)  # type: ignore[union-attr]
        assert f'"{old_call}"' not in sent
        stored = await store.read_log("s", ITEMS_LOG)
        assert stored[: len(saved["items"])] == saved["items"]  # nothing stored was rewritten


async def test_format_0_items_continue_in_a_new_run(backend: Backend) -> None:
    bare = fixture("items_format_0")["before"]
    async with backend.open() as store:
        await store.append("s", ITEMS_LOG, bare)
        model = ScriptedModel([[assistant_message("hello again")]])
        agent = Agent(name="ops", model=model)
        session = StoreSession("s", store=store, item_formats=ITEM_FORMATS.copy())
        result = await Runner.run(agent, "and now?", session=session)
        assert result.final_output == "hello again"
        sent = [dict(item) for item in model.calls[0].input]
        assert {"call_id": "c0", "output": "a.txt b.txt", "type": "function_call_output"} in sent
        assert '"rs_1"' not in json.dumps(sent)  # the stored reasoning id never reaches the API
        assert (await store.read_log("s", ITEMS_LOG))[: len(bare)] == bare
