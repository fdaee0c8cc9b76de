"""What changed between the configuration that wrote a checkpoint and the one loading it.

    config = drift_config(team, team_layout(team))          # what the config log records
    changes = config_changes(saved, config, renames=registry.renames(KIND_TEAM))

The configuration is ``{"component": dump_component() JSON, "layout": Layout}``. The diff
names the changes AutoGen users think in, one :class:`~agent_persist.Change` each, so a
migration can declare which it covers (``Change.what``):

| category | subject | old / new |
| --- | --- | --- |
| ``participant added`` / ``participant removed`` | the agent | |
| ``participant renamed`` | the old name | old name / new name (only when declared) |
| ``participants reordered`` | ``participants`` | the common agents, old / new order |
| ``team type changed`` | ``team`` | old / new team class |
| ``system message changed`` | the agent | old / new prompt |
| ``initial messages changed`` | the agent | old / new ``initial_messages`` |
| ``tool added`` / ``tool removed`` | the agent | the tool name |
| ``tool renamed`` | the agent | old / new tool name (only when declared) |
| ``model changed`` | the agent (``team`` for a selector's model) | old / new model |

Anything else is reported by :func:`agent_persist.drift.generic_changes` (``setting
changed: $.participants.writer.config.reflect_on_tool_use``). A rename is only a rename when
the user declared it (:func:`autogen_persist.migrations.rename_participant`,
:func:`~autogen_persist.migrations.rename_tool`): otherwise it is a removal and an addition,
since nothing in the configuration says the new agent is the old one. A team whose type
changed reports no team-level settings besides the type: they belong to the type.

A declared tool rename also explains the function's own rename: a ``FunctionTool`` whose
``source_code`` differs only by the name in its ``def`` line (see
:func:`autogen_persist._source.only_function_renamed`) reports no ``source_code`` change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from autogen_agentchat.base import ChatAgent, Team

from agent_persist import Change
from agent_persist.drift import generic_changes, matched_renames

from ._layout import Layout, component_config
from ._source import only_function_renamed

__all__ = [
    "LAYOUT_CHANGES",
    "Renames",
    "config_changes",
    "drift_config",
]

LAYOUT_CHANGES = frozenset(
    {
        "participant added",
        "participant removed",
        "participant renamed",
        "participants reordered",
        "team type changed",
    }
)
"""The categories that change a team's layout: AutoGen cannot load across them unmigrated."""

Renames = Mapping[str, Iterable[tuple[str, str]]]
"""Declared renames: ``{"participant": [(old, new)], "tool": [(old, new)]}``."""

_OWN = ("system_message", "model_client", "workbench", "tools", "model_context")
"""An agent's settings the diff names itself (the rest go to the generic diff)."""

_SOURCE = "source_code"
"""A ``FunctionTool``'s config field holding its function's source."""


def drift_config(component: Team | ChatAgent, layout: Layout) -> dict[str, Any]:
    """The configuration recorded in the ``config`` log: the component and its layout."""
    return {"component": component_config(component), "layout": layout.model_dump()}


def _layout_of_config(config: Any) -> Layout | None:
    """The layout a recorded configuration holds, if it holds a valid one."""
    if not isinstance(config, Mapping):
        return None
    layout = cast("Mapping[str, Any]", config).get("layout")
    try:
        return None if layout is None else Layout.model_validate(layout)
    except ValueError:
        return None


def config_changes(old: Any, new: Mapping[str, Any], *, renames: Renames) -> list[Change]:
    """Every difference between the recorded ``old`` configuration and ``new``.

    ``old`` may be ``None`` or only ``{"layout": ...}`` (a checkpoint written before
    configurations were recorded, or adopted raw state): then only the layout is compared.
    """
    old_map: Mapping[str, Any] = cast("Mapping[str, Any]", old) if isinstance(old, Mapping) else {}
    old_layout, new_layout = _layout_of_config(old_map), _layout_of_config(new)
    participants = dict(renames.get("participant", ()))
    changes: list[Change] = []
    mapped: dict[str, str] = {}
    if old_layout is not None and new_layout is not None:
        changes, mapped = _layout_changes(old_layout, new_layout, participants)
    if "component" in old_map:
        type_changed = any(c.what == "team type changed" for c in changes)
        changes += _component_changes(
            old_map["component"],
            new["component"],
            mapped,
            dict(renames.get("tool", ())),
            team_level=not type_changed,
        )
    return changes


