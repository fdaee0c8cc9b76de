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

Each call holds the session's lease (:class:`agent_persist.leases.LeaseHolder`, as AutoGen's
durable runs do) from before it loads the pending run until it returns, renewed in the
background, and every write of the session carries it. So two calls resuming the same
pending run (two approvers, a retried job) run its approved tools once: the second waits for
the first, then finds the run already resumed. A worker whose lease was taken over cannot
write (``LeaseLostError``).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeAlias

from agents import Agent, RunResult, RunState, ToolApprovalItem, TResponseInputItem

from agent_persist import BaseStore, DriftPolicy, Registry, Status
from agent_persist.drift import DriftOption, drift_policy
from agent_persist.leases import DEFAULT_LEASE_TTL, LeaseHolder, owner_id
from agent_persist.stores import opened_store

from ._deprecated import warn_renamed
from .checkpoints import RUN_STATE_KIND, StateHook
from .errors import PendingInterruptionError
from .run_state import load_run_state, save_run_state
from .session import StoreSession

__all__ = ["Approver", "DurableRun", "RunFunction", "durable"]

logger = logging.getLogger("openai_agents_persist")

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


async def _no_pending_run(session: StoreSession) -> ValueError:
    """The error for a call with no input and no pending run, saying if it was resumed."""
    head = await session.head()
    where = f"session {session.session_id!r} has no pending run"
    if head is not None and head.kind == RUN_STATE_KIND and head.status is Status.DONE:
        return ValueError(
            f"{where}: its last one was already resumed (checkpoint {head.checkpoint_id!r}, "
            "maybe by another call); give an input to start a new one"
        )
    return ValueError(f"{where}: give an input")


def durable(
    *,
    store: BaseStore | str,
    agent: Agent[Any],
    state: StateHook | None = None,
    approve: Approver | None = None,
    registry: Registry | None = None,
    drift: DriftOption = DriftPolicy.MIGRATE,
    worker_id: str | None = None,
    lease_ttl: timedelta = DEFAULT_LEASE_TTL,
    lease_wait: timedelta | None = None,
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
        worker_id: This worker's lease owner name; by default one naming this process
            (host, boot id, pid namespace, pid, start time), so that a restart can prove it
            dead and take its lease over at once. The default is a new name for every call,
            so concurrent calls of one process exclude each other too; calls that share a
            ``worker_id`` do not (a second one takes the lease from the first).
        lease_ttl: How long the lease lasts without renewal (15 s); it is renewed every
            third of it while running. A worker that crashed on another machine keeps the
            session at most this long.
        lease_wait: How long to wait for another live worker's lease before
            ``ThreadBusyError``; ``None`` (the default) waits ``lease_ttl`` plus one
            renewal interval, long enough for a crashed worker's lease to run out;
            ``timedelta(0)`` fails at once. A lease whose owner is provably dead (a
            process of this machine that no longer runs) is taken over without waiting.

    The returned function raises ``ThreadBusyError`` (before anything is read or written)
    when another live worker kept the session's lease longer than ``lease_wait``, and
    ``LeaseLostError`` when its lease was taken over during the call (the refused write and
    everything after it are not stored).
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
            holder = LeaseHolder(
                opened,
                session_id,
                owner=worker_id or owner_id(),
                ttl=lease_ttl,
                wait=lease_wait,
                logger=logger,
            )
            await holder.acquire()
            try:
                session = StoreSession(
                    session_id,
                    store=opened,
                    state=state,
                    checkpoints=True,
                    lease=lambda: holder.lease,
                )
                return await run_leased(session, user_input, approve)
            finally:
                await holder.release()

        async def run_leased(
            session: StoreSession,
            user_input: str | list[TResponseInputItem] | None,
            approve: Approver | None,
        ) -> RunResult:
            session_id = session.session_id
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
                raise await _no_pending_run(session)
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
