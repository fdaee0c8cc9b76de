"""Save and load a team or an agent by hand, as envelopes with logs (the seed pattern).

    await save_agent(store, "user-42", agent)          # after each run
    agent = build_agent()
    await load_agent(store, "user-42", agent)          # in the next process
    await load_agent("sqlite:///agents.db", "user-42", agent)   # or a URL: opened, then closed

This is the ``json.dump(await agent.save_state())`` habit made durable: each save is an
envelope (kind, schema version, fingerprint, producer versions) in the thread's history, the
model context and transcript go to append-only logs so a save stores only what is new, and a
load checks the checkpoint fits. Saving compares the live lists with the stored ones by
content, so it costs O(history) in time; :class:`~autogen_persist.DurableAgent` and
:class:`~autogen_persist.DurableTeam` keep that O(new) as well. Save a team only when it is
not running (between runs): AutoGen's state is not consistent mid-run (FINDINGS §1).
"""

# pyright: reportPrivateUsage=false

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autogen_agentchat.base import ChatAgent, Team

from agent_persist import DriftPolicy, Envelope, Registry, Status, default_registry, fingerprint
from agent_persist.drift import DriftOption, drift_policy
from agent_persist.stores import StoreOrURL, opened_store

from ._capture import capture_agent, capture_team, require_group_chat
from ._checkpoints import find_head, write_checkpoint
from ._layout import Layout, agent_layout, team_layout
from ._load import load_checkpoint
from ._logs import LogTracker, find_refs
from ._plugin import KIND_AGENT, KIND_TEAM, ensure_registered
from ._termination import check_supported, load_condition, save_condition
from .agent import load_agent_checkpoint
from .drift import drift_config
from .team import load_team_checkpoint

__all__ = ["load_agent", "load_team", "save_agent", "save_team"]


async def _save(
    store: StoreOrURL,
    thread_id: str,
    *,
    kind: str,
    component: Team | ChatAgent,
    layout: Layout,
    tree: dict[str, Any],
    registry: Registry | None,
    status: Status,
    metadata: Mapping[str, Any] | None,
) -> Envelope:
    registry = ensure_registered(registry or default_registry())
    config = drift_config(component, layout)
    async with opened_store(store) as checkpoints:
        head = await find_head(checkpoints, thread_id, kind=kind, registry=registry)
        tracker = LogTracker()
        if head is not None:
            # the state written is the live object's own: it fits by construction, and a list
            # that differs from the stored one is rewritten whole
            tracker.remember_all(tree, find_refs(head.payload), verify=True)
        planned, appends = await tracker.plan(
            tree, lambda name: checkpoints.log_length(thread_id, name)
        )
        return await write_checkpoint(
            checkpoints,
            head,
            thread_id=thread_id,
            kind=kind,
            payload=planned,
            appends=appends,
            fingerprint=fingerprint(config["component"]),
            config=config,
            status=status,
            metadata=metadata,
        )


async def save_team(
    store: StoreOrURL,
    thread_id: str,
    team: Team,
    *,
    registry: Registry | None = None,
    status: Status = Status.DONE,
    metadata: Mapping[str, Any] | None = None,
) -> Envelope:
    """Checkpoint a team that is not running: its state, termination state and layout.

    ``store`` is a store, or a URL opened (and set up) for this call and closed after it.
    """
    group = require_group_chat(team)
    tree, extras = await capture_team(group)
    layout = team_layout(group)
    condition = group._termination_condition
    termination = None
    if condition is not None:
        check_supported(condition)
        termination = save_condition(condition)
    return await _save(
        store,
        thread_id,
        kind=KIND_TEAM,
        component=group,
        tree={
            "team": tree,
            "extras": extras,
            "layout": layout.model_dump(),
            "termination": termination,
        },
        layout=layout,
        registry=registry,
        status=status,
        metadata=metadata,
    )


async def load_team(
    store: StoreOrURL,
    thread_id: str,
    team: Team,
    *,
    checkpoint_id: str | None = None,
    registry: Registry | None = None,
    drift: DriftOption = DriftPolicy.MIGRATE,
) -> Envelope:
    """Load the thread's head (or a checkpoint) into a freshly built team; return it.

    ``store`` is a store, or a URL opened for this call and closed after it.

    ``drift`` is the policy for a team configured differently from the one that wrote the
    checkpoint (see :class:`~autogen_persist.DurableTeam`); migrations run on the loaded
    state, nothing stored changes (the next save writes the migrated state).

    Raises ``ThreadNotFoundError``, ``KindMismatchError``, ``ConfigDriftError`` (with
    ``ParticipantsMismatchError`` for layout changes), ``MigrationError``,
    ``CorruptCheckpointError`` or ``FutureVersionError``; the team is untouched then, apart
    from ``IncompatibleCheckpointError`` raised by AutoGen's own load half-way (build a new
    team before trying again).
    """
    group = require_group_chat(team)
    registry = ensure_registered(registry or default_registry())
    layout = team_layout(group)
    async with opened_store(store) as checkpoints:
        loaded = await load_checkpoint(
            checkpoints,
            thread_id,
            kind=KIND_TEAM,
            registry=registry,
            config=drift_config(group, layout),
            layout=layout,
            policy=drift_policy(drift),
            checkpoint_id=checkpoint_id,
        )
    payload, _ = await load_team_checkpoint(group, loaded, layout=layout)
    condition = group._termination_condition
    if condition is not None and payload.termination is not None:
        load_condition(condition, payload.termination)
    return loaded.head


async def save_agent(
    store: StoreOrURL,
    thread_id: str,
    agent: ChatAgent,
    *,
    registry: Registry | None = None,
    status: Status = Status.DONE,
    metadata: Mapping[str, Any] | None = None,
) -> Envelope:
    """Checkpoint an agent (after a run): its state, with the model context in a log.

    ``store`` is a store, or a URL opened for this call and closed after it.
    """
    tree, extras = await capture_agent(agent)
    layout = agent_layout(agent)
    return await _save(
        store,
        thread_id,
        kind=KIND_AGENT,
        component=agent,
        tree={"agent": tree, "extras": extras, "layout": layout.model_dump()},
        layout=layout,
        registry=registry,
        status=status,
        metadata=metadata,
    )


async def load_agent(
    store: StoreOrURL,
    thread_id: str,
    agent: ChatAgent,
    *,
    checkpoint_id: str | None = None,
    registry: Registry | None = None,
    drift: DriftOption = DriftPolicy.MIGRATE,
) -> Envelope:
    """Load the thread's head (or a checkpoint) into ``agent``; return the checkpoint.

    Takes ``store`` (a store or a URL) and ``drift``, and raises, as :func:`load_team` does.
    """
    registry = ensure_registered(registry or default_registry())
    async with opened_store(store) as checkpoints:
        loaded = await load_checkpoint(
            checkpoints,
            thread_id,
            kind=KIND_AGENT,
            registry=registry,
            config=drift_config(agent, agent_layout(agent)),
            layout=agent_layout(agent),
            policy=drift_policy(drift),
            checkpoint_id=checkpoint_id,
        )
    await load_agent_checkpoint(agent, loaded)
    return loaded.head
