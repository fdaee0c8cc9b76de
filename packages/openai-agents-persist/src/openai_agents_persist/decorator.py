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

Every completed model call and tool run is journaled (``journal=True``, see
:mod:`._journaled` and :mod:`agent_persist._journal`), under the span that follows the
session's head checkpoint; every checkpoint of the call empties the journal in its own write.
Each turn checkpoint of a durable call is marked with the run (an id and a digest of its
input) and the call ends with a run-state checkpoint (pending, or a done marker), so a
marked turn at the head is a run a crash cut short. Calling again with its input (or none)
finishes it: the user's function gets ``[]``, the Runner goes on from the saved history, and
the journal replays what the crashed worker completed after the last checkpoint.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeAlias

from agents import Agent, RunResult, RunState, ToolApprovalItem, TResponseInputItem

from agent_persist import BaseStore, DriftPolicy, Envelope, Registry, Status
from agent_persist._journal import Journal, Span
from agent_persist._json import canonical_json
from agent_persist.drift import DriftOption, drift_policy
from agent_persist.journal import (
    JournalOption,
    Reconcile,
    ToolCall,
    ToolPolicy,
    ToolPolicyOption,
    journal_option,
)
from agent_persist.journal import tool_policies as check_tool_policies
from agent_persist.leases import DEFAULT_LEASE_TTL, LeaseHolder, owner_id
from agent_persist.stores import opened_store

from ._deprecated import warn_renamed
from ._journaled import dump_output, install_journal, journaling, plain
from .checkpoints import RUN_STATE_KIND, TURN_KIND, StateHook, producer
from .errors import PendingInterruptionError, RunInProgressError
from .run_state import load_run_state, save_run_state
from .session import StoreSession

__all__ = ["Approver", "DurableRun", "RunFunction", "durable"]

logger = logging.getLogger("openai_agents_persist")

Approver: TypeAlias = Callable[[ToolApprovalItem], "bool | Awaitable[bool]"]
"""Decides one pending tool call: ``True`` approves it, ``False`` rejects it."""

RunInput: TypeAlias = "str | list[TResponseInputItem] | RunState[Any, Any]"
RunFunction: TypeAlias = Callable[[StoreSession, Any], Awaitable[RunResult]]
"""The user's function: runs the agent on the input with the session it is given."""

_DEFAULT: Any = object()


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
    if (
        head is not None
        and head.kind == RUN_STATE_KIND
        and head.status is Status.DONE
        and head.metadata.get("resumed", True)
    ):
        return ValueError(
            f"{where}: its last one was already resumed (checkpoint {head.checkpoint_id!r}, "
            "maybe by another call); give an input to start a new one"
        )
    return ValueError(f"{where}: give an input")


def _digest(user_input: str | list[TResponseInputItem]) -> str:
    """What identifies a run's input, so a repeated call can be told from a new run."""
    encoded = canonical_json(plain(user_input), what="run input")
    return hashlib.sha256(encoded).hexdigest()[:32]


def _unfinished(head: Envelope | None) -> dict[str, Any] | None:
    """The mark of the durable run the head's turn belongs to, if that run never finished.

    A durable run marks each turn checkpoint and ends with a run-state checkpoint (a done
    marker or a pending state), so a marked turn at the head is a run a crash cut short.
    """
    if head is None or head.kind != TURN_KIND:
        return None
    mark = head.payload.get("run")
    if not isinstance(mark, dict):
        return None
    return dict(mark)  # pyright: ignore[reportUnknownArgumentType]


def _span(session: StoreSession) -> Span:
    """The stretch of the session after its head checkpoint: the current span."""
    head = session._head  # pyright: ignore[reportPrivateUsage]
    if head is None:
        return Span("", f"session {session.session_id!r}, before its first checkpoint")
    return Span(
        head.checkpoint_id,
        f"session {session.session_id!r}, turn after checkpoint {head.step}",
    )


@dataclass(frozen=True, slots=True)
class _Options:
    store: BaseStore | str
    agent: Agent[Any]
    state: StateHook | None
    approve: Approver | None
    registry: Registry | None
    drift: DriftPolicy
    worker_id: str | None
    lease_ttl: timedelta
    lease_wait: timedelta | None
    journal: JournalOption
    policies: dict[str, ToolPolicy | Reconcile]


