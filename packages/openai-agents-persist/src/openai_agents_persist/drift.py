"""What changed in the agent graph between saving a run and resuming it, field by field.

    old = await saved_config(store, envelope)        # agent_config() of the saving graph
    changes = config_changes(old, agent_config(agent), agents=[("ops", "operations")])
    # [Change("agent renamed", "ops", old="ops", new="operations"),
    #  Change("instructions changed", "operations", old="be careful", new="be brave")]

The categories are this adapter's contract with fingerprint-change handlers (they declare
which ones they ``covers=``). A rename appears as one only when declared (:func:`.rename_agent`,
:func:`.rename_tool`); otherwise it is an agent or tool removed plus one added, because the
saved ``RunState`` refers to names and nothing else can tell the two apart. The changes in
:data:`NO_STATE_CHANGE` need no rewrite of the saved state (the SDK reads instructions,
models and the tool list from the live agents on resume), so the adapter covers them itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from agent_persist import Change
from agent_persist.drift import generic_changes, matched_renames

__all__ = [
    "AGENT_ADDED",
    "AGENT_REMOVED",
    "AGENT_RENAMED",
    "CATEGORIES",
    "HANDOFFS_CHANGED",
    "INSTRUCTIONS_CHANGED",
    "MODEL_CHANGED",
    "MODEL_SETTINGS_CHANGED",
    "NO_STATE_CHANGE",
    "TOOL_ADDED",
    "TOOL_REMOVED",
    "TOOL_RENAMED",
    "config_changes",
    "config_names",
]

AGENT_ADDED = "agent added"
AGENT_REMOVED = "agent removed"
AGENT_RENAMED = "agent renamed"
INSTRUCTIONS_CHANGED = "instructions changed"
TOOL_ADDED = "tool added"
TOOL_REMOVED = "tool removed"
TOOL_RENAMED = "tool renamed"
HANDOFFS_CHANGED = "handoffs changed"
MODEL_CHANGED = "model changed"
MODEL_SETTINGS_CHANGED = "model settings changed"

CATEGORIES = (
    AGENT_ADDED,
    AGENT_REMOVED,
    AGENT_RENAMED,
    INSTRUCTIONS_CHANGED,
    TOOL_ADDED,
    TOOL_REMOVED,
    TOOL_RENAMED,
    HANDOFFS_CHANGED,
    MODEL_CHANGED,
    MODEL_SETTINGS_CHANGED,
)
"""Every category :func:`config_changes` names; other differences are generic ones."""

NO_STATE_CHANGE = frozenset(
    {INSTRUCTIONS_CHANGED, MODEL_CHANGED, MODEL_SETTINGS_CHANGED, TOOL_ADDED}
)
"""Changes a saved run survives as is: the resumed run simply uses the new values."""

_NAMED = frozenset({"name", "instructions", "tools", "handoffs", "model", "model_settings"})


def _by_name(config: Any) -> dict[str, dict[str, Any]]:
    entries = cast("list[Any]", config) if isinstance(config, list) else []
    named = (cast("dict[str, Any]", e) for e in entries if isinstance(e, dict))
    return {str(entry.get("name")): entry for entry in named}


def config_names(config: Any) -> tuple[set[str], set[str]]:
    """The agent names and the tool names (of any agent) an :func:`.agent_config` holds."""
    agents = _by_name(config)
    return set(agents), {tool for entry in agents.values() for tool in _tools(entry)}


def _tools(entry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return _by_name(entry.get("tools"))


def _tool_changes(
    agent: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    renames: Sequence[tuple[str, str]],
) -> tuple[list[Change], dict[str, str]]:
    old_tools, new_tools = _tools(before), _tools(after)
    renamed = matched_renames(renames, old_tools, new_tools)
    changes = [Change(TOOL_RENAMED, f"{agent}.{o}", old=o, new=n) for o, n in renamed.items()]
    changes += [
        Change(TOOL_REMOVED, f"{agent}.{name}")
        for name in sorted(old_tools)
        if name not in new_tools and name not in renamed
    ]
    arrived = set(renamed.values())
    changes += [
        Change(TOOL_ADDED, f"{agent}.{name}")
        for name in sorted(new_tools)
        if name not in old_tools and name not in arrived
    ]
    return changes, renamed


def _details(entry: Mapping[str, Any], tools: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What no category names: unknown fields, and each tool's description and parameters."""
    rest = {key: value for key, value in entry.items() if key not in _NAMED}
    names = tools or {}
    rest["tools"] = {
        names.get(name, name): _tool_details(tool) for name, tool in _tools(entry).items()
    }
    return rest


