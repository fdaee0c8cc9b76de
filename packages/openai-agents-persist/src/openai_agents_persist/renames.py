"""Migrations for a saved ``RunState`` whose agent or tool was renamed before it was resumed.

    from openai_agents_persist import rename_agent, rename_tool

    rename_agent("ops", "operations")          # in the process that loads the old state
    rename_tool("delete_file", "remove_file")
    state = await load_run_state(session, new_agent)

Both register a fingerprint-change handler for ``openai_agents.run_state`` in the core
registry: it runs only when the loading agent graph differs from the saving one, and it is
a pure function on the state's JSON. Only the places the SDK stores names are rewritten
(agent references, tool calls, lookup keys, the tool-use tracker), never message text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from agent_persist import FingerprintChange, Registry, default_registry

from .checkpoints import RUN_STATE_KIND

__all__ = ["rename_agent", "rename_tool"]

_TOOL_KEYS = frozenset({"tool", "tool_lookup_key", "lookupKey"})


def _rename_agent_in(node: Any, old: str, new: str, key: str = "") -> Any:
    if isinstance(node, dict):
        fields = cast("dict[str, Any]", node)
        result: dict[str, Any] = {}
        for child_key, child in fields.items():
            if (child_key == "name" and key.endswith("agent") and child == old) or (
                child_key == "agent_name" and child == old
            ):
                result[child_key] = new
            else:
                result[child_key] = _rename_agent_in(child, old, new, child_key)
        if key == "tool_use_tracker" and old in result:
            result[new] = result.pop(old)
        return result
    if isinstance(node, list):
        return [_rename_agent_in(child, old, new, key) for child in cast("list[Any]", node)]
    return node


def _rename_tool_in(node: Any, old: str, new: str, calls: set[str], key: str = "") -> Any:
    if isinstance(node, dict):
        fields = cast("dict[str, Any]", node)
        is_call = fields.get("type") == "function_call" and fields.get("name") == old
        if is_call and isinstance(fields.get("call_id"), str):
            calls.add(fields["call_id"])
        result: dict[str, Any] = {}
        for child_key, child in fields.items():
            named = child_key == "name" and (is_call or key in _TOOL_KEYS)
            if child == old and (named or child_key == "tool_name"):
                result[child_key] = new
            else:
                result[child_key] = _rename_tool_in(child, old, new, calls, child_key)
        return result
    if isinstance(node, list):
        items = [_rename_tool_in(c, old, new, calls, key) for c in cast("list[Any]", node)]
        return [new if c == old else c for c in items] if key == "tools_used" else items
    return node


def _rename_tool(state: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    calls: set[str] = set()
    renamed = cast("dict[str, Any]", _rename_tool_in(state, old, new, calls))
    tracker = cast("dict[str, list[str]]", renamed.get("tool_use_tracker") or {})
    for agent, tools in tracker.items():
        tracker[agent] = [new if t == old else t for t in tools]
    # The SDK fingerprints each pending invocation with the tool's name; an unexecuted
    # one is simply registered again under the new name when the run resumes.
    context = cast("dict[str, Any]", renamed.get("context") or {})
    invocations = cast("dict[str, Any]", context.get("tool_invocations") or {})
    for call_id in calls:
        record = cast("dict[str, Any]", invocations.get(call_id) or {})
        if record and not record.get("executed"):
            del invocations[call_id]
    return renamed


def _register(
    registry: Registry | None, rename: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    target = registry if registry is not None else default_registry()

    @target.on_fingerprint_change(RUN_STATE_KIND)
    def handler(payload: Any, change: FingerprintChange) -> Any:
        state = payload.get("run_state")
        if state is not None:
            payload["run_state"] = rename(state)
        return payload


def rename_agent(old: str, new: str, *, registry: Registry | None = None) -> None:
    """Saved runs that name agent ``old`` load into a graph where it is called ``new``."""
    _register(registry, lambda state: cast("dict[str, Any]", _rename_agent_in(state, old, new)))


def rename_tool(old: str, new: str, *, registry: Registry | None = None) -> None:
    """Saved runs that call tool ``old`` resume with the tool now called ``new``."""
    _register(registry, lambda state: _rename_tool(state, old, new))
