"""Migrations for a saved run and a session whose agent or tool was renamed since they were written.

    from openai_agents_persist.migrations import rename_agent, rename_tool

    rename_agent("ops", "operations")          # in the process that loads the old state
    rename_tool("delete_file", "remove_file")
    state = await load_run_state(session, new_agent)
    items = await session.get_items()          # old calls read with the new names

Each declaration does two things, both pure functions on JSON that never write:

- It registers a fingerprint-change handler for ``openai_agents.run_state`` that covers the
  drift check's ``"agent renamed"`` (or ``"tool renamed"``) change of exactly these two names,
  so a saved ``RunState`` loads into the renamed graph under the ``migrate`` policy. Only the
  places the SDK stores names are rewritten (agent references, tool calls, handoff calls,
  lookup keys, the tool-use tracker), never message text.
- It adds a read-time rename to the session's item formats (the process-wide
  ``ITEM_FORMATS`` by default): stored ``function_call`` items of the old tool, and the
  default handoff call ``transfer_to_<old>`` with its output, are read with the new names.
  The store keeps what was written; nothing is lost if the declaration is removed.

The declaration itself is kept in the registry, where the drift check reads it:
``registry.renames("openai_agents.run_state")`` gives ``{"agent": [(old, new)], "tool": [...]}``.

A rename retires the old name: a new agent or tool reusing it would be read as the renamed
one in old and new items alike, since items carry names and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any, cast

from agents import Agent, Handoff

from agent_persist import Change, FingerprintChange, Registry, default_registry

from .checkpoints import RUN_STATE_KIND
from .drift import AGENT_RENAMED, TOOL_RENAMED
from .items import ITEM_FORMATS, ItemFormats

__all__ = [
    "handoff_tool_name",
    "rename_agent",
    "rename_agent_in_item",
    "rename_tool",
    "rename_tool_in_item",
]

_TOOL_KEYS = frozenset({"tool", "tool_lookup_key", "lookupKey"})


@lru_cache(maxsize=256)
def handoff_tool_name(agent_name: str) -> str:
    """The SDK's default name of the tool that hands off to ``agent_name``."""
    return Handoff.default_tool_name(Agent(name=agent_name))


def _handoff_output(agent_name: str) -> str:
    return json.dumps({"assistant": agent_name})  # what the SDK's default handoff returns


def rename_agent_in_item(item: Any, old: str, new: str) -> Any:
    """``item`` with a default handoff call to ``old``, or its output, naming ``new``."""
    if not isinstance(item, dict):
        return item
    fields = cast("dict[str, Any]", item)
    kind = fields.get("type")
    if kind == "function_call" and fields.get("name") == handoff_tool_name(old):
        return {**fields, "name": handoff_tool_name(new)}
    if kind == "function_call_output" and fields.get("output") == _handoff_output(old):
        return {**fields, "output": _handoff_output(new)}
    return fields


def rename_tool_in_item(item: Any, old: str, new: str) -> Any:
    """``item`` with a ``function_call`` of tool ``old`` calling ``new`` instead."""
    if not isinstance(item, dict):
        return item
    fields = cast("dict[str, Any]", item)
    if fields.get("type") == "function_call" and fields.get("name") == old:
        return {**fields, "name": new}
    return fields


def _rename_agent_in(node: Any, old: str, new: str, calls: set[str], key: str = "") -> Any:
    if isinstance(node, dict):
        renamed_item = rename_agent_in_item(node, old, new)
        fields = cast("dict[str, Any]", renamed_item)
        if renamed_item is not node and isinstance(fields.get("call_id"), str):
            calls.add(fields["call_id"])
        result: dict[str, Any] = {}
        for child_key, child in fields.items():
            agent_ref = child_key == "name" and key.endswith("agent") and child == old
            handoff_ref = key == "handoff" and child_key == "tool_name"
            if agent_ref or (child_key == "agent_name" and child == old):
                result[child_key] = new
            elif handoff_ref and child == handoff_tool_name(old):
                result[child_key] = handoff_tool_name(new)
            else:
                result[child_key] = _rename_agent_in(child, old, new, calls, child_key)
        if key == "tool_use_tracker":
            if old in result:
                result[new] = result.pop(old)
            before, after = handoff_tool_name(old), handoff_tool_name(new)
            for agent, tools in result.items():
                result[agent] = [after if t == before else t for t in cast("list[Any]", tools)]
        return result
    if isinstance(node, list):
        return [_rename_agent_in(c, old, new, calls, key) for c in cast("list[Any]", node)]
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
    _forget_invocations(renamed, calls)
    return renamed


