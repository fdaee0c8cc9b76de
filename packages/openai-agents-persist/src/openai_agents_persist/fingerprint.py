"""What identifies an agent graph's configuration, and which names a saved run needs.

    agent_fingerprint(triage)   # "sha256:...": instructions, tools, handoffs, model settings
    agent_config(triage)        # the JSON it hashes, one entry per agent, sorted by name
    agent_names(triage)         # {"triage", "billing", ...}, following handoffs

A ``RunState`` refers to agents and tools by name (FINDINGS section 2), so a rename between
save and load is what breaks a resume; these functions let the loader say which names are
missing instead of letting the SDK fail half-way through the resumed run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from agents import Agent, Handoff

from agent_persist import fingerprint

from ._journaled import inner_model

__all__ = [
    "agent_config",
    "agent_fingerprint",
    "agent_names",
    "referenced_names",
    "tool_names",
]


def _graph(agent: Agent[Any]) -> Iterator[Agent[Any]]:
    """The agent and every agent reachable through handoffs, each once."""
    seen: set[int] = set()
    pending: list[Agent[Any]] = [agent]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(h for h in current.handoffs if isinstance(h, Agent))


def _handoff_name(handoff: Agent[Any] | Handoff[Any, Any]) -> str:
    return handoff.name if isinstance(handoff, Agent) else handoff.agent_name


def agent_names(agent: Agent[Any]) -> set[str]:
    """Every agent name of the graph, including handoff targets given as ``Handoff``."""
    names: set[str] = set()
    for member in _graph(agent):
        names.add(member.name)
        names.update(_handoff_name(h) for h in member.handoffs)
    return names


def tool_names(agent: Agent[Any]) -> set[str]:
    """Every tool name offered by an agent of the graph."""
    return {str(getattr(t, "name", "")) for member in _graph(agent) for t in member.tools}


def _tool(tool: Any) -> dict[str, Any]:
    return {
        "name": str(getattr(tool, "name", "")),
        "description": str(getattr(tool, "description", "")),
        "parameters": getattr(tool, "params_json_schema", None),
    }


def _describe(agent: Agent[Any]) -> dict[str, Any]:
    instructions = agent.instructions
    model = inner_model(agent.model)  # a journaled model is the model it wraps
    return {
        "name": agent.name,
        "instructions": instructions
        if isinstance(instructions, str | None)
        else getattr(instructions, "__qualname__", type(instructions).__name__),
        "tools": sorted((_tool(t) for t in agent.tools), key=lambda entry: str(entry["name"])),
        "handoffs": [_handoff_name(h) for h in agent.handoffs],
        "model": model if isinstance(model, str | None) else type(model).__name__,
        "model_settings": agent.model_settings.to_json_dict(),
    }


def agent_config(agent: Agent[Any]) -> list[dict[str, Any]]:
    """The graph's configuration as JSON: what the fingerprint hashes and the drift check diffs.

    One entry per agent (name, instructions, tools, handoffs, model, model settings), sorted
    by name so the same graph always gives the same list.
    """
    return sorted((_describe(a) for a in _graph(agent)), key=lambda d: str(d["name"]))


def agent_fingerprint(agent: Agent[Any]) -> str:
    """A hash of the graph's instructions, tools, handoffs, models and model settings."""
    return fingerprint(agent_config(agent))


def referenced_names(state: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The agent names and the pending tool names a ``RunState.to_json()`` dict needs."""
    agents: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            fields = cast("dict[str, Any]", node)
            name = fields.get("name")
            if key.endswith("agent") and isinstance(name, str):
                agents.add(name)
            for child_key, child in fields.items():
                walk(child, child_key)
        elif isinstance(node, list):
            for child in cast("list[Any]", node):
                walk(child, key)

    walk(state)
    agents.update(cast("dict[str, Any]", state.get("tool_use_tracker") or {}))
    tools: set[str] = set()
    step = cast("dict[str, Any]", state.get("current_step") or {})
    data = cast("dict[str, Any]", step.get("data") or {})
    for item in cast("list[dict[str, Any]]", data.get("interruptions") or []):
        origin = cast("dict[str, Any]", item.get("tool_origin") or {})
        if origin.get("type", "function") == "function" and isinstance(item.get("tool_name"), str):
            tools.add(item["tool_name"])
    processed = cast("dict[str, Any]", state.get("last_processed_response") or {})
    for call in cast("list[dict[str, Any]]", processed.get("functions") or []):
        tool = cast("dict[str, Any]", call.get("tool") or {})
        if isinstance(tool.get("name"), str):
            tools.add(tool["name"])
    return agents, tools
