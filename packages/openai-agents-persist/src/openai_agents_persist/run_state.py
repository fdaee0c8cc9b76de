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
the agent graph's fingerprint. Loading it into a changed graph runs the registered
fingerprint-change handlers (:func:`.rename_agent`, :func:`.rename_tool`) and then refuses,
with :class:`.MissingAgentError` or :class:`.MissingToolError`, a state that still names an
agent or a tool the graph lacks.
"""

from __future__ import annotations

from typing import Any

from agents import Agent, RunResult, RunResultStreaming, RunState

from agent_persist import Envelope, Registry, Status, default_registry

from .checkpoints import RUN_STATE_KIND, producer
from .errors import MissingAgentError, MissingToolError
from .fingerprint import agent_fingerprint, agent_names, referenced_names, tool_names
from .plugin import register
from .session import StoreSession

__all__ = ["load_run_state", "pending_run_state", "save_run_state"]


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
    envelope = Envelope.create(
        kind=RUN_STATE_KIND,
        schema_version=1,
        thread_id=session.session_id,
        payload={"run_state": state.to_json() if pending else None},
        producer=producer(),
        fingerprint=agent_fingerprint(agent),
        status=Status.INTERRUPTED if pending else Status.DONE,
        stop_reason="tool approval" if pending else None,
        metadata=metadata,
    )
    return await session.put(envelope)


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
) -> RunState[Any, Any] | None:
    """The pending ``RunState`` of the session, migrated for ``agent``; ``None`` if none.

    Raises:
        MissingAgentError: The state names an agent the graph does not have.
        MissingToolError: A pending tool call names a tool no agent of the graph offers.
        FutureVersionError: A newer adapter saved it.
        MigrationError: A registered handler failed.
    """
    envelope = await pending_run_state(session)
    if envelope is None:
        return None
    registry = registry if registry is not None else default_registry()
    if RUN_STATE_KIND not in registry.kinds:
        register(registry)
    upgraded = registry.upgrade(envelope, fingerprint=agent_fingerprint(agent))
    state: dict[str, Any] = upgraded.payload["run_state"]
    needed_agents, needed_tools = referenced_names(state)
    where = f"session {session.session_id!r}, checkpoint {envelope.checkpoint_id!r}"
    if missing := needed_agents - agent_names(agent):
        raise MissingAgentError(missing, agent_names(agent), where=where)
    if missing := needed_tools - tool_names(agent):
        raise MissingToolError(missing, tool_names(agent), where=where)
    return await RunState.from_json(agent, state)
