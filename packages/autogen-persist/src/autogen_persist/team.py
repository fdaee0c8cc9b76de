"""Durable AutoGen teams: a checkpoint after every agent turn, exact resume after a crash.

    def build_team() -> RoundRobinGroupChat:
        return RoundRobinGroupChat([writer, critic], termination_condition=MaxMessageTermination(9))

    team = DurableTeam(build_team, store="sqlite:///agents.db", thread_id="essay-1")
    await Console(team.run_stream(task="Write an essay."))   # same call again resumes

How a turn becomes a consistent checkpoint (FINDINGS §1): the team is run one turn at a
time (its manager's ``max_turns`` is set to 1, so each step ends quiescent, after the thread
update and before the next speaker is chosen), the termination condition is wrapped so the
per-step resets are ignored and its counters are saved, and the run's own turn count, done
flag and stop reason are kept in the payload. The user's ``max_turns`` is enforced on that
count. Every ``run()`` builds the team afresh with the factory and loads the latest
checkpoint into it, so a retry after an exception never continues a dirty team.

MagenticOne cannot be stepped or continued mid-task (upstream #5054): its runs are
checkpointed after every agent message for inspection, and resuming one that did not finish
raises :class:`~autogen_persist.errors.ResumeNotSupportedError`.
"""

# pyright: reportPrivateUsage=false

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

from autogen_agentchat.base import TaskResult, Team
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    ModelClientStreamingChunkEvent,
)
from autogen_agentchat.teams import BaseGroupChat, MagenticOneGroupChat
from autogen_core import CancellationToken

from agent_persist import DriftPolicy, Envelope, Registry, Status, fingerprint
from agent_persist._journal import Journal, Span
from agent_persist.journal import JOURNAL_LOG
from agent_persist.leases import LeaseHolder
from agent_persist.retry import DEFAULT_WRITE_ATTEMPTS
from agent_persist.stores import CheckpointStore

from ._capture import (
    build_agents,
    capture_team,
    dump_messages,
    fill_fresh,
    require_group_chat,
    restore_extras,
)
from ._checkpoints import load_native, write_checkpoint
from ._durable import DurableBase
from ._journaled import install_journal, raise_journal_failure, with_journal_note
from ._layout import Layout, team_layout
from ._load import Loaded, find_checkpoint
from ._logs import LogRef, LogTracker, Tracked
from ._payload import RunRecord, TeamPayload
from ._plugin import KIND_TEAM
from ._termination import DurableTermination
from .drift import drift_config
from .errors import IncompatibleCheckpointError, ResumeNotSupportedError, UnsupportedComponentError

__all__ = ["DurableTeam"]

_STEP_LIMIT = "Maximum number of turns 1 reached."
"""The stop reason of a step that ended because its one turn was taken."""

OUTPUT = "output"
"""The log of every message the runs yielded, from which a finished run's result is rebuilt."""


Output = BaseAgentEvent | BaseChatMessage | dict[str, Any]
"""An item of the runs' output: a message this process saw, or one as stored (loaded)."""


