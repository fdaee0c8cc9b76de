"""What durable teams and agents share: the store, the lease, status and callbacks.

    async with DurableTeam(build_team, store="sqlite:///agents.db", thread_id="t-1") as team:
        result = await team.run(task="...")      # the lease is held for the whole block
    print(await team.status())                   # no lease needed to look

Without ``async with``, each ``run()`` opens the store (when given as a URL) and takes the
lease for its own duration. A restart after a crash needs no setting: the dead worker's
lease is taken over at once on the same machine, and waited out (at most ``lease_ttl`` plus
a third of it) when it was on another one; see :mod:`agent_persist.leases`.
``on_checkpoint`` is called with every stored checkpoint, after it is durable (for progress
reporting, or tests that stop a worker at a given turn).

Every model call and tool run is journaled as it completes (``journal=True``, see
:mod:`._journaled`): a run resumed after a crash replays the completed calls of the turn it
was in instead of paying for them again, and applies ``tool_policies`` to a tool the crash
left running. Each checkpoint empties the journal in its own write.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_core import CancellationToken
from typing_extensions import Self

from agent_persist import DriftPolicy, Envelope, Registry, Status, default_registry, open_store
from agent_persist._journal import Journal, Span
from agent_persist.drift import DriftOption, drift_policy
from agent_persist.errors import AgentPersistError, ThreadNotFoundError
from agent_persist.journal import (
    JournalOption,
    ToolCall,
    ToolPolicyOption,
    journal_option,
)
from agent_persist.journal import tool_policies as check_tool_policies
from agent_persist.leases import DEFAULT_LEASE_TTL, LeaseHolder, owner_id
from agent_persist.retry import DEFAULT_WRITE_ATTEMPTS, check_attempts
from agent_persist.stores import CheckpointStore, StoreOrURL, opened_store
from agent_persist.telemetry import resuming

from ._checkpoints import producer, read_head
from ._logs import read_logs
from ._payload import Payload, RunRecord, parse
from ._plugin import ensure_registered
from ._runs import Decision, Task, decide, new_run, task_digest, task_messages

__all__ = ["CheckpointCallback", "DurableBase", "Live", "StreamItem", "ThreadStatus"]

StreamItem = BaseAgentEvent | BaseChatMessage | TaskResult
"""What ``run_stream`` yields: messages and events, then one ``TaskResult``."""

_T = TypeVar("_T")
logger = logging.getLogger("autogen_persist")

CheckpointCallback = Callable[[Envelope], Awaitable[None] | None]
"""Called with each checkpoint once it is stored."""


@dataclass(frozen=True, slots=True)
class ThreadStatus:
    """Where a thread stands, read from its latest checkpoint."""

    thread_id: str
    checkpoint_id: str
    step: int
    status: Status
    stop_reason: str | None
    run: RunRecord | None
    """The current or last run (index, turn, done flag); ``None`` before the first run."""


class Live(Protocol):
    """A freshly built team or agent with the thread's head loaded: one run's worth."""

    store: CheckpointStore
    head: Envelope | None
    run: RunRecord | None

    def transcript_length(self) -> int:
        """How many messages the transcript holds (where a new run starts)."""
        ...

    def check_resumable(self, where: str) -> None:
        """Raise ``ResumeNotSupportedError`` if the unfinished run cannot continue."""
        ...

    def span(self) -> Span:
        """Where the run is now (run and turn): what its journal entries are filed under."""
        ...

    def steps(
        self,
        task: Sequence[BaseChatMessage] | None,
        token: CancellationToken | None,
        *,
        output_task_messages: bool,
    ) -> AsyncIterator[BaseAgentEvent | BaseChatMessage | None]:
        """Run; yield each new message, and ``None`` whenever a checkpoint is due."""
        ...

    async def checkpoint(self, lease: LeaseHolder, *, metadata: dict[str, Any] | None) -> Envelope:
        """Store the state now (status ``done`` once the run is done)."""
        ...

    def result(self, *, output_task_messages: bool) -> TaskResult:
        """The current run's ``TaskResult``, from its first message on."""
        ...