def _layout_changes(
    old: Layout, new: Layout, renames: Mapping[str, str]
) -> tuple[list[Change], dict[str, str]]:
    """The layout's changes, and the declared renames that apply (old name -> new name)."""
    changes: list[Change] = []
    if old.team_type != new.team_type or old.manager != new.manager:
        changes.append(Change("team type changed", "team", old.team_type, new.team_type))
    mapped = {
        before: after
        for before, after in renames.items()
        if after in new.participants
        and after not in old.participants
        and before not in new.participants
    }
    changes += [Change("participant renamed", a, a, b) for a, b in mapped.items()]
    old_names = [mapped.get(name, name) for name in old.participants]
    reverse = {b: a for a, b in mapped.items()}
    changes += [
        Change("participant removed", reverse.get(name, name))
        for name in old_names
        if name not in new.participants
    ]
    changes += [
        Change("participant added", name)
        for name in new.participants
        if name not in old_names and name not in reverse
    ]
    if old.ordered and new.ordered:
        common_old = [name for name in old_names if name in new.participants]
        common_new = [name for name in new.participants if name in old_names]
        if common_old != common_new:
            changes.append(
                Change("participants reordered", "participants", common_old, common_new)  # pyright: ignore[reportArgumentType]
            )
    return changes, mapped


def _component_changes(
    old: Any, new: Any, mapped: Mapping[str, str], tools: Mapping[str, str], *, team_level: bool
) -> list[Change]:
    old_agents, new_agents = _participants(old), _participants(new)
    if old_agents is None or new_agents is None:
        if _is_agent(old) and _is_agent(new):  # a single agent (the autogen.agent kind)
            return _agent_changes(_name(new) or "agent", old, new, tools, "$")
        return generic_changes(old, new) if team_level else []
    changes: list[Change] = []
    reverse = {b: a for a, b in mapped.items()}
    for name, config in new_agents.items():
        before = old_agents.get(reverse.get(name, name))
        if before is not None:
            changes += _agent_changes(name, before, config, tools, f"$.participants.{name}")
    if team_level:
        old_rest, new_rest = _without_participants(old), _without_participants(new)
        changes += _model_change("team", old_rest, new_rest)
        changes += generic_changes(
            _drop_config(old_rest, "model_client"), _drop_config(new_rest, "model_client")
        )
    return changes


def _agent_changes(
    name: str, old: Any, new: Any, renames: Mapping[str, str], path: str
) -> list[Change]:
    old_config, new_config = _config(old), _config(new)
    changes: list[Change] = []
    if old_config.get("system_message") != new_config.get("system_message"):
        changes.append(
            Change(
                "system message changed",
                name,
                old_config.get("system_message"),
                new_config.get("system_message"),
            )
        )
    changes += _model_change(name, old, new)
    changes += _tool_changes(name, old_config, new_config, renames, path)
    old_initial, new_initial = _initial_messages(old_config), _initial_messages(new_config)
    if old_initial != new_initial:
        changes.append(Change("initial messages changed", name, old_initial, new_initial))  # pyright: ignore[reportArgumentType]
    rest = [_rest(old), _rest(new)]
    for change in generic_changes(*rest):
        changes.append(Change(change.what, path + change.subject[1:]))
    return changes


def _tool_changes(
    name: str,
    old_config: Mapping[str, Any],
    new_config: Mapping[str, Any],
    renames: Mapping[str, str],
    path: str,
) -> list[Change]:
    old_tools, new_tools = _tools(old_config), _tools(new_config)
    renamed = matched_renames(renames.items(), old_tools, new_tools)
    changes = [Change("tool renamed", name, a, b) for a, b in renamed.items()]
    changes += [
        Change("tool removed", name, tool, None)
        for tool in old_tools
        if tool not in new_tools and tool not in renamed
    ]
    changes += [
        Change("tool added", name, None, tool)
        for tool in new_tools
        if tool not in old_tools and tool not in renamed.values()
    ]
    reverse = {b: a for a, b in renamed.items()}
    for tool, config in new_tools.items():
        before = old_tools.get(reverse.get(tool, tool))
        if before is not None:
            old_rest, new_rest = _tool_rest(before, config, renamed=tool in reverse)
            for change in generic_changes(old_rest, new_rest):
                changes.append(Change(change.what, f"{path}.tools.{tool}{change.subject[1:]}"))
    return changes


