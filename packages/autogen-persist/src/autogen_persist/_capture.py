"""Read a live team's state without re-serialising its history; restore what AutoGen omits.

    tree, extras = await capture_team(team)        # TeamState shape, big lists as Tracked
    await team.load_state(full_team_state)         # AutoGen's own load
    await restore_extras(team, extras)             # GraphFlow activation groups, SoM contexts

``team.save_state()`` dumps the whole transcript and every model context on each call, so
a checkpoint per turn would cost O(history) in time. Instead the group chat manager's
thread, each container's buffer and each agent's model context are handed over as live
lists (:class:`~autogen_persist._logs.Tracked`) and only their new items are dumped; the
rest is the manager's and agents' own ``save_state`` run with those lists swapped out for
an instant. The swap is safe because the known ``save_state`` methods never suspend.

AutoGen exposes no public hook for any of this, so this module reads private attributes of
autogen-agentchat 0.7 (the dependency is pinned to ``<0.8``); anything it does not know
(a custom agent, a custom model context) is saved whole with its own ``save_state``.
"""

# pyright: reportPrivateUsage=false

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from autogen_agentchat.agents import AssistantAgent, SocietyOfMindAgent
from autogen_agentchat.base import ChatAgent, Team
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_agentchat.state import (
    AssistantAgentState,
    ChatAgentContainerState,
    SocietyOfMindAgentState,
    TeamState,
)
from autogen_agentchat.teams import BaseGroupChat
from autogen_agentchat.teams._group_chat._graph._digraph_group_chat import GraphFlowManager
from autogen_agentchat.teams._group_chat._magentic_one._magentic_one_orchestrator import (
    MagenticOneOrchestrator,
)
from autogen_agentchat.teams._group_chat._round_robin_group_chat import (
    RoundRobinGroupChatManager,
)
from autogen_agentchat.teams._group_chat._selector_group_chat import SelectorGroupChatManager
from autogen_agentchat.teams._group_chat._swarm_group_chat import SwarmGroupChatManager
from autogen_core import Agent, AgentId
from autogen_core.model_context import ChatCompletionContext, ChatCompletionContextState
from autogen_core.models import LLMMessage

from agent_persist import canonical_json

from ._logs import Tracked
from .errors import UnsupportedComponentError

__all__ = [
    "FRESH",
    "build_agents",
    "capture_agent",
    "capture_team",
    "dump_messages",
    "fill_fresh",
    "manager_instance",
    "restore_agent_extras",
    "restore_extras",
    "segment",
]

_HOLLOW_MANAGERS = (
    RoundRobinGroupChatManager,
    SelectorGroupChatManager,
    SwarmGroupChatManager,
    GraphFlowManager,
    MagenticOneOrchestrator,
)

FRESH = {"$fresh": True}
"""The agent state of a participant added by a migration: :func:`fill_fresh` replaces it by
the new agent's own state (its ``initial_messages`` included), which only it knows."""

ACTIVATION_GROUPS = "activation_groups"
MODEL_CONTEXTS = "model_contexts"


def _json(value: Any) -> Any:
    return json.loads(canonical_json(value, what="AutoGen state"))


def segment(name: str) -> str:
    """An agent name as one segment of a log name (``/`` and ``%`` escaped)."""
    return name.replace("%", "%25").replace("/", "%2F") + "/"


