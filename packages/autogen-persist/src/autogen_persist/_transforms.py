"""Pure functions on a materialized payload: the built-in migrations' state changes.

    payload = rename_participant(payload, "writer", "author")   # keys, sources, speakers
    payload = remove_participant(payload, "critic")             # RoundRobin index remapped

Each takes the payload of an ``autogen.team`` (or ``autogen.agent``) checkpoint with its logs
read back inline (AutoGen's own ``TeamState`` under ``"team"``, the runs' output, the
layout...), changes it in place and returns it, or raises :class:`MigrationInputError` when
the state does not hold what it names. :mod:`autogen_persist.migrations` registers them; the
registry runs them on a copy, so a failure leaves nothing half-changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from ._capture import FRESH, segment
from .errors import MigrationInputError

__all__ = [
    "add_participant",
    "change_team_type",
    "legacy_team_state",
    "realign",
    "remove_participant",
    "rename_message_type",
    "rename_participant",
    "rename_tool",
    "reorder_participants",
    "replace_initial_messages",
]

ROUND_ROBIN = ("RoundRobinGroupChat", "RoundRobinGroupChatManager", "RoundRobinManagerState")
SELECTOR = ("SelectorGroupChat", "SelectorGroupChatManager", "SelectorManagerState")
_LEGACY_MANAGERS = {
    "RoundRobinManagerState": ROUND_ROBIN[1],
    "SelectorManagerState": SELECTOR[1],
    "SwarmManagerState": "SwarmGroupChatManager",
    "MagenticOneOrchestratorState": "MagenticOneOrchestrator",
}


def _dicts(tree: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside ``tree``."""
    if isinstance(tree, dict):
        node = cast("dict[str, Any]", tree)
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(tree, list):
        for value in cast("list[Any]", tree):
            yield from _dicts(value)


def _states(payload: dict[str, Any]) -> dict[str, Any] | None:
    """A team payload's ``agent_states`` (``None`` for an agent payload)."""
    team = payload.get("team")
    if not isinstance(team, dict):
        return None
    states = cast("dict[str, Any]", team).get("agent_states")
    return cast("dict[str, Any]", states) if isinstance(states, dict) else None


def _layout(payload: dict[str, Any]) -> dict[str, Any]:
    layout = payload.get("layout")
    if not isinstance(layout, dict):
        raise MigrationInputError("the checkpoint records no layout to migrate")
    return cast("dict[str, Any]", layout)


def _participants(payload: dict[str, Any]) -> list[str]:
    return [str(name) for name in cast("list[Any]", _layout(payload).get("participants", []))]


def _manager(payload: dict[str, Any]) -> dict[str, Any] | None:
    states, manager = _states(payload), _layout(payload).get("manager")
    if states is None or not isinstance(manager, str):
        return None
    state = states.get(manager)
    return cast("dict[str, Any]", state) if isinstance(state, dict) else None


def _require(payload: dict[str, Any], name: str) -> None:
    names = _participants(payload)
    if name not in names:
        raise MigrationInputError(
            f"participant {name!r} is not in the stored state (it holds {names})"
        )