class DurableRun:
    """The durable version of the user's function (what :func:`durable` returns).

    ``await run(session_id, input=None, *, approve=None, resume=True)`` runs (or resumes, or
    finishes) the session's run; :meth:`resolve_tool_call` settles a tool call whose outcome a
    crash left unknown.
    """

    def __init__(self, function: RunFunction, options: _Options) -> None:
        self._function, self._options = function, options
        functools.update_wrapper(self, function)

    async def __call__(
        self,
        session_id: str,
        user_input: str | list[TResponseInputItem] | None = None,
        *,
        approve: Approver | None = _DEFAULT,
        resume: bool = True,
    ) -> RunResult:
        """Run the session's agent on ``user_input``, or go on with its unfinished run.

        Args:
            session_id: The session (the store's thread).
            user_input: The new input; ``None`` to resume a pending or unfinished run.
            approve: Decides the pending tool calls (the decorator's ``approve`` if omitted).
            resume: With ``False``, an unfinished run (a worker died during it) is given up
                and ``user_input`` starts a new one; with ``True`` (the default), a different
                input over an unfinished run raises ``RunInProgressError``.

        A call whose session holds an unfinished run (the process died between the run's
        first and last checkpoint) and whose input is that run's (or ``None``) finishes it:
        the user's function is called with ``[]``, so the Runner goes on from the session's
        history without adding the input again, and the journal replays the calls the
        crashed worker completed after the last checkpoint.
        """
        chosen = self._options.approve if approve is _DEFAULT else approve
        async with self._leased(session_id) as (session, holder):
            return await self._run(session, holder, user_input, chosen, resume)

    async def resolve_tool_call(
        self, session_id: str, idempotency_key: str, result: Any
    ) -> ToolCall:
        """Record the outcome of a tool call a crash left unfinished, so the run can go on.

        After ``ToolOutcomeUnknownError``: find out what the tool did (the error's
        ``idempotency_key`` names the call), record what the tool would have returned, and
        call the run again; replay hands the result to the Runner and the tool never runs
        again. ``ValueError`` if no unfinished call of the session has this key.
        """
        async with self._leased(session_id) as (session, holder):
            journal = self._journal(session, holder)
            await journal.load(_span(session))
            return await journal.resolve(idempotency_key, result)

    @contextlib.asynccontextmanager
    async def _leased(self, session_id: str) -> AsyncGenerator[tuple[StoreSession, LeaseHolder]]:
        options = self._options
        async with opened_store(options.store) as opened:
            holder = LeaseHolder(
                opened,
                session_id,
                owner=options.worker_id or owner_id(),
                ttl=options.lease_ttl,
                wait=options.lease_wait,
                logger=logger,
            )
            await holder.acquire()
            try:
                yield (
                    StoreSession(
                        session_id,
                        store=opened,
                        state=options.state,
                        checkpoints=True,
                        lease=lambda: holder.lease,
                    ),
                    holder,
                )
            finally:
                await holder.release()

    def _journal(self, session: StoreSession, holder: LeaseHolder) -> Journal:
        made = producer()
        return Journal(
            session.store,
            session.session_id,
            lease=lambda: holder.lease,
            producer=f"{made.package} {made.package_version}/"
            f"{made.framework} {made.framework_version}",
            policies=self._options.policies,
            on_corrupt="discard" if self._options.journal == "discard" else "raise",
            tool_result=dump_output,
        )

    async def _run(
        self,
        session: StoreSession,
        holder: LeaseHolder,
        user_input: str | list[TResponseInputItem] | None,
        approve: Approver | None,
        resume: bool,
    ) -> RunResult:
        options, session_id = self._options, session.session_id
        pending = await load_run_state(
            session, options.agent, registry=options.registry, drift=options.drift
        )
        head = await session.head()
        unfinished = _unfinished(head)
        replay = True
        run_input: RunInput
        if pending is not None:
            names = sorted(str(item.name) for item in pending.get_interruptions())
            if user_input is not None or approve is None:
                raise PendingInterruptionError(
                    f"session {session_id!r} waits for approval of {names}: call again "
                    "with no input and an approve= decision"
                )
            await _decide(pending, approve)
            run_input = pending
            mark = _new_mark(f"resume of {head.checkpoint_id if head else ''}")
        elif unfinished is not None and (
            user_input is None or _digest(user_input) == unfinished.get("input")
        ):
            logger.info(
                "session %r: finishing the unfinished run %s (a worker stopped during it)",
                session_id,
                unfinished.get("id"),
            )
            run_input, mark = [], unfinished
        elif unfinished is not None and resume:
            raise RunInProgressError(
                f"session {session_id!r} has an unfinished run {unfinished.get('id')!r} (a "
                "worker stopped during it) whose input is not this one: call again with its "
                "input or none to finish it, or with resume=False to give it up and start "
                "this one"
            )
        elif user_input is None:
            raise await _no_pending_run(session)
        else:
            if unfinished is not None:
                logger.warning(
                    "session %r: the unfinished run %s is given up (resume=False)",
                    session_id,
                    unfinished.get("id"),
                )
                replay = False  # its journal is not this run's: the first checkpoint drops it
            run_input, mark = user_input, _new_mark(_digest(user_input))
        journal = self._journal(session, holder) if options.journal else None
        session._durable(journal, mark)  # pyright: ignore[reportPrivateUsage]
        if journal is not None and replay:
            await journal.load(_span(session))
            await journal.settle(_span(session))
        result = await self._call(session, journal, run_input)
        # closes the run: a pending state, or the done marker
        await save_run_state(
            session,
            result,
            options.agent,
            metadata={"run": mark["id"], "resumed": pending is not None},
        )
        return result

    async def _call(
        self, session: StoreSession, journal: Journal | None, run_input: RunInput
    ) -> RunResult:
        """The user's function under the journal; the journal's own error if it failed."""
        if journal is None:
            return await self._function(session, run_input)
        try:
            with journaling(journal, lambda: _span(session)):
                return await self._function(session, run_input)
        except Exception as exc:
            failure = journal.failure
            if failure is not None and failure is not exc:  # the SDK wrapped it
                raise failure from exc
            raise


