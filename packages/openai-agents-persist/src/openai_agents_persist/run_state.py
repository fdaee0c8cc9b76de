"""Human-in-the-loop across processes: a run waiting for tool approval, saved and resumed.

    result = await Runner.run(agent, "delete a.txt", session=session)
    if result.interruptions:
        await save_run_state(session, result, agent)      # then the process may exit

    # later, in another process
    state = await load_run_state(session, agent)          # None when nothing is pending
    for item in state.get_interruptions():
        state.approve(item)
    result = await Runner.run(agent, state, session=session)
    await save_run_state(session, result, agent)          # marks the run done (or pending again)

The state is an ``openai_agents.run_state`` envelope in the session's own history, carrying
the agent graph's fingerprint; the graph's configuration goes to the session's ``config`` log
(once per distinct configuration). Loading it into a changed graph diffs the two
configurations field by field (:func:`.config_changes`) and applies the ``drift`` policy:
``migrate`` (the default) loads changes that need nothing from the saved state (new
instructions, models, model settings, tools) and declared renames (:func:`.rename_agent`,
:func:`.rename_tool`), and refuses the rest with ``ConfigDriftError``; ``strict`` refuses any
change; ``accept`` loads as is. A state that still names an agent or a tool the graph lacks
is then refused with :class:`.MissingAgentError` or :class:`.MissingToolError`.
"""

from __future__ import annotations

import logging
from typing import Any

from agents import Agent, RunResult, RunResultStreaming, RunState

from agent_persist import (
    JSON,
    DriftPolicy,
    Envelope,
    Registry,
    Status,
    config_appends,
    default_registry,
    fingerprint,
    saved_config,
)
from agent_persist.drift import CONFIG_LOG, DriftOption, drift_policy
from agent_persist.telemetry import resuming

from .checkpoints import RUN_STATE_KIND, producer
from .drift import config_changes, config_names
from .errors import MissingAgentError, MissingToolError, UnknownRenameError
from .fingerprint import agent_config, agent_names, referenced_names, tool_names
from .plugin import ensure_registered
from .session import StoreSession

__all__ = ["load_run_state", "pending_run_state", "save_run_state"]

logger = logging.getLogger("openai_agents_persist")


async def save_run_state(
    session: StoreSession,
    result: RunResult | RunResultStreaming | RunState[Any, Any],
    agent: Agent[Any],
    *,
    metadata: dict[str, Any] | None = None,
) -> Envelope:
    """Record the run's outcome as the session's next checkpoint.

    With pending interruptions the full ``RunState`` is stored (status ``interrupted``);
    without, a small ``done`` marker closes any earlier pending state.
    """
    state = result if isinstance(result, RunState) else result.to_state()
    pending = bool(state.get_interruptions())
    config = agent_config(agent)
    graph = fingerprint(config)
    logs = await _config_logs(session, graph, config) if pending else {}
    envelope = Envelope.create(
        kind=RUN_STATE_KIND,
        schema_version=1,
        thread_id=session.session_id,
        payload={"run_state": state.to_json() if pending else None},
        producer=producer(),
        fingerprint=graph,
        status=Status.INTERRUPTED if pending else Status.DONE,
        stop_reason="tool approval" if pending else None,
        metadata=metadata,
    )
    return await session.put(envelope, logs=logs)


async def _config_logs(
    session: StoreSession, graph: str, config: list[dict[str, Any]]
) -> dict[str, list[JSON]]:
    """The ``config`` log append, unless the last configuration recorded is this one."""
    last = await session.store.tail(session.session_id, CONFIG_LOG, 1)
    if last and isinstance(last[0], dict) and last[0].get("fingerprint") == graph:
        return {}
    return config_appends(None, fingerprint=graph, config=config)


async def pending_run_state(session: StoreSession) -> Envelope | None:
    """The session's head if it is a run waiting for approval, else ``None``."""
    head = await session.head()
    if head is None or head.kind != RUN_STATE_KIND or head.status is not Status.INTERRUPTED:
        return None
    return head


