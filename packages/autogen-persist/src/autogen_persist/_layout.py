"""What must not change between a checkpoint and the team (or agent) that loads it.

    layout = team_layout(team)                  # team type, manager key, participants in order
    check_layout(saved, layout, where="thread 't-1'")   # ParticipantsMismatchError if they differ
    print(config_fingerprint(team))             # sha256 of dump_component(): prompts, tools, model

The fingerprint changes with any configuration edit (a prompt, a tool, the model); the
configuration and the layout are recorded in the thread's ``config`` log and compared on
every load (:mod:`autogen_persist.drift`). The layout is what AutoGen itself cannot load
across (FINDINGS §1 compatibility matrix): another team type, an added, removed or renamed
participant, or a new order, which RoundRobin would silently follow to another speaker.
Unless a migration carried the state across, :func:`check_layout` refuses them.
"""

# pyright: reportPrivateUsage=false

from __future__ import annotations

import warnings
from typing import Any, cast

from autogen_agentchat.base import ChatAgent, Team
from autogen_agentchat.teams import BaseGroupChat
from pydantic import BaseModel, ConfigDict

from agent_persist import fingerprint

from .errors import ParticipantsMismatchError

__all__ = [
    "Layout",
    "agent_layout",
    "check_layout",
    "component_config",
    "config_fingerprint",
    "layout_problems",
    "team_layout",
]

MANAGER_TEAMS = {
    "RoundRobinGroupChatManager": "RoundRobinGroupChat",
    "SelectorGroupChatManager": "SelectorGroupChat",
    "SwarmGroupChatManager": "Swarm",
    "GraphManager": "GraphFlow",
    "MagenticOneOrchestrator": "MagenticOneGroupChat",
}
"""AutoGen's manager keys in ``TeamState.agent_states``, and the team each belongs to."""


class Layout(BaseModel):
    """The structure a checkpoint fits: a team's type, manager and participants, in order.

    For a single agent, ``team_type`` is the agent's class and ``participants`` its name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    team_type: str
    manager: str | None
    participants: list[str]
    ordered: bool = True
    """``False`` for adopted raw state: JSON objects do not keep the participants' order."""


def team_layout(team: BaseGroupChat) -> Layout:
    """The layout of a freshly built group chat."""
    return Layout(
        team_type=type(team).__name__,
        manager=team._group_chat_manager_name,
        participants=list(team._participant_names),
    )


def agent_layout(agent: ChatAgent) -> Layout:
    """The layout of a single agent: its class and name."""
    return Layout(team_type=type(agent).__name__, manager=None, participants=[agent.name])


def layout_of_raw_team(state: Any) -> Layout | None:
    """The layout a raw ``TeamState`` implies, if its manager key is a known one."""
    if not isinstance(state, dict):
        return None
    agent_states = cast("dict[str, Any]", state).get("agent_states")
    if not isinstance(agent_states, dict):
        return None
    names = [str(name) for name in cast("dict[str, Any]", agent_states)]
    managers = [name for name in names if name in MANAGER_TEAMS]
    if len(managers) != 1:
        return None
    return Layout(
        team_type=MANAGER_TEAMS[managers[0]],
        manager=managers[0],
        participants=sorted(name for name in names if name != managers[0]),
        ordered=False,
    )


def check_layout(saved: Layout | None, current: Layout, *, where: str) -> None:
    """Raise ``ParticipantsMismatchError`` when ``current`` cannot load ``saved``'s state.

    The loaders call it after the drift migrations ran, on the migrated layout: a layout
    that still differs then is one no migration carried across.
    """
    problems = layout_problems(saved, current)
    if problems:
        raise ParticipantsMismatchError(
            f"{where} does not fit this team: {'; '.join(problems)}. Build the team as it "
            "was, or declare the change (autogen_persist.migrations) or register a migration "
            "with Registry.on_fingerprint_change('autogen.team', covers=[...])"
        )


def layout_problems(saved: Layout | None, current: Layout) -> list[str]:
    """How ``current`` differs from ``saved``, in words; empty when it fits."""
    if saved is None or saved == current:
        return []
    if not saved.ordered:
        current = current.model_copy(
            update={"participants": sorted(current.participants), "ordered": False}
        )
        if saved == current:
            return []
    problems: list[str] = []
    if saved.team_type != current.team_type or saved.manager != current.manager:
        problems.append(f"it was written by a {saved.team_type}, this is a {current.team_type}")
    old, new = saved.participants, current.participants
    if set(old) - set(new):
        problems.append(f"missing participants {sorted(set(old) - set(new))}")
    if set(new) - set(old):
        problems.append(f"new participants {sorted(set(new) - set(old))}")
    if set(old) == set(new) and old != new:
        problems.append(f"participants reordered from {old} to {new}")
    return problems


def config_fingerprint(component: Team | ChatAgent) -> str:
    """The fingerprint of :func:`component_config`: prompts, tools, participants, model."""
    return fingerprint(component_config(component))


def component_config(component: Team | ChatAgent) -> Any:
    """``dump_component()`` as JSON, or the structure when it cannot dump.

    Components that cannot be serialised (callables in a graph, custom agents) fall back to
    the class and participant names; AutoGen's warnings about them are not the user's concern
    here, so they are silenced.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config: Any = component.dump_component().model_dump(mode="json")  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    except Exception:
        config = {"provider": type(component).__qualname__, "name": component.name}
        if isinstance(component, BaseGroupChat):
            config["participants"] = list(component._participant_names)
    return config
