"""Durable single agents: a checkpoint after every run, each run's messages kept.

    def build_agent() -> AssistantAgent:
        return AssistantAgent("helper", model_client=client, tools=[lookup])

    agent = DurableAgent(build_agent, store="sqlite:///agents.db", thread_id="user-42")
    result = await agent.run(task="What is the weather?")   # run it again: same result

For an agent a run is one turn (however many tool calls it makes), so the checkpoint comes
after the run: the agent's model context goes to a log, as does the transcript of every
run's messages, which is what lets a finished run be returned again without calling the
model. An exception inside a run leaves the last checkpoint as it was; the next ``run()``
builds the agent afresh and loads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from autogen_agentchat.base import ChatAgent, TaskResult
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    MessageFactory,
    ModelClientStreamingChunkEvent,
    StructuredMessage,
)
from autogen_core import CancellationToken

from agent_persist import DriftPolicy, Envelope, Registry, Status, fingerprint
from agent_persist._journal import Journal, Span
from agent_persist.journal import JOURNAL_LOG
from agent_persist.leases import LeaseHolder
from agent_persist.retry import DEFAULT_WRITE_ATTEMPTS
from agent_persist.stores import CheckpointStore

from ._capture import capture_agent, dump_messages, restore_agent_extras
from ._checkpoints import load_native, write_checkpoint
from ._durable import DurableBase
from ._journaled import install_journal, raise_journal_failure, with_journal_note
from ._layout import agent_layout
from ._load import Loaded, find_checkpoint
from ._logs import LogRef, LogTracker, Tracked
from ._payload import AgentPayload, RunRecord
from ._plugin import KIND_AGENT
from .drift import drift_config
from .errors import UnsupportedComponentError

__all__ = ["DurableAgent", "message_factory"]

TRANSCRIPT = "transcript"


def message_factory(agent: ChatAgent) -> MessageFactory:
    """A message factory that knows the agent's structured message types too."""
    factory = MessageFactory()
    for message_type in agent.produced_message_types:
        registered = factory.is_registered(message_type)  # pyright: ignore[reportUnknownArgumentType]
        if issubclass(message_type, StructuredMessage) and not registered:
            factory.register(message_type)  # pyright: ignore[reportUnknownArgumentType]
    return factory


async def load_agent_checkpoint(agent: ChatAgent, loaded: Loaded) -> AgentPayload:
    """Load a read (and migrated) checkpoint into a freshly built ``agent``."""
    head = loaded.head
    where = f"checkpoint {head.checkpoint_id!r} of thread {head.thread_id!r}"
    full = loaded.payload
    payload = AgentPayload.model_validate({**full, "agent": {}, "transcript": None, "extras": {}})
    await load_native(agent.load_state(full["agent"]), where=where, what="agent")
    await restore_agent_extras(agent, full.get("extras") or {})
    return payload


