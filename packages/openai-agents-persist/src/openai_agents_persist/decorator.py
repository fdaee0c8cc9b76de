"""A decorator that makes the user's async run function durable.

    @durable(store=store, agent=agent, state=lambda ctx: ctx.context.snapshot())
    async def chat(session: StoreSession, user_input: str | RunState) -> RunResult:
        return await Runner.run(agent, user_input, session=session, context=MyContext())

    result = await chat("user-1", "delete a.txt")         # stops for approval, state saved
    # ...the process may exit here...
    result = await chat("user-1", approve=lambda item: item.name == "delete_file")

It supplies the session (checkpointing after every turn), saves the ``RunState`` when the
run stops for approval, and on the next call resumes that pending run with the decisions of
``approve`` instead of starting a new one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from agents import Agent, RunResult, RunState, ToolApprovalItem, TResponseInputItem

from agent_persist import BaseStore, DriftPolicy, Registry
from agent_persist.drift import DriftOption, drift_policy
from agent_persist.stores import opened_store

from ._deprecated import warn_renamed
from .checkpoints import StateHook
from .errors import PendingInterruptionError
from .run_state import load_run_state, save_run_state
from .session import StoreSession

__all__ = ["Approver", "DurableRun", "RunFunction", "durable"]

Approver: TypeAlias = Callable[[ToolApprovalItem], "bool | Awaitable[bool]"]
"""Decides one pending tool call: ``True`` approves it, ``False`` rejects it."""

RunInput: TypeAlias = "str | list[TResponseInputItem] | RunState[Any, Any]"
RunFunction: TypeAlias = Callable[[StoreSession, Any], Awaitable[RunResult]]
"""The user's function: runs the agent on the input with the session it is given."""
DurableRun: TypeAlias = Callable[..., Awaitable[RunResult]]
"""``await run(session_id, input=None, *, approve=None)``."""


async def _decide(state: RunState[Any, Any], approve: Approver) -> None:
    for item in state.get_interruptions():
        verdict = approve(item)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict:
            state.approve(item)
        else:
            state.reject(item)


def durable(
    *,
    store: BaseStore | str,
    agent: Agent[Any],
    state: StateHook | None = None,
    approve: Approver | None = None,
    registry: Registry | None = None,
    drift: DriftOption = DriftPolicy.MIGRATE,
) -> Callable[[RunFunction], DurableRun]:
    """Wrap ``run(session, input)`` so every call is checkpointed and survives restarts.

    Args:
        store: Where sessions, checkpoints and saved runs go: a store you own, or a URL
            (each call then opens the store and closes it when it returns).
        agent: The starting agent, for the fingerprint and for loading a saved run.
        state: The application state recorded with every turn.
        approve: The default decision for pending tool calls; a call may override it.
        registry: Where rename migrations are registered (the default registry if omitted).
        drift: What to do when a pending run was saved by another configuration of the
            graph: ``"migrate"`` (default), ``"strict"`` or ``"accept"``, as in
            :func:`.load_run_state`. Checked here, so a typo fails at decoration.
    """
    policy = drift_policy(drift)

    def decorate(function: RunFunction) -> DurableRun:
        @functools.wraps(function)
        async def run(
            session_id: str,
            user_input: str | list[TResponseInputItem] | None = None,
            *,
            approve: Approver | None = approve,
        ) -> RunResult:
            async with opened_store(store) as opened:
                return await run_on(opened, session_id, user_input, approve)

        async def run_on(
            opened: BaseStore,
            session_id: str,
            user_input: str | list[TResponseInputItem] | None,
            approve: Approver | None,
        ) -> RunResult:
            session = StoreSession(session_id, store=opened, state=state, checkpoints=True)
            pending = await load_run_state(session, agent, registry=registry, drift=policy)
            if pending is not None:
                names = sorted(str(item.name) for item in pending.get_interruptions())
                if user_input is not None or approve is None:
                    raise PendingInterruptionError(
                        f"session {session_id!r} waits for approval of {names}: call again "
                        "with no input and an approve= decision"
                    )
                await _decide(pending, approve)
                result = await function(session, pending)
            elif user_input is None:
                raise ValueError(f"session {session_id!r} has no pending run: give an input")
            else:
                result = await function(session, user_input)
            if pending is not None or result.interruptions:
                await save_run_state(session, result, agent)
            return result

        return run

    return decorate


def __getattr__(name: str) -> Any:
    if name == "persistent_run":  # deprecated alias, removed in the next minor release
        warn_renamed(f"{__name__}.persistent_run", f"{__name__}.durable")
        return durable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