def output_messages(team: BaseGroupChat, items: Sequence[Output], *, where: str) -> list[Any]:
    """The output items as AutoGen messages, building the stored ones.

    The built messages are not kept in the list: the log tracker knows it by the identity
    of its items, and a replaced item would make the next checkpoint rewrite the log.
    """
    try:
        return [
            team._message_factory.create(item) if isinstance(item, dict) else item for item in items
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise IncompatibleCheckpointError(
            f"{where}: a stored message of the runs' output cannot be loaded: {exc}"
        ) from exc


def _dump_output(items: Sequence[Output]) -> list[Any]:
    """The output as stored: loaded items are already stored JSON."""
    return [item if isinstance(item, dict) else dump_messages([item])[0] for item in items]


async def load_team_checkpoint(
    team: BaseGroupChat,
    loaded: Loaded,
    *,
    layout: Layout,
    restart_turn_count: bool = False,
) -> tuple[TeamPayload, list[Output]]:
    """Load a read (and migrated) checkpoint into a freshly built ``team``.

    Returns the payload and the runs' output, as stored: a run's result turns only its own
    messages into AutoGen objects (:func:`output_messages`), so a resume does not build
    every message of the history twice. ``restart_turn_count`` sets the manager's turn
    count to 0, for a team that is stepped (its run's count lives in the run record).
    """
    head = loaded.head
    where = f"checkpoint {head.checkpoint_id!r} of thread {head.thread_id!r}"
    full = loaded.payload
    payload = TeamPayload.model_validate({**full, "team": {}, "output": None, "extras": {}})
    state = cast("dict[str, Any]", full["team"])
    await fill_fresh(team, state)
    manager_state = state.get("agent_states", {}).get(layout.manager)
    if restart_turn_count and isinstance(manager_state, dict):
        manager_state["current_turn"] = 0
    output: list[Output] = list(full.get(OUTPUT) or [])
    await load_native(team.load_state(state), where=where, what="team")
    await restore_extras(team, full.get("extras") or {})
    return payload, output


class _LiveTeam:
    """A freshly built team with the thread's latest checkpoint loaded into it."""

    def __init__(
        self,
        team: BaseGroupChat,
        store: CheckpointStore,
        thread_id: str,
        policy: DriftPolicy,
        *,
        write_attempts: int = DEFAULT_WRITE_ATTEMPTS,
    ) -> None:
        self.team, self.store, self.thread_id, self.policy = team, store, thread_id, policy
        self.write_attempts = write_attempts
        if team._initialized:
            raise UnsupportedComponentError(
                "the team factory returned a team that already ran; it must build a new "
                "team (with new agents) on every call"
            )
        self.layout = team_layout(team)
        self.config = drift_config(team, self.layout)
        self.fingerprint = fingerprint(self.config["component"])
        self.user_max_turns: int | None = team._max_turns
        self.stepping = not isinstance(team, MagenticOneGroupChat)
        self.guard = DurableTermination(team._termination_condition)
        team._termination_condition = self.guard
        if self.stepping:
            team._max_turns = 1
        self.tracker = LogTracker()
        self.head: Envelope | None = None
        self.run: RunRecord | None = None
        self.journal: Journal | None = None
        self.output: list[Output] = []
        """Every message the runs yielded (AutoGen's ``TaskResult.messages``, all runs)."""

    def _output(self) -> Tracked:
        return Tracked(OUTPUT, self.output, _dump_output)

    async def load(self, registry: Registry) -> None:
        """Load the head checkpoint, if the thread has one, and set the log baseline.

        AutoGen builds a team's runtime and agents on first use, which ``load_state`` would
        do once the reads are done: they are built while the store answers instead.
        """
        building = asyncio.ensure_future(build_agents(self.team))
        try:
            loaded = await find_checkpoint(
                self.store,
                self.thread_id,
                kind=KIND_TEAM,
                registry=registry,
                config=self.config,
                layout=self.layout,
                policy=self.policy,
            )
        except BaseException:
            with contextlib.suppress(Exception):  # the read's error is the one to raise
                await building
            raise
        if loaded is None:
            await building
        else:  # as when ``load_state`` built them: a failure is the checkpoint's to report
            where = f"checkpoint {loaded.head.checkpoint_id!r} of thread {self.thread_id!r}"
            await load_native(building, where=where, what="team")
        refs: dict[str, LogRef] = {}
        if loaded is not None:
            payload, self.output = await load_team_checkpoint(
                self.team, loaded, layout=self.layout, restart_turn_count=True
            )
            self.guard.load(payload.termination)
            self.head, self.run, refs = loaded.head, payload.run, loaded.refs
        tree, extras = await capture_team(self.team)
        verify = loaded is not None and loaded.migrated
        self.tracker.remember_all([tree, extras, self._output()], refs, verify=verify)

    def span(self) -> Span:
        """The run and turn now: what the turn's journal entries are filed under."""
        run = _require(self.run)
        return Span(f"{run.index}.{run.turn}.{run.task}", f"run {run.index}, turn {run.turn}")

    def transcript_length(self) -> int:
        """How many messages the runs have yielded."""
        return len(self.output)

    def check_resumable(self, where: str) -> None:
        """MagenticOne cannot continue mid-task: say so instead of re-planning."""
        if self.run is not None and self.run.resumable and self.stepping:
            return
        raise ResumeNotSupportedError(
            f"{where}: {type(self.team).__name__} cannot continue a task mid-way (AutoGen "
            "re-plans on a new task and asserts without one; upstream #5054). Its "
            "checkpoints remain for inspection; start over with resume=False"
        )

    async def checkpoint(self, lease: LeaseHolder, *, metadata: dict[str, Any] | None) -> Envelope:
        """Store the team's state now, appending only what is new to the logs."""
        run = self.run
        tree, extras = await capture_team(self.team)
        manager_state = tree["agent_states"].get(self.layout.manager)
        if isinstance(manager_state, dict) and run is not None:
            manager_state["current_turn"] = run.turn
        payload, appends = await self.tracker.plan(
            {
                "team": tree,
                "extras": extras,
                "layout": self.layout.model_dump(),
                "termination": self.guard.save(),
                OUTPUT: self._output(),
                "run": None if run is None else run.model_dump(),
            },
            lambda name: self.store.log_length(self.thread_id, name),
        )
        lease.check()
        raise_journal_failure(self.journal)
        self.head = await write_checkpoint(
            self.store,
            self.head,
            thread_id=self.thread_id,
            kind=KIND_TEAM,
            payload=payload,
            appends=appends,
            fingerprint=self.fingerprint,
            config=self.config,
            status=Status.DONE if run is not None and run.done else Status.RUNNING,
            stop_reason=None if run is None else run.stop_reason,
            metadata=with_journal_note(metadata, self.journal),
            lease=lease.lease,
            clear_logs=(JOURNAL_LOG,),
            attempts=self.write_attempts,
        )
        self.tracker.commit()
        if self.journal is not None:
            self.journal.checkpointed()
        return self.head

    async def _forward(
        self,
        task: Sequence[BaseChatMessage] | None,
        token: CancellationToken | None,
        output_task_messages: bool,
    ) -> AsyncIterator[BaseAgentEvent | BaseChatMessage | TaskResult]:
        """One ``run_stream`` of the team: record every message, hide the task if asked."""
        hidden = 0 if output_task_messages or task is None else len(task)
        async for item in self.team.run_stream(
            task=None if task is None else list(task), cancellation_token=token
        ):
            if not isinstance(item, TaskResult | ModelClientStreamingChunkEvent):
                self.output.append(item)
            if hidden and not isinstance(item, TaskResult):
                hidden -= 1
                continue
            yield item

    async def steps(
        self,
        task: Sequence[BaseChatMessage] | None,
        token: CancellationToken | None,
        *,
        output_task_messages: bool,
    ) -> AsyncIterator[BaseAgentEvent | BaseChatMessage | None]:
        """Run turn by turn; yield each message, and ``None`` when a checkpoint is due."""
        run = _require(self.run)
        if not self.stepping:
            run.resumable = False
        while True:
            self.guard.stepping, self.guard.fired = self.stepping, None
            outcome: TaskResult | None = None
            try:
                async for item in self._forward(task, token, output_task_messages):
                    if isinstance(item, TaskResult):
                        outcome = item
                        continue
                    yield item
                    if not self.stepping and self._is_turn(item):
                        run.turn += 1
                        yield None
            finally:
                self.guard.stepping = False
            task = None
            reason = None if outcome is None else outcome.stop_reason
            if self.stepping and self.guard.fired is None and reason == _STEP_LIMIT:
                run.turn += 1
                limit = self.user_max_turns
                if limit is None or run.turn < limit:
                    yield None
                    continue
                reason = f"Maximum number of turns {limit} reached."
            await self.guard.finish()
            run.turn, run.done, run.stop_reason = 0, True, reason
            yield None
            return

    def _is_turn(self, item: BaseAgentEvent | BaseChatMessage) -> bool:
        return isinstance(item, BaseChatMessage) and item.source in self.layout.participants

    def result(self, *, output_task_messages: bool) -> TaskResult:
        """The run's result: its messages as AutoGen would give them, and its stop reason."""
        run = _require(self.run)
        skip = 0 if output_task_messages else run.task_messages
        where = f"thread {self.thread_id!r}"
        messages = output_messages(self.team, self.output[run.start + skip :], where=where)
        return TaskResult(messages=messages, stop_reason=run.stop_reason)


def _require(run: RunRecord | None) -> RunRecord:
    if run is None:
        raise RuntimeError("no run is in progress")  # a bug: callers start or load a run first
    return run


class DurableTeam(DurableBase[Team]):
    """An AutoGen group chat that checkpoints every turn and resumes where it stopped.

    Args:
        factory: Builds the team, with new agents and model clients, on every call.
        store: A store, or its URL (then opened and closed by this object).
        thread_id: The conversation this object runs.
        worker_id: This worker's lease owner name; by default one naming this process
            (host, boot id, pid namespace, pid, start time), so that a restart can prove it
            dead and take its lease over at once.
        lease_ttl: How long the lease lasts without renewal (15 s); it is renewed every
            third of it while running. A worker that crashed on another machine keeps the
            thread at most this long.
        lease_wait: How long to wait for another live worker's lease before
            ``ThreadBusyError``; ``None`` (the default) waits ``lease_ttl`` plus one
            renewal interval, long enough for a crashed worker's lease to run out;
            ``timedelta(0)`` fails at once. A lease whose owner is provably dead (a
            process of this machine that no longer runs) is taken over without waiting.
        registry: The migration registry (the process-wide default one).
        metadata: Stored on every checkpoint this object writes.
        on_checkpoint: Called with each checkpoint once it is stored.
        drift: What to do when the team's configuration differs from the one that wrote
            the checkpoint (:class:`~agent_persist.DriftPolicy` or its name): ``"migrate"``
            (the default) runs the migrations covering the changes and refuses the rest,
            ``"strict"`` refuses any change, ``"accept"`` loads as is (not across layout
            changes, which AutoGen cannot load).
        write_attempts: How many times a checkpoint write is tried while the store is
            unavailable (a broken connection), each retry logged as a warning on the
            ``autogen_persist`` logger; safe because a retried put of a checkpoint that was
            committed returns it. Then ``StoreUnavailableError``.
        journal: Journal every model call and tool run as it completes, so a run resumed
            after a crash replays the completed calls of its turn instead of paying for
            them again (``True``, the default). ``False`` turns it off; ``"discard"`` drops
            a journal that cannot be read (``CorruptJournalError``) and goes on live.
        tool_policies: Tool name to what a resume does with a call of that tool that a
            crash left running (started, never recorded as finished): ``"raise"`` (the
            default: ``ToolOutcomeUnknownError``, then :meth:`resolve_tool_call` or another
            policy), ``"rerun"`` (idempotent tools: same idempotency key), or a reconcile
            function given the :class:`~agent_persist.journal.ToolCall` that returns the
            tool's result.
    """

    _kind = KIND_TEAM
    _payload_model = TeamPayload
    _state_key = "team"

    async def _live(self, store: CheckpointStore, journal: Journal | None) -> _LiveTeam:
        team = require_group_chat(self._factory())
        live = _LiveTeam(
            team, store, self.thread_id, self._drift, write_attempts=self._write_attempts
        )
        if journal is not None:
            live.journal = journal
            install_journal(live.team, journal, live.span)
        await live.load(self._registry)
        return live