class DurableBase(Generic[_T]):
    """The store, lease, run decisions and bookkeeping around a factory-built AutoGen object.

    Subclasses name their kind and payload model and build the :class:`Live` object.
    """

    _kind: ClassVar[str]
    _payload_model: ClassVar[type[Payload]]
    _state_key: ClassVar[str]

    def __init__(
        self,
        factory: Callable[[], _T],
        *,
        store: StoreOrURL,
        thread_id: str,
        worker_id: str | None = None,
        lease_ttl: timedelta = DEFAULT_LEASE_TTL,
        lease_wait: timedelta | None = None,
        registry: Registry | None = None,
        metadata: Mapping[str, Any] | None = None,
        on_checkpoint: CheckpointCallback | None = None,
        drift: DriftOption = DriftPolicy.MIGRATE,
        write_attempts: int = DEFAULT_WRITE_ATTEMPTS,
        journal: JournalOption = True,
        tool_policies: Mapping[str, ToolPolicyOption] | None = None,
    ) -> None:
        self._write_attempts = check_attempts(write_attempts)
        self._journal = journal_option(journal)
        self._tool_policies = check_tool_policies(tool_policies)
        self._factory = factory
        self._drift = drift_policy(drift)
        self._store_spec = store
        self.thread_id = thread_id
        self.worker_id = worker_id or owner_id()
        self._lease_ttl, self._lease_wait = lease_ttl, lease_wait
        self._registry = ensure_registered(registry or default_registry())
        self._metadata = dict(metadata) if metadata is not None else None
        self._on_checkpoint = on_checkpoint
        self._store: CheckpointStore | None = None
        self._lease: LeaseHolder | None = None
        self._held = False
        self._running = False

    def _where(self) -> str:
        return f"thread {self.thread_id!r}"

    async def __aenter__(self) -> Self:
        await self._open()
        self._held = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._held = False
        await self._close()

    async def _open(self) -> None:
        if isinstance(self._store_spec, str):
            store = open_store(self._store_spec)
            await store.setup()
        else:
            store = self._store_spec
        self._store = store
        lease = LeaseHolder(
            store,
            self.thread_id,
            owner=self.worker_id,
            ttl=self._lease_ttl,
            wait=self._lease_wait,
            logger=logger,
        )
        try:
            await lease.acquire()
        except BaseException:
            await self._close()
            raise
        self._lease = lease

    async def _close(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            await lease.release()
        store, self._store = self._store, None
        if store is not None and isinstance(self._store_spec, str):
            await store.close()

    @asynccontextmanager
    async def _session(self) -> AsyncGenerator[tuple[CheckpointStore, LeaseHolder], None]:
        """The open store and the held lease for one run."""
        if self._running:
            raise ValueError(f"{self._where()} is already running in this object")
        self._running = True
        try:
            if not self._held:
                await self._open()
            store, lease = self._store, self._lease
            if store is None or lease is None:
                raise RuntimeError("the store was closed while a run was starting")
            try:
                yield store, lease
            finally:
                if not self._held:
                    await self._close()
        finally:
            self._running = False

    @asynccontextmanager
    async def _reader(self) -> AsyncGenerator[CheckpointStore, None]:
        """The store, opened just to read when no run holds it."""
        if self._store is not None:
            yield self._store
            return
        async with opened_store(self._store_spec) as store:
            yield store

    async def _notify(self, envelope: Envelope) -> None:
        if self._on_checkpoint is not None:
            outcome = self._on_checkpoint(envelope)
            if inspect.isawaitable(outcome):
                await outcome

    async def _live(self, store: CheckpointStore, journal: Journal | None) -> Live:
        raise NotImplementedError

    def _new_journal(self, store: CheckpointStore, lease: LeaseHolder) -> Journal:
        made = producer()
        return Journal(
            store,
            self.thread_id,
            lease=lambda: lease.lease,
            producer=f"{made.package} {made.package_version}/"
            f"{made.framework} {made.framework_version}",
            policies=self._tool_policies,
            on_corrupt="discard" if self._journal == "discard" else "raise",
            attempts=self._write_attempts,
        )

    async def resolve_tool_call(self, idempotency_key: str, result: Any) -> ToolCall:
        """Record the outcome of a tool call a crash left unfinished, so the run can go on.

        After ``ToolOutcomeUnknownError``: find out what the tool did (its
        ``idempotency_key`` names the call), record the result the tool would have returned
        (its text, for AutoGen tools), and run again; replay hands the result on and the
        tool never runs again. ``ValueError`` if no unfinished call has this key.
        """
        async with self._session() as (store, lease):
            journal = self._new_journal(store, lease)
            await journal.load(Span("", self._where()))
            return await journal.resolve(idempotency_key, result)

    async def run(
        self,
        *,
        task: Task = None,
        cancellation_token: CancellationToken | None = None,
        output_task_messages: bool = True,
        resume: bool = True,
    ) -> TaskResult:
        """Run (or resume) the thread's task to its end; see :meth:`run_stream`."""
        result: TaskResult | None = None
        async for item in self.run_stream(
            task=task,
            cancellation_token=cancellation_token,
            output_task_messages=output_task_messages,
            resume=resume,
        ):
            if isinstance(item, TaskResult):
                result = item
        if result is None:
            raise RuntimeError("the run ended without a TaskResult")
        return result

    async def run_stream(
        self,
        *,
        task: Task = None,
        cancellation_token: CancellationToken | None = None,
        output_task_messages: bool = True,
        resume: bool = True,
    ) -> AsyncGenerator[StreamItem, None]:
        """Yield the run's new messages, then a ``TaskResult`` of the whole run.

        With ``resume`` (the default), a call with no task or with the task of the
        thread's unfinished run continues that run; one with no task or the task of the
        finished last run returns its result without running anything; any other task
        starts a new run. A resumed run's ``TaskResult`` holds the messages from before the
        restart too. ``resume=False`` always starts a new run, as AutoGen's ``run()`` does.
        """
        messages = task_messages(task)
        async with self._session() as (store, lease):
            journal = self._new_journal(store, lease) if self._journal else None
            with resuming(logger, kind=self._kind, thread_id=self.thread_id) as loading:
                live = await self._live(store, journal)
                loading.found(live.head)
            decision = decide(live.run, task_digest(messages), resume=resume, where=self._where())
            if decision is Decision.FINISHED:
                yield live.result(output_task_messages=output_task_messages)
                return
            if decision is Decision.RESUME:
                live.check_resumable(self._where())
                messages = None
            else:
                live.run = new_run(live.run, messages, start=live.transcript_length())
            if journal is not None:
                await journal.load(live.span())
                await journal.settle(live.span())
            try:
                async for item in live.steps(
                    messages, cancellation_token, output_task_messages=output_task_messages
                ):
                    if item is not None:
                        yield item
                    else:
                        await self._notify(await live.checkpoint(lease, metadata=self._metadata))
            except Exception as exc:
                failure = None if journal is None else journal.failure
                error = exc if failure is None else failure
                await _mark(live, lease, Status.ERROR, f"{type(error).__name__}: {error}")
                if error is not exc:  # AutoGen turned the journal's error into another one
                    raise error from exc
                raise
            except asyncio.CancelledError:
                if cancellation_token is not None and cancellation_token.is_cancelled():
                    await _mark(live, lease, Status.INTERRUPTED, "cancelled")
                raise
            yield live.result(output_task_messages=output_task_messages)

    async def _head(self, store: CheckpointStore, checkpoint_id: str | None = None) -> Envelope:
        return await read_head(
            store,
            self.thread_id,
            kind=self._kind,
            registry=self._registry,
            checkpoint_id=checkpoint_id,
        )

    async def status(self) -> ThreadStatus | None:
        """The thread's latest checkpoint's status and run, or ``None`` for a new thread."""
        async with self._reader() as store:
            try:
                head = await self._head(store)
            except ThreadNotFoundError:
                return None
        payload = parse(self._payload_model, head)
        return ThreadStatus(
            thread_id=head.thread_id,
            checkpoint_id=head.checkpoint_id,
            step=head.step,
            status=head.status,
            stop_reason=head.stop_reason,
            run=payload.run,
        )

    async def state(self, *, checkpoint_id: str | None = None) -> dict[str, Any]:
        """The native state at the head (or a checkpoint), as AutoGen's ``save_state()`` gives.

        ``ThreadNotFoundError`` for a new thread.
        """
        async with self._reader() as store:
            head = await self._head(store, checkpoint_id)
            payload = parse(self._payload_model, head)
            native = getattr(payload, self._state_key)
            full, _ = await read_logs(store, head, native)
            return cast("dict[str, Any]", full)


async def _mark(live: Live, lease: LeaseHolder, status: Status, reason: str) -> None:
    """Record that the run stopped abnormally: the last state again, with this status.

    Best effort: when the store itself failed, the original error is what matters.
    """
    head = live.head
    if head is None:
        return
    with contextlib.suppress(AgentPersistError):
        live.head = await live.store.put(
            head.next(payload=head.payload, status=status, stop_reason=reason),
            lease=lease.lease,
        )
