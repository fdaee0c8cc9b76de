"""The ``agent_persist.plugins`` entry point: the AutoGen kinds and their migrations.

    registry = Registry()
    register(registry)          # what default_registry() does for every installed adapter
    envelope = registry.upgrade(registry.adopt(json.load(open("team.json")), thread_id="t"))

Raw ``json.dump(await team.save_state())`` files (a ``TeamState``) and agent state files
(``AssistantAgentState``, ``SocietyOfMindAgentState``, ...) are recognised and adopted as
schema version 0; the 0 -> 1 migration wraps them, lists inline, into the version-1 payload,
so every reader of the current version reads them too. A ``TeamState`` from before
autogen-agentchat 0.4.9 (agent-id keys and a ``team_id``) is re-keyed by agent name on the way.

Configuration changes that need no state change get a built-in no-op migration, so the
default ``migrate`` policy loads them: :data:`NO_STATE_CHANGE`.
"""

from __future__ import annotations

from typing import Any, cast

from agent_persist import Registry

from ._layout import layout_of_raw_team
from ._payload import SCHEMA_VERSION, AgentPayload, TeamPayload
from ._transforms import legacy_team_state

__all__ = ["KIND_AGENT", "KIND_TEAM", "NO_STATE_CHANGE", "ensure_registered", "register"]

KIND_TEAM = "autogen.team"
KIND_AGENT = "autogen.agent"

NO_STATE_CHANGE = ("system message changed", "model changed", "tool added")
"""Changes AutoGen's state does not depend on: the system message is not stored (it is
prepended at call time, so the new one applies), the model client is not part of the
state, and a new tool is simply offered from the next call on."""


def no_state_change(payload: Any, change: Any) -> Any:
    """The built-in migration of :data:`NO_STATE_CHANGE`: the state stays as it is."""
    return payload


def is_raw_team_state(raw: Any) -> bool:
    """A ``TeamState`` dump: ``agent_states`` and the ``TeamState`` type (or no type)."""
    return (
        isinstance(raw, dict)
        and isinstance(cast("dict[str, Any]", raw).get("agent_states"), dict)
        and cast("dict[str, Any]", raw).get("type", "TeamState") == "TeamState"
    )


def is_raw_agent_state(raw: Any) -> bool:
    """An agent state dump: a ``type`` ending in ``AgentState``."""
    if not isinstance(raw, dict):
        return False
    kind = cast("dict[str, Any]", raw).get("type")
    return isinstance(kind, str) and kind.endswith("AgentState")


def team_from_raw(raw: Any) -> Any:
    """Migration 0 -> 1 of ``autogen.team``: a raw ``TeamState`` becomes a v1 payload."""
    state: Any = raw
    if isinstance(raw, dict) and "team_id" in raw:
        state = legacy_team_state(cast("dict[str, Any]", raw))
    layout = layout_of_raw_team(state)
    return {"team": state, "layout": None if layout is None else layout.model_dump()}


def agent_from_raw(raw: Any) -> Any:
    """Migration 0 -> 1 of ``autogen.agent``: a raw agent state becomes a v1 payload."""
    return {"agent": raw}


def register(registry: Registry) -> None:
    """Register the AutoGen kinds, their recognisers and migrations in ``registry``."""
    registry.register_kind(
        KIND_TEAM,
        version=SCHEMA_VERSION,
        recognize=is_raw_team_state,
        validate=TeamPayload.model_validate,
    )
    registry.register_kind(
        KIND_AGENT,
        version=SCHEMA_VERSION,
        recognize=is_raw_agent_state,
        validate=AgentPayload.model_validate,
    )
    registry.register(KIND_TEAM, 0, 1)(team_from_raw)
    registry.register(KIND_AGENT, 0, 1)(agent_from_raw)
    for kind in (KIND_TEAM, KIND_AGENT):
        registry.on_fingerprint_change(kind, covers=NO_STATE_CHANGE)(no_state_change)


def ensure_registered(registry: Registry) -> Registry:
    """``registry`` with the AutoGen kinds in it (when the entry point was not installed)."""
    if KIND_TEAM not in registry.kinds:
        register(registry)
    return registry