async def load_run_state(
    session: StoreSession,
    agent: Agent[Any],
    *,
    registry: Registry | None = None,
    drift: DriftOption = DriftPolicy.MIGRATE,
) -> RunState[Any, Any] | None:
    """The pending ``RunState`` of the session, migrated for ``agent``; ``None`` if none.

    Nothing is written: the migrated state lives in memory until the resumed run saves.

    Args:
        session: The session the run was saved in.
        agent: The starting agent of the graph that resumes it.
        registry: Where renames and other handlers are registered (the process-wide one).
        drift: ``"migrate"``, ``"strict"`` or ``"accept"`` (see the module docstring).

    Raises:
        ConfigDriftError: The graph changed in a way the policy refuses; lists the changes.
        UnknownRenameError: A declared rename's old name is not in the saved configuration.
        MissingAgentError: The state names an agent the graph does not have.
        MissingToolError: A pending tool call names a tool no agent of the graph offers.
        FutureVersionError: A newer adapter saved it.
        MigrationError: A registered handler failed.
    """
    policy = drift_policy(drift)
    with resuming(logger, kind=RUN_STATE_KIND, thread_id=session.session_id) as resume:
        envelope = await pending_run_state(session)
        if envelope is None:
            return None
        registry = registry if registry is not None else default_registry()
        ensure_registered(registry)
        where = f"session {session.session_id!r}, checkpoint {envelope.checkpoint_id!r}"
        upgraded = await _upgrade(session, envelope, agent, registry, policy, where=where)
        state: dict[str, Any] = upgraded.payload["run_state"]
        needed_agents, needed_tools = referenced_names(state)
        if missing := needed_agents - agent_names(agent):
            raise MissingAgentError(missing, agent_names(agent), where=where)
        if missing := needed_tools - tool_names(agent):
            raise MissingToolError(missing, tool_names(agent), where=where)
        run_state = await RunState.from_json(agent, state)
        resume.found(envelope)
        return run_state


async def _upgrade(
    session: StoreSession,
    envelope: Envelope,
    agent: Agent[Any],
    registry: Registry,
    policy: DriftPolicy,
    *,
    where: str,
) -> Envelope:
    """The envelope migrated under ``policy`` for the graph of ``agent``."""
    config = agent_config(agent)
    graph = fingerprint(config)
    if envelope.fingerprint is None or envelope.fingerprint == graph:
        return registry.upgrade(envelope, fingerprint=graph, policy=policy)
    old = await saved_config(session.store, envelope)
    if old is None:  # saved before configurations were recorded: nothing to diff against
        legacy = None if policy is DriftPolicy.MIGRATE else policy
        return registry.upgrade(envelope, fingerprint=graph, policy=legacy)
    renames = registry.renames(RUN_STATE_KIND)
    agents, tools = renames.get("agent", []), renames.get("tool", [])
    if policy is DriftPolicy.MIGRATE:
        _check_renames(old, config, agents, tools, where=where)
    changes = config_changes(old, config, agents=agents, tools=tools)
    if not changes:  # only the hash changed (another fingerprint algorithm): no drift
        return registry.upgrade(envelope, fingerprint=envelope.fingerprint, policy=policy)
    return registry.upgrade(envelope, fingerprint=graph, changes=changes, policy=policy)


def _check_renames(
    old: Any,
    new: Any,
    agents: list[tuple[str, str]],
    tools: list[tuple[str, str]],
    *,
    where: str,
) -> None:
    """Refuse a rename into this graph whose old name the saved configuration lacks."""
    (old_agents, old_tools), (new_agents, new_tools) = config_names(old), config_names(new)
    for what, renames, before, after in (
        ("agent", agents, old_agents, new_agents),
        ("tool", tools, old_tools, new_tools),
    ):
        chained = {target for _, target in renames}  # b in a -> b, b -> c: not checked
        for old_name, new_name in renames:
            arrived = new_name in after and new_name not in before
            if arrived and old_name not in before and old_name not in chained:
                raise UnknownRenameError(what, old_name, new_name, before, where=where)
