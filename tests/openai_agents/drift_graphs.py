"""The agent graphs of the drift fixtures: the one that saved them and the renamed ones.

The saved run: ``triage`` hands off to ``ops``, which lists files, thinks (a reasoning
item with an id) and asks for approval to call ``delete_file``. The renamed graphs are the
same but for one name, and their scripted models finish the run with ``"done"``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, function_tool
from agents import run_state as sdk_run_state
from agents.testing import ScriptedModel, assistant_message, function_call
from openai.types.responses import ResponseReasoningItem

from agent_persist import DriftPolicy, Envelope, Registry, Status
from openai_agents_persist import (
    ITEM_FORMATS,
    RUN_STATE_KIND,
    ItemFormats,
    agent_config,
    agent_fingerprint,
    config_changes,
    rename_agent,
    rename_tool,
)
from openai_agents_persist.checkpoints import producer
from openai_agents_persist.items import SDK_VERSION
from openai_agents_persist.plugin import register

AGENT_RENAME = ("ops", "operations")
TOOL_RENAME = ("delete_file", "remove_file")


def reasoning(item_id: str = "rs_1") -> Any:
    """A reasoning item with an id, as stored by SDK versions that 404 on it later."""
    return ResponseReasoningItem(id=item_id, summary=[], type="reasoning")


def graph(
    *, ops: str = "ops", delete: str = "delete_file", saving: bool = True
) -> tuple[Agent[Any], Agent[Any]]:
    """``(triage, ops)``; ``saving`` scripts the interrupted run, else the resumed one."""

    @function_tool(needs_approval=True, name_override=delete)
    def delete_file(path: str) -> str:
        """Delete a file."""
        return f"deleted {path}"

    @function_tool(name_override="list_files")
    def list_files() -> str:
        """List the files."""
        return "a.txt b.txt"

    if saving:
        ops_steps: list[Any] = [
            [function_call("list_files", {}, call_id="c0")],
            [reasoning(), function_call(delete, {"path": "a.txt"}, call_id="c1")],
        ]
        triage_steps: list[Any] = [[function_call(f"transfer_to_{ops}", {}, call_id="h1")]]
    else:
        ops_steps, triage_steps = [[assistant_message("done")]], []
    worker = Agent(
        name=ops,
        instructions="be careful",
        tools=[delete_file, list_files],
        model=ScriptedModel(ops_steps),
    )
    triage = Agent(
        name="triage", instructions="route", handoffs=[worker], model=ScriptedModel(triage_steps)
    )
    return triage, worker


def renamed_graph(which: str) -> tuple[Agent[Any], Agent[Any]]:
    """The graph that resumes: ``which`` is ``"agent"`` or ``"tool"``, the renamed name."""
    if which == "agent":
        return graph(ops=AGENT_RENAME[1], saving=False)
    return graph(delete=TOOL_RENAME[1], saving=False)


def declare(which: str, registry: Registry, formats: ItemFormats) -> None:
    """Declare the fixture's rename on a registry and item formats of the test's own."""
    if which == "agent":
        rename_agent(*AGENT_RENAME, registry=registry, item_formats=formats)
    else:
        rename_tool(*TOOL_RENAME, registry=registry, item_formats=formats)


def fresh() -> tuple[Registry, ItemFormats]:
    """A registry with this adapter's kinds, and item formats, touching no global."""
    registry = Registry()
    register(registry)
    return registry, ITEM_FORMATS.copy()


def saved_envelope(fixture: dict[str, Any], thread_id: str = "fixture") -> Envelope:
    """The fixture's saved run as the envelope ``save_run_state`` wrote."""
    return Envelope.create(
        kind=RUN_STATE_KIND,
        schema_version=1,
        thread_id=thread_id,
        payload={"run_state": fixture["before"]},
        producer=producer(),
        fingerprint=fixture["fingerprint"],
        status=Status.INTERRUPTED,
        stop_reason="tool approval",
    )


def migrate_run_state(fixture: dict[str, Any], which: str) -> Any:
    """The fixture's saved state migrated for the renamed graph, as ``load_run_state`` does."""
    registry, formats = fresh()
    declare(which, registry, formats)
    triage, _ = renamed_graph(which)
    renames = registry.renames(RUN_STATE_KIND)
    agents, tools = renames.get("agent", []), renames.get("tool", [])
    changes = config_changes(fixture["config"], agent_config(triage), agents=agents, tools=tools)
    upgraded = registry.upgrade(
        saved_envelope(fixture),
        fingerprint=agent_fingerprint(triage),
        changes=changes,
        policy=DriftPolicy.MIGRATE,
    )
    return upgraded.payload["run_state"]


def migrate_items(stored: list[Any], which: str | None) -> list[Any]:
    """Stored items as a session reads them with the fixture's rename (or none)."""
    registry, formats = fresh()
    if which is not None:
        declare(which, registry, formats)
    return formats.unwrap_all(stored, where="fixture")


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openai_agents"


def _fixture_schemas() -> set[str]:
    """The RunState ``$schemaVersion`` of the frozen run-state fixtures."""
    found: set[str] = set()
    for path in FIXTURES.glob("run_state_*.json"):
        found.update(re.findall(r'"\$schemaVersion":\s*"([\d.]+)"', path.read_text("utf-8")))
    return found


FIXTURE_SCHEMAS = _fixture_schemas()
needs_fixture_schema = pytest.mark.skipif(
    not set(getattr(sdk_run_state, "SUPPORTED_SCHEMA_VERSIONS", ())) >= FIXTURE_SCHEMAS,
    reason=f"the frozen RunState fixtures are schema {sorted(FIXTURE_SCHEMAS)}, written by a "
    f"newer openai-agents than {SDK_VERSION}, which refuses states newer than its own "
    "(`nox -s frameworks` runs the oldest release the range admits)",
)
"""For tests that load the frozen fixtures' RunState: the SDK refuses newer schemas."""