def dump_messages(messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> list[Any]:
    """Chat messages and events as AutoGen saves them (``message.dump()``)."""
    return [_json(message.dump()) for message in messages]


def _dump_llm(messages: Sequence[LLMMessage]) -> list[Any]:
    return ChatCompletionContextState(messages=list(messages)).model_dump(mode="json")["messages"]


def _own(instance: object, base: type, method: str) -> bool:
    """Whether ``instance`` uses ``base``'s implementation of ``method`` unchanged."""
    return getattr(type(instance), method, None) is getattr(base, method)


def require_group_chat(team: Team) -> BaseGroupChat:
    """The team as a group chat, or ``UnsupportedComponentError``."""
    if not isinstance(team, BaseGroupChat):
        raise UnsupportedComponentError(
            f"{type(team).__qualname__} is not an AutoGen group chat (BaseGroupChat); "
            "only group chat teams can be made durable"
        )
    return team


async def _instance(team: BaseGroupChat, topic: str) -> Any:
    if not team._initialized:
        await team._init(team._runtime)
    runtime = team._runtime
    # ``type=object``: the default (AutoGen's runtime-checkable ``Agent`` protocol) makes
    # each lookup an isinstance check over the protocol's members, a quarter of a
    # millisecond per checkpoint; the objects are the team's own containers either way.
    agent_id = AgentId(type=topic, key=team._team_id)
    anything = cast("type[Agent]", object)
    return await runtime.try_get_underlying_agent_instance(agent_id, type=anything)


async def manager_instance(team: BaseGroupChat) -> Any:
    """The team's group chat manager object (the runtime builds it on first use)."""
    return await _instance(team, team._group_chat_manager_topic_type)


async def _containers(team: BaseGroupChat) -> list[tuple[str, Any]]:
    return [
        (name, await _instance(team, topic))
        for name, topic in zip(team._participant_names, team._participant_topic_types, strict=True)
    ]


async def build_agents(team: BaseGroupChat) -> None:
    """Have the runtime build the team's participants and manager, as their first use would."""
    await _containers(team)
    await manager_instance(team)


class _Capture:
    def __init__(self) -> None:
        self.extras: dict[str, dict[str, Any]] = {ACTIVATION_GROUPS: {}, MODEL_CONTEXTS: {}}

    async def team(self, team: Team, path: str) -> dict[str, Any]:
        group = require_group_chat(team)
        states: dict[str, Any] = {}
        for name, container in await _containers(group):
            state = ChatAgentContainerState().model_dump()
            agent_path = path + segment(name)
            state["agent_state"] = await self.agent(container._agent, agent_path)
            state["message_buffer"] = Tracked(
                agent_path + "buffer", container._message_buffer, dump_messages
            )
            states[name] = state
        manager = await manager_instance(group)
        states[group._group_chat_manager_name] = await self.manager(manager, path)
        tree = TeamState().model_dump()
        tree["agent_states"] = states
        return tree

    async def manager(self, manager: Any, path: str) -> dict[str, Any]:
        thread = manager._message_thread
        if isinstance(manager, _HOLLOW_MANAGERS):
            manager._message_thread = []
            try:
                state = _json(await manager.save_state())
            finally:
                manager._message_thread = thread
        else:
            state = _json(await manager.save_state())
        state["message_thread"] = Tracked(path + "thread", thread, dump_messages)
        if isinstance(manager, GraphFlowManager):
            groups: dict[str, set[str]] = manager._triggered_activation_groups
            self.extras[ACTIVATION_GROUPS][path] = {k: sorted(v) for k, v in groups.items()}
        return state

    async def agent(self, agent: ChatAgent | Team, path: str) -> Any:
        if isinstance(agent, Team):
            return await self.team(agent, path)
        if isinstance(agent, AssistantAgent) and _own(agent, AssistantAgent, "save_state"):
            state = AssistantAgentState().model_dump()
            state["llm_context"] = await _context(agent._model_context, path + "context")
            return state
        if isinstance(agent, SocietyOfMindAgent) and _own(agent, SocietyOfMindAgent, "save_state"):
            state = SocietyOfMindAgentState().model_dump()
            state["inner_team_state"] = await self.team(agent._team, path)
            self.extras[MODEL_CONTEXTS][path] = await _context(
                agent._model_context, path + "som_context"
            )
            return state
        return _json(await agent.save_state())


async def _context(context: ChatCompletionContext, name: str) -> Any:
    """A model context's state with its message list tracked (or whole, if unknown)."""
    if _own(context, ChatCompletionContext, "save_state"):
        return {"messages": Tracked(name, context._messages, _dump_llm)}
    return _json(await context.save_state())


async def capture_team(team: Team) -> tuple[dict[str, Any], dict[str, Any]]:
    """The team's ``TeamState`` with its growing lists tracked, and the extras AutoGen omits."""
    capture = _Capture()
    tree = await capture.team(team, "")
    return tree, capture.extras


async def capture_agent(agent: ChatAgent) -> tuple[Any, dict[str, Any]]:
    """An agent's state with its model context tracked, and the extras AutoGen omits."""
    capture = _Capture()
    tree = await capture.agent(agent, "")
    return tree, capture.extras


async def restore_extras(team: Team, extras: Any, path: str = "") -> None:
    """Put back what ``load_state`` does not restore, into a team loaded from a checkpoint."""
    if not isinstance(extras, dict):
        return
    saved = cast("dict[str, Any]", extras)
    group = require_group_chat(team)
    manager = await manager_instance(group)
    groups = saved.get(ACTIVATION_GROUPS, {}).get(path)
    if isinstance(manager, GraphFlowManager) and isinstance(groups, dict):
        manager._triggered_activation_groups = {
            str(k): set(cast("list[str]", v)) for k, v in cast("dict[str, Any]", groups).items()
        }
    for name, container in await _containers(group):
        await restore_agent_extras(container._agent, saved, path + segment(name))


async def restore_agent_extras(agent: ChatAgent | Team, extras: Any, path: str = "") -> None:
    """The agent-level half of :func:`restore_extras` (SocietyOfMind model contexts)."""
    if not isinstance(extras, dict):
        return
    saved = cast("dict[str, Any]", extras)
    if isinstance(agent, Team):
        await restore_extras(agent, saved, path)
    elif isinstance(agent, SocietyOfMindAgent):
        context = saved.get(MODEL_CONTEXTS, {}).get(path)
        if isinstance(context, dict):
            await agent._model_context.load_state(cast("dict[str, Any]", context))
        await restore_extras(agent._team, saved, path)


async def fill_fresh(team: Team, state: dict[str, Any]) -> None:
    """Give each participant a migration added (:data:`FRESH`) its own freshly built state."""
    states = state.get("agent_states")
    if not isinstance(states, dict):
        return
    group = require_group_chat(team)
    for name, container in await _containers(group):
        entry = cast("dict[str, Any]", states).get(name)
        if isinstance(entry, dict) and cast("dict[str, Any]", entry).get("agent_state") == FRESH:
            cast("dict[str, Any]", entry)["agent_state"] = _json(
                await container._agent.save_state()
            )