def _new_mark(input_digest: str) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "input": input_digest}


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
    journal: JournalOption = True,
    tool_policies: Mapping[str, ToolPolicyOption] | None = None,
) -> Callable[[RunFunction], DurableRun]:
    """Wrap ``run(session, input)`` so every call is checkpointed and survives restarts.

    Args:
        store: Where sessions, checkpoints and saved runs go: a store you own, or a URL
            (each call then opens the store and closes it when it returns).
        agent: The starting agent, for the fingerprint and for loading a saved run. The
            journal's wrappers are installed on its graph, in place (see ``journal``).
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
        journal: Journal every completed model call and tool run (``True``, the
            default), so a call that finishes a crashed run replays them instead of paying
            for them again; ``False`` turns it off; ``"discard"`` drops a journal that
            cannot be read (``CorruptJournalError``) and goes on live. Covers the graph's
            ``Model`` instances and function tools (:mod:`._journaled`).
        tool_policies: Tool name to what to do with a call a crash left started but not
            finished: ``"raise"`` (the default, ``ToolOutcomeUnknownError``), ``"rerun"``,
            or a reconcile function (:mod:`agent_persist.journal`).

    The returned function raises ``ThreadBusyError`` (before anything is read or written)
    when another live worker kept the session's lease longer than ``lease_wait``, and
    ``LeaseLostError`` when its lease was taken over during the call (the refused write and
    everything after it are not stored).
    """
    options = _Options(
        store=store,
        agent=agent,
        state=state,
        approve=approve,
        registry=registry,
        drift=drift_policy(drift),
        worker_id=worker_id,
        lease_ttl=lease_ttl,
        lease_wait=lease_wait,
        journal=journal_option(journal),
        policies=check_tool_policies(tool_policies),
    )
    if options.journal:
        install_journal(agent)

    def decorate(function: RunFunction) -> DurableRun:
        return DurableRun(function, options)

    return decorate


def __getattr__(name: str) -> Any:
    if name == "persistent_run":  # deprecated alias, removed in the next minor release
        warn_renamed(f"{__name__}.persistent_run", f"{__name__}.durable")
        return durable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
