"""Termination conditions that survive a restart and ignore the resets of stepping.

    guard = DurableTermination(MaxMessageTermination(10) | TextMentionTermination("DONE"))
    team._termination_condition = guard          # before the team is initialised
    guard.stepping = True                        # the manager's per-step resets are ignored
    state = guard.save()                         # counters and flags, JSON
    guard.load(state)                            # into a freshly built condition

AutoGen's ``save_state`` leaves termination conditions out, and a team run one turn at a
time resets them at every stop, so ``MaxMessageTermination`` would never fire (FINDINGS §1).
The wrapper forwards every check to the user's condition, ignores resets while a step runs,
and lets the runner reset the condition when the run really ends, as AutoGen would.

State is read and written per condition class: only the attributes that change at run time
(counters, flags) are saved, never the configuration, so a changed limit applies on resume.
``TimeoutTermination`` saves the run time elapsed so far (its ``time.monotonic()`` start
means nothing in another process); time while no worker ran the thread does not count.
:func:`register_termination_state` adds a third-party condition.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from autogen_agentchat.base import (
    AndTerminationCondition,
    OrTerminationCondition,
    TerminationCondition,
)
from autogen_agentchat.conditions import (
    ExternalTermination,
    FunctionalTermination,
    FunctionCallTermination,
    HandoffTermination,
    MaxMessageTermination,
    SourceMatchTermination,
    StopMessageTermination,
    TextMentionTermination,
    TextMessageTermination,
    TimeoutTermination,
    TokenUsageTermination,
)
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage, StopMessage
from pydantic import BaseModel

from agent_persist.errors import CorruptCheckpointError

from .errors import UnsupportedComponentError

__all__ = ["DurableTermination", "register_termination_state"]

_STATE_ATTRIBUTES: dict[type[TerminationCondition], tuple[str, ...]] = {
    MaxMessageTermination: ("_message_count",),
    TokenUsageTermination: (
        "_total_token_count",
        "_prompt_token_count",
        "_completion_token_count",
    ),
    TextMentionTermination: ("_terminated",),
    StopMessageTermination: ("_terminated",),
    HandoffTermination: ("_terminated",),
    SourceMatchTermination: ("_terminated",),
    TextMessageTermination: ("_terminated",),
    FunctionCallTermination: ("_terminated",),
    FunctionalTermination: ("_terminated",),
    ExternalTermination: ("_terminated", "_setted"),
    TimeoutTermination: ("_terminated",),
}


def register_termination_state(condition: type[TerminationCondition], *attributes: str) -> None:
    """Declare which attributes of a custom condition hold its run-time state (JSON values)."""
    _STATE_ATTRIBUTES[condition] = attributes


def _children(condition: TerminationCondition) -> Sequence[TerminationCondition]:
    if isinstance(condition, AndTerminationCondition | OrTerminationCondition):
        return cast("Sequence[TerminationCondition]", condition._conditions)  # pyright: ignore[reportPrivateUsage]
    return ()


def check_supported(condition: TerminationCondition) -> None:
    """Raise ``UnsupportedComponentError`` if some part of ``condition`` cannot be saved."""
    if isinstance(condition, AndTerminationCondition | OrTerminationCondition):
        for child in _children(condition):
            check_supported(child)
    elif type(condition) not in _STATE_ATTRIBUTES:
        raise UnsupportedComponentError(
            f"the termination condition {type(condition).__qualname__} has no known state; "
            "call autogen_persist.register_termination_state(cls, *attributes) to declare it"
        )


def save_condition(condition: TerminationCondition) -> dict[str, Any]:
    """The run-time state of ``condition`` and its children, as JSON."""
    state: dict[str, Any] = {"type": type(condition).__name__}
    if isinstance(condition, AndTerminationCondition):
        stops = condition._stop_messages  # pyright: ignore[reportPrivateUsage]
        state["stop_messages"] = [message.dump() for message in stops]
    if isinstance(condition, AndTerminationCondition | OrTerminationCondition):
        state["children"] = [save_condition(child) for child in _children(condition)]
        return state
    for attribute in _STATE_ATTRIBUTES[type(condition)]:
        state[attribute.lstrip("_")] = getattr(condition, attribute)
    if isinstance(condition, TimeoutTermination):
        start: float = condition._start_time  # pyright: ignore[reportPrivateUsage]
        state["elapsed_seconds"] = time.monotonic() - start
    return state


def load_condition(condition: TerminationCondition, state: Any) -> None:
    """Put the state :func:`save_condition` produced back into a freshly built condition."""
    if (
        not isinstance(state, dict)
        or cast("dict[str, Any]", state).get("type") != type(condition).__name__
    ):
        raise CorruptCheckpointError(
            f"saved termination state {state!r} does not fit {type(condition).__name__}"
        )
    fields = cast("dict[str, Any]", state)
    if isinstance(condition, AndTerminationCondition):
        condition._stop_messages = [  # pyright: ignore[reportPrivateUsage]
            StopMessage.load(message) for message in fields.get("stop_messages", [])
        ]
    if isinstance(condition, AndTerminationCondition | OrTerminationCondition):
        children = _children(condition)
        saved = fields.get("children")
        if not isinstance(saved, list) or len(cast("list[Any]", saved)) != len(children):
            raise CorruptCheckpointError(
                f"saved {type(condition).__name__} has other children than the team's"
            )
        for child, child_state in zip(children, cast("list[Any]", saved), strict=True):
            load_condition(child, child_state)
        return
    for attribute in _STATE_ATTRIBUTES[type(condition)]:
        setattr(condition, attribute, fields.get(attribute.lstrip("_")))
    if isinstance(condition, TimeoutTermination):
        elapsed = float(fields.get("elapsed_seconds", 0.0))
        condition._start_time = time.monotonic() - elapsed  # pyright: ignore[reportPrivateUsage]


class _NoConfig(BaseModel):
    pass


class DurableTermination(TerminationCondition):
    """Wraps the team's condition: records when it fires and ignores resets while stepping."""

    def __init__(self, inner: TerminationCondition | None) -> None:
        if inner is not None:
            check_supported(inner)
        self.inner = inner
        self.stepping = False
        self.fired: StopMessage | None = None

    @property
    def terminated(self) -> bool:
        """Whether the user's condition has fired (and not been reset)."""
        return self.inner is not None and self.inner.terminated

    async def __call__(
        self, messages: Sequence[BaseAgentEvent | BaseChatMessage]
    ) -> StopMessage | None:
        """Check the user's condition; remember its stop message."""
        if self.inner is None:
            return None
        stop = await self.inner(messages)
        if stop is not None:
            self.fired = stop
        return stop

    async def reset(self) -> None:
        """Reset the user's condition, unless a step is running (the runner resets it)."""
        if not self.stepping and self.inner is not None:
            await self.inner.reset()

    async def finish(self) -> None:
        """The run ended: reset the user's condition as AutoGen does at a real stop."""
        self.fired = None
        if self.inner is not None:
            await self.inner.reset()

    def save(self) -> dict[str, Any] | None:
        """The user's condition's run-time state, or ``None`` when the team has none."""
        return None if self.inner is None else save_condition(self.inner)

    def load(self, state: Any) -> None:
        """Restore what :meth:`save` returned into the freshly built condition."""
        if self.inner is not None and state is not None:
            load_condition(self.inner, state)

    def _to_config(self) -> BaseModel:
        return _NoConfig()