def rename_participant(payload: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """Rename an agent: its state key, message sources and handoff targets, speaker fields."""
    _require(payload, old)
    if new in _participants(payload):
        raise MigrationInputError(f"participant {new!r} is already in the stored state")
    states = _states(payload)
    if states is not None:
        renamed = {(new if key == old else key): value for key, value in states.items()}
        states.clear()
        states.update(renamed)
    layout = _layout(payload)
    layout["participants"] = [new if name == old else name for name in _participants(payload)]
    for node in _dicts({k: v for k, v in payload.items() if k != "layout"}):
        if node.get("source") == old:
            node["source"] = new
        if node.get("type") == "HandoffMessage" and node.get("target") == old:
            node["target"] = new
    manager = _manager(payload)
    if manager is not None:
        for field in ("previous_speaker", "current_speaker"):
            if manager.get(field) == old:
                manager[field] = new
    extras = payload.get("extras")
    if isinstance(extras, dict):
        before, after = segment(old), segment(new)
        for paths in cast("dict[str, Any]", extras).values():
            if isinstance(paths, dict):
                mapping = cast("dict[str, Any]", paths)
                moved = {
                    (after + k[len(before) :] if k.startswith(before) else k): v
                    for k, v in mapping.items()
                }
                mapping.clear()
                mapping.update(moved)
    return payload


def add_participant(payload: dict[str, Any], name: str, *, prime: bool = False) -> dict[str, Any]:
    """Add an agent with the state it is built with; ``prime`` gives it the thread to read.

    A primed agent finds the conversation's messages in its buffer, as if it had listened
    all along, and reads them the next time it speaks.
    """
    states = _states(payload)
    if name in _participants(payload):
        raise MigrationInputError(f"participant {name!r} is already in the stored state")
    if states is not None:
        buffer: list[Any] = []
        manager = _manager(payload)
        if prime and manager is not None:
            thread = cast("list[Any]", manager.get("message_thread", []))
            buffer = [m for m in thread if not str(_type(m)).endswith("Event")]
        states[name] = {
            "type": "ChatAgentContainerState",
            "version": "1.0.0",
            "agent_state": dict(FRESH),
            "message_buffer": buffer,
        }
    layout = _layout(payload)
    layout["participants"] = [*_participants(payload), name]
    return payload


def remove_participant(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """Drop an agent's state; RoundRobin's next speaker stays the same agent (or the next)."""
    _require(payload, name)
    order = _participants(payload)
    survivors = [n for n in order if n != name]
    manager = _manager(payload)
    if manager is not None and "next_speaker_index" in manager and order:
        index = int(manager["next_speaker_index"]) % len(order)
        # the removed agent was next: the one after it speaks instead
        following = order[index:] + order[:index]
        nxt = next((n for n in following if n != name), None)
        manager["next_speaker_index"] = survivors.index(nxt) if nxt is not None else 0
    if manager is not None:
        if manager.get("previous_speaker") == name:
            manager["previous_speaker"] = None
        if manager.get("current_speaker") == name:
            manager["current_speaker"] = survivors[0] if survivors else ""
    states = _states(payload)
    if states is not None:
        states.pop(name, None)
    _layout(payload)["participants"] = survivors
    return payload


def realign(payload: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """Set the participants' order; RoundRobin's next speaker stays the same agent.

    AutoGen stores RoundRobin's next speaker as an index: kept as is, a new order would
    silently hand the turn to another agent.
    """
    current = _participants(payload)
    if sorted(current) != sorted(order):
        raise MigrationInputError(f"cannot order participants {current} as {order}")
    manager = _manager(payload)
    layout = _layout(payload)
    if (
        manager is not None
        and "next_speaker_index" in manager
        and current
        and layout.get("ordered", True)
    ):
        nxt = current[int(manager["next_speaker_index"]) % len(current)]
        manager["next_speaker_index"] = order.index(nxt)
    layout["participants"] = list(order)
    layout["ordered"] = True
    return payload


def reorder_participants(payload: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """Put the agents of ``order`` in that order (others, added earlier, keep their place)."""
    current = _participants(payload)
    rest = [n for n in current if n not in order]
    return realign(payload, [n for n in order if n in current] + rest)


def change_team_type(payload: dict[str, Any], new_type: str) -> dict[str, Any]:
    """Convert the manager between RoundRobin and Selector: its key and state shape.

    RoundRobin's next speaker index becomes Selector's previous speaker (the agent that
    spoke last), and back: the agent after the previous speaker is next.
    """
    layout, states = _layout(payload), _states(payload)
    old_type = layout.get("team_type")
    kinds = {ROUND_ROBIN[0]: ROUND_ROBIN, SELECTOR[0]: SELECTOR}
    if old_type not in kinds or new_type not in kinds or states is None:
        raise MigrationInputError(
            f"cannot convert a {old_type} into a {new_type}: only RoundRobinGroupChat <-> "
            "SelectorGroupChat is built in"
        )
    if old_type == new_type:
        return payload
    old_key = str(layout.get("manager"))
    state = cast("dict[str, Any]", states.pop(old_key, {}))
    order = _participants(payload)
    base = {
        "version": state.get("version", "1.0.0"),
        "message_thread": state.get("message_thread", []),
        "current_turn": state.get("current_turn", 0),
    }
    _, key, state_type = kinds[new_type]
    if new_type == SELECTOR[0]:
        spoken = [
            m.get("source")
            for m in cast("list[dict[str, Any]]", base["message_thread"])
            if m.get("source") in order
        ]
        converted = {"type": state_type, **base, "previous_speaker": spoken[-1] if spoken else None}
    else:
        previous = state.get("previous_speaker")
        index = (order.index(previous) + 1) % len(order) if previous in order else 0
        converted = {"type": state_type, **base, "next_speaker_index": index}
    states[key] = converted
    layout["team_type"], layout["manager"] = new_type, key
    return payload


def replace_initial_messages(
    payload: dict[str, Any], agent: str, old: list[Any], new: list[Any]
) -> dict[str, Any]:
    """Replace the ``old`` initial messages that open an agent's stored context by ``new``."""
    context = _context(payload, agent)
    messages = cast("list[Any]", context.get("messages", []))
    if messages[: len(old)] != old:
        raise MigrationInputError(
            f"the stored context of {agent!r} does not start with its old initial messages"
        )
    context["messages"] = list(new) + messages[len(old) :]
    return payload


def _context(payload: dict[str, Any], agent: str) -> dict[str, Any]:
    states = _states(payload)
    if states is not None:
        _require(payload, agent)
        state: Any = cast("dict[str, Any]", states[agent]).get("agent_state")
    else:
        state = payload.get("agent")
    context: Any = (
        cast("dict[str, Any]", state).get("llm_context") if isinstance(state, dict) else None
    )
    if not isinstance(context, dict):
        raise MigrationInputError(f"{agent!r} has no stored model context (llm_context)")
    return cast("dict[str, Any]", context)


def rename_tool(payload: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """Rename a tool in stored calls and results (contexts, thread, buffers, output)."""
    for node in _dicts(payload):
        if node.get("name") == old and ("arguments" in node or "call_id" in node):
            node["name"] = new
    return payload


def rename_message_type(payload: Any, old: str, new: str) -> bool:
    """Rename a message type in place: the ``type`` of every stored message (with a source).

    Returns whether any message was renamed.
    """
    renamed = False
    for node in _dicts(payload):
        if node.get("type") == old and "source" in node:
            node["type"] = new
            renamed = True
    return renamed


def _type(message: Any) -> Any:
    return cast("dict[str, Any]", message).get("type") if isinstance(message, dict) else None


def legacy_team_state(raw: dict[str, Any]) -> dict[str, Any]:
    """A ``TeamState`` from before autogen-agentchat 0.4.9, keyed by agent name.

    Before 0.4.9 the keys were agent ids, ``"<name>_<team_id>/<team_id>"`` (the manager's
    name being ``group_chat_manager``), and the state held ``team_id``. The manager's key
    is now its class name, told by its state's type; other runtime agents (the output
    collector) had no state of their own and are dropped.
    """
    team_id = raw.get("team_id")
    states = cast("dict[str, Any]", raw.get("agent_states", {}))
    if not isinstance(team_id, str) or not team_id:
        return raw
    suffix = f"_{team_id}/{team_id}"
    converted: dict[str, Any] = {}
    for key, state in states.items():
        if not key.endswith(suffix):
            converted[key] = state
            continue
        name = key[: -len(suffix)]
        manager = _LEGACY_MANAGERS.get(str(_type(state)))
        if manager is not None:
            converted[manager] = state
        elif _type(state) == "ChatAgentContainerState":
            converted[name] = state
    result = {k: v for k, v in raw.items() if k != "team_id"}
    result["agent_states"] = converted
    return result