class _LiveAgent:
    """A freshly built agent with the thread's latest checkpoint loaded into it."""

    def __init__(
        self,
        agent: ChatAgent,
        store: CheckpointStore,
        thread_id: str,
        policy: DriftPolicy,
        *,
        write_attempts: int = DEFAULT_WRITE_ATTEMPTS,
    ) -> None:
        self.agent, self.store, self.thread_id, self.policy = agent, store, thread_id, policy
        self.write_attempts = write_attempts
        self.layout = agent_layout(agent)
        self.config = drift_config(agent, self.layout)
        self.fingerprint = fingerprint(self.config["component"])
        self.tracker = LogTracker()
        self.head: Envelope | None = None
        self.run: RunRecord | None = None
        self.journal: Journal | None = None
        self.transcript: list[BaseAgentEvent | BaseChatMessage] = []

    async def load(self, registry: Registry) -> None:
        """Load the head checkpoint, if any, and set the log baseline."""
        loaded = await find_checkpoint(
            self.store,
            self.thread_id,
            kind=KIND_AGENT,
            registry=registry,
            config=self.config,
            layout=self.layout,
            policy=self.policy,
        )
        refs: dict[str, LogRef] = {}
        if loaded is not None:
            payload = await load_agent_checkpoint(self.agent, loaded)
            factory = message_factory(self.agent)
            items: list[Any] = loaded.payload.get(TRANSCRIPT) or []
            self.transcript = [factory.create(item) for item in items]
            self.head, self.run, refs = loaded.head, payload.run, loaded.refs
        tree, extras = await capture_agent(self.agent)
        verify = loaded is not None and loaded.migrated
        self.tracker.remember_all([tree, extras, self._transcript()], refs, verify=verify)

    def _transcript(self) -> Tracked:
        return Tracked(TRANSCRIPT, self.transcript, dump_messages)

    def span(self) -> Span:
        """The run now: an agent's run is one turn, so its journal is filed under it.

        An agent's run is checkpointed only once done, so a run that crashed and a later
        run of another task get the same index: the task's digest tells them apart.
        """
        run = self.run
        index = 0 if run is None else run.index
        task = None if run is None else run.task  # a crashed run's index, given another task
        return Span(f"{index}.0.{task}", f"run {index}")

    def transcript_length(self) -> int:
        """How many messages all runs so far produced."""
        return len(self.transcript)

    def check_resumable(self, where: str) -> None:
        """An agent's run is checkpointed only once done, so there is never one to resume."""

    async def steps(
        self,
        task: Sequence[BaseChatMessage] | None,
        token: CancellationToken | None,
        *,
        output_task_messages: bool,
    ) -> AsyncIterator[BaseAgentEvent | BaseChatMessage | None]:
        """Run the agent once; yield its messages, then ``None`` for the checkpoint."""
        outcome: TaskResult | None = None
        async for item in self.agent.run_stream(
            task=None if task is None else list(task), cancellation_token=token
        ):
            if isinstance(item, TaskResult):
                outcome = item
            elif output_task_messages or task is None or item not in task:
                yield item
        messages: Sequence[BaseAgentEvent | BaseChatMessage] = (
            () if outcome is None else outcome.messages
        )
        self.transcript.extend(
            m for m in messages if not isinstance(m, ModelClientStreamingChunkEvent)
        )
        if self.run is not None:
            self.run.done = True
            self.run.stop_reason = None if outcome is None else outcome.stop_reason
        yield None

    async def checkpoint(self, lease: LeaseHolder, *, metadata: dict[str, Any] | None) -> Envelope:
        """Store the agent's state and the runs' transcript, appending only what is new."""
        tree, extras = await capture_agent(self.agent)
        payload, appends = await self.tracker.plan(
            {
                "agent": tree,
                "extras": extras,
                "layout": self.layout.model_dump(),
                TRANSCRIPT: self._transcript(),
                "run": None if self.run is None else self.run.model_dump(),
            },
            lambda name: self.store.log_length(self.thread_id, name),
        )
        lease.check()
        raise_journal_failure(self.journal)
        self.head = await write_checkpoint(
            self.store,
            self.head,
            thread_id=self.thread_id,
            kind=KIND_AGENT,
            payload=payload,
            appends=appends,
            fingerprint=self.fingerprint,
            config=self.config,
            status=Status.DONE,
            stop_reason=None if self.run is None else self.run.stop_reason,
            metadata=with_journal_note(metadata, self.journal),
            lease=lease.lease,
            clear_logs=(JOURNAL_LOG,),
            attempts=self.write_attempts,
        )
        self.tracker.commit()
        if self.journal is not None:
            self.journal.checkpointed()
        return self.head

    def result(self, *, output_task_messages: bool) -> TaskResult:
        """The last run's messages, from the transcript."""
        run = self.run
        start = 0 if run is None else run.start + (0 if output_task_messages else run.task_messages)
        return TaskResult(
            messages=list(self.transcript[start:]),
            stop_reason=None if run is None else run.stop_reason,
        )


class DurableAgent(DurableBase[ChatAgent]):
    """An AutoGen agent that checkpoints after every run and resumes its conversation.

    Takes the same arguments as :class:`~autogen_persist.DurableTeam`; ``factory`` builds
    the agent (with a new model client) on every call.
    """

    _kind = KIND_AGENT
    _payload_model = AgentPayload
    _state_key = "agent"

    async def _live(self, store: CheckpointStore, journal: Journal | None) -> _LiveAgent:
        agent: object = self._factory()
        if not isinstance(agent, ChatAgent):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UnsupportedComponentError(
                f"the agent factory returned {type(agent).__qualname__}, not an AutoGen ChatAgent"
            )
        live = _LiveAgent(
            agent, store, self.thread_id, self._drift, write_attempts=self._write_attempts
        )
        if journal is not None:
            live.journal = journal
            install_journal(live.agent, journal, live.span)
        await live.load(self._registry)
        return live