def _rename_agent(state: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    calls: set[str] = set()
    renamed = cast("dict[str, Any]", _rename_agent_in(state, old, new, calls))
    _forget_invocations(renamed, calls)
    return renamed


def _forget_invocations(state: dict[str, Any], calls: set[str]) -> None:
    """Drop the SDK's invocation records of renamed calls, which hash the old name.

    The SDK checks each record against a fingerprint of the call (name included) on
    restore. An unexecuted call is registered again under its new name when the run
    resumes; a completed one has its output in the state, so nothing re-runs it. A call
    executed but not completed keeps its record: dropping it could run the tool twice.
    """
    context = cast("dict[str, Any]", state.get("context") or {})
    invocations = cast("dict[str, Any]", context.get("tool_invocations") or {})
    for call_id in calls:
        record = cast("dict[str, Any]", invocations.get(call_id) or {})
        if record and (not record.get("executed") or record.get("completed")):
            del invocations[call_id]


def _covers(what: str, old: str, new: str) -> Callable[[Change], bool]:
    """Exactly the drift check's change for this rename: the category and both names."""

    def covers(change: Change) -> bool:
        return change.what == what and change.old == old and change.new == new

    return covers


def _declare(
    registry: Registry | None,
    what: str,
    old: str,
    new: str,
    rename: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    for name in (old, new):
        if not isinstance(name, str) or not name:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"a {what.split()[0]} rename needs two non-empty names, got {name!r}")
    if old == new:
        raise ValueError(f"{what}: {old!r} -> {new!r} renames nothing")
    target = registry if registry is not None else default_registry()
    target.declare_rename(RUN_STATE_KIND, what.split()[0], old, new)

    @target.on_fingerprint_change(RUN_STATE_KIND, covers=_covers(what, old, new))
    def handler(payload: Any, change: FingerprintChange) -> Any:
        state = payload.get("run_state")
        if state is not None:
            payload["run_state"] = rename(state)
        return payload

    handler.__name__ = f"{what.replace(' ', '_')}({old!r} -> {new!r})"


def rename_agent(
    old: str,
    new: str,
    *,
    registry: Registry | None = None,
    item_formats: ItemFormats | None = None,
) -> None:
    """Saved runs and session items that name agent ``old`` load where it is called ``new``.

    Args:
        old: The agent's name when the run or the items were saved.
        new: Its name in the graph that loads them.
        registry: Where the run-state migration goes (the process-wide one by default).
        item_formats: Where the session-item rename goes (``ITEM_FORMATS`` by default).
    """
    _declare(registry, AGENT_RENAMED, old, new, lambda s: _rename_agent(s, old, new))
    formats = item_formats if item_formats is not None else ITEM_FORMATS
    formats.add_rename(lambda item: rename_agent_in_item(item, old, new))


def rename_tool(
    old: str,
    new: str,
    *,
    registry: Registry | None = None,
    item_formats: ItemFormats | None = None,
) -> None:
    """Saved runs and session items that call tool ``old`` resume with it called ``new``.

    A tool renamed by renaming its Python function (``@function_tool`` names the tool after
    it) needs nothing more: the SDK derives only the tool's name and its parameters schema's
    ``title`` (``<name>_args``) from the function's name, and the drift check ignores that
    title. The configuration holds no source code, so an edited body is no change; an
    edited docstring is (the tool's description, or a parameter's).

    Args:
        old: The tool's name when the run or the items were saved.
        new: Its name in the graph that loads them.
        registry: Where the run-state migration goes (the process-wide one by default).
        item_formats: Where the session-item rename goes (``ITEM_FORMATS`` by default).
    """
    _declare(registry, TOOL_RENAMED, old, new, lambda s: _rename_tool(s, old, new))
    formats = item_formats if item_formats is not None else ITEM_FORMATS
    formats.add_rename(lambda item: rename_tool_in_item(item, old, new))