def _tool_rest(old: Any, new: Any, *, renamed: bool) -> tuple[Any, Any]:
    """Two versions of a tool without what its (declared) rename explains.

    The name always goes: it is the key the tools are matched by. For a renamed tool, so
    does a ``source_code`` that differs only by the function's own name in its ``def``
    line (the Python function was renamed with the tool); any other edit stays a change.
    """
    old_rest, new_rest = _drop_config(old, "name"), _drop_config(new, "name")
    sources = _config(old).get("source_code"), _config(new).get("source_code")
    if renamed and only_function_renamed(*sources):
        old_rest, new_rest = _drop_config(old_rest, _SOURCE), _drop_config(new_rest, _SOURCE)
    return old_rest, new_rest


def _model_change(subject: str, old: Any, new: Any) -> list[Change]:
    old_model, new_model = _config(old).get("model_client"), _config(new).get("model_client")
    if old_model == new_model:
        return []
    return [Change("model changed", subject, _model_name(old_model), _model_name(new_model))]


def _model_name(model: Any) -> Any:
    """A model client's model (or its provider and name) for the change's message."""
    if not isinstance(model, Mapping):
        return None
    component = cast("Mapping[str, Any]", model)
    config = _config(component)
    label = config.get("model") or config.get("name")
    provider = str(component.get("provider", "")).rsplit(".", 1)[-1]
    return f"{provider}({label})" if label else provider or None


def _tools(config: Mapping[str, Any]) -> dict[str, Any]:
    """An agent's tools by name, from its workbench(es) and ``tools``."""
    found: list[Any] = []
    workbench = config.get("workbench")
    benches: list[Any] = (
        cast("list[Any]", workbench) if isinstance(workbench, list) else [workbench]
    )
    for bench in benches:
        found += _as_list(_config(bench).get("tools"))
    found += _as_list(config.get("tools"))
    tools: dict[str, Any] = {}
    for tool in found:
        tool_name = _config(tool).get("name")
        if isinstance(tool_name, str):
            tools[tool_name] = tool
    return tools


def _initial_messages(config: Mapping[str, Any]) -> list[Any]:
    return _as_list(_config(config.get("model_context")).get("initial_messages"))


def _rest(agent: Any) -> Any:
    """An agent's component without the settings the diff names itself."""
    if not isinstance(agent, Mapping):
        return agent
    component = dict(cast("Mapping[str, Any]", agent))
    config = {k: v for k, v in _config(agent).items() if k not in _OWN and k != "name"}
    context = _config(agent).get("model_context")
    if isinstance(context, Mapping):
        context_map = dict(cast("Mapping[str, Any]", context))
        context_map["config"] = _drop(_config(context), "initial_messages")
        config["model_context"] = context_map
    component["config"] = config
    return component


def _participants(component: Any) -> dict[str, Any] | None:
    agents = _config(component).get("participants")
    if not isinstance(agents, list):
        return None
    named: dict[str, Any] = {}
    for agent in cast("list[Any]", agents):
        name = _name(agent)
        if name is not None:
            named[name] = agent
    return named


def _without_participants(component: Any) -> Any:
    return _drop_config(component, "participants")


def _drop_config(component: Any, key: str) -> Any:
    """``component`` without ``key`` in its ``config``."""
    if not isinstance(component, Mapping):
        return component
    result = dict(cast("Mapping[str, Any]", component))
    result["config"] = _drop(_config(component), key)
    return result


def _is_agent(component: Any) -> bool:
    return _name(component) is not None and _participants(component) is None


def _name(component: Any) -> str | None:
    name = _config(component).get("name")
    return name if isinstance(name, str) else None


def _config(component: Any) -> dict[str, Any]:
    if isinstance(component, Mapping):
        config = cast("Mapping[str, Any]", component).get("config")
        if isinstance(config, Mapping):
            return dict(cast("Mapping[str, Any]", config))
    return {}


def _drop(value: Any, key: str) -> Any:
    if isinstance(value, Mapping):
        return {k: v for k, v in cast("Mapping[str, Any]", value).items() if k != key}
    return value


def _as_list(value: Any) -> list[Any]:
    return list(cast("list[Any]", value)) if isinstance(value, list) else []