def _tool_details(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A tool's fields but its name, and the schema title the SDK derives from the name."""
    details = {key: value for key, value in tool.items() if key != "name"}
    parameters = details.get("parameters")
    if isinstance(parameters, dict):
        schema = cast("dict[str, Any]", parameters)
        if schema.get("title") == f"{tool.get('name')}_args":
            details["parameters"] = {k: v for k, v in schema.items() if k != "title"}
    return details


def _agent_changes(
    name: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    agent_renames: Mapping[str, str],
    tool_renames: Sequence[tuple[str, str]],
) -> tuple[list[Change], dict[str, Any], dict[str, Any]]:
    changes: list[Change] = []
    for field, what in (
        ("instructions", INSTRUCTIONS_CHANGED),
        ("model", MODEL_CHANGED),
        ("model_settings", MODEL_SETTINGS_CHANGED),
    ):
        if before.get(field) != after.get(field):
            changes.append(Change(what, name, old=before.get(field), new=after.get(field)))
    old_handoffs = cast("list[Any]", before.get("handoffs") or [])
    handoffs = [agent_renames.get(h, h) for h in old_handoffs]
    if handoffs != after.get("handoffs", []):
        changes.append(Change(HANDOFFS_CHANGED, name, old=old_handoffs, new=after.get("handoffs")))
    tool_changes, renamed = _tool_changes(name, before, after, tool_renames)
    old_rest, new_rest = _details(before, renamed), _details(after)
    kept = set(old_rest["tools"]) & set(new_rest["tools"])
    old_rest["tools"] = {k: v for k, v in old_rest["tools"].items() if k in kept}
    new_rest["tools"] = {k: v for k, v in new_rest["tools"].items() if k in kept}
    return changes + tool_changes, old_rest, new_rest


def config_changes(
    old: Any,
    new: Any,
    *,
    agents: Sequence[tuple[str, str]] = (),
    tools: Sequence[tuple[str, str]] = (),
) -> list[Change]:
    """The differences between two :func:`.agent_config` values, named by category.

    Args:
        old: The configuration that saved the run.
        new: The configuration loading it.
        agents: Declared agent renames ``(old, new)``, in declaration order.
        tools: Declared tool renames ``(old, new)``, in declaration order.

    Returns:
        Agent-level changes, then per-agent ones (subject: the agent's current name, or
        ``"agent.tool"``), then generic ones for anything else (tool descriptions and
        parameters, unknown fields), subject a JSON path.
    """
    before, after = _by_name(old), _by_name(new)
    renamed = matched_renames(agents, before, after)
    changes = [Change(AGENT_RENAMED, o, old=o, new=n) for o, n in renamed.items()]
    changes += [
        Change(AGENT_REMOVED, name)
        for name in sorted(before)
        if name not in after and name not in renamed
    ]
    arrived = set(renamed.values())
    changes += [
        Change(AGENT_ADDED, name)
        for name in sorted(after)
        if name not in before and name not in arrived
    ]
    old_rest: dict[str, Any] = {}
    new_rest: dict[str, Any] = {}
    for name in sorted(before):
        current = renamed.get(name, name)
        if current not in after:
            continue
        found, old_rest[current], new_rest[current] = _agent_changes(
            current, before[name], after[current], renamed, tools
        )
        changes += found
    return changes + generic_changes(old_rest, new_rest)
