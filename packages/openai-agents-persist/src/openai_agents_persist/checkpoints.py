"""Per-turn checkpoints: the application state and usage recorded with each turn's items.

    session = StoreSession("user-1", store=store, state=lambda ctx: ctx.context.as_json())
    await Runner.run(agent, "hi", session=session)
    latest = await session.last_checkpoint()
    latest.state, latest.usage["total_tokens"], latest.turn_usage["total_tokens"]

The Runner calls ``add_items`` once with the user input and once per turn after its tools
ran, and that is the only point where a turn is complete (FINDINGS section 2: no end-of-turn
hook exists). So the session writes the turn's items and one checkpoint envelope in a single
atomic ``put``: after a crash, the state and the history always agree.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from typing import Any, TypeAlias

from agents import RunContextWrapper, Usage

from agent_persist import Envelope, Producer

from .items import SDK_VERSION
from .plugin import RUN_STATE_KIND, TURN_KIND

__all__ = [
    "RUN_STATE_KIND",
    "TURN_KIND",
    "StateHook",
    "TurnCheckpoint",
    "UsageTracker",
    "call_state_hook",
    "producer",
    "usage_dict",
]


StateHook: TypeAlias = Callable[[RunContextWrapper[Any] | None], "Any | Awaitable[Any]"]
"""Returns the JSON application state to record with a turn (files read, task, budget...)."""

_USAGE_FIELDS = ("requests", "input_tokens", "output_tokens", "total_tokens")


@functools.cache  # reading package metadata costs 1-2 ms, on every checkpoint
def producer() -> Producer:
    """Who writes this adapter's envelopes."""
    return Producer(
        package="openai-agents-persist",
        package_version=version("openai-agents-persist"),
        framework="openai-agents",
        framework_version=SDK_VERSION,
    )


def usage_dict(usage: Usage | None) -> dict[str, int]:
    """The token counts of a ``Usage`` as plain JSON (zeros when there is none)."""
    return {name: int(getattr(usage, name, 0) or 0) for name in _USAGE_FIELDS}


class UsageTracker:
    """Turns the run's cumulative usage into per-turn deltas, per run context."""

    def __init__(self) -> None:
        self._usage: Usage | None = None
        self._seen: dict[str, int] = usage_dict(None)

    def turn(self, usage: Usage | None) -> dict[str, int]:
        """The usage since the previous call for the same run (all of it for a new run)."""
        now = usage_dict(usage)
        before = self._seen if usage is not None and usage is self._usage else usage_dict(None)
        self._usage, self._seen = usage, now
        return {name: now[name] - before[name] for name in _USAGE_FIELDS}


async def call_state_hook(hook: StateHook | None, wrapper: RunContextWrapper[Any] | None) -> Any:
    """Run the user's hook, sync or async; no hook records ``None``."""
    if hook is None:
        return None
    result = hook(wrapper)
    if inspect.isawaitable(result):
        result = await result
    return result


@dataclass(frozen=True, slots=True)
class TurnCheckpoint:
    """What a per-turn checkpoint recorded, as read back.

    Attributes:
        state: What the state hook returned for that turn.
        usage: The run's cumulative usage at that turn.
        turn_usage: The usage of that turn alone.
        items: How many session items the turn added.
        step: The checkpoint's position in the session's history.
        checkpoint_id: The envelope's id.
        created_at: When it was written (UTC).
    """

    state: Any
    usage: dict[str, int]
    turn_usage: dict[str, int]
    items: int
    step: int
    checkpoint_id: str
    created_at: datetime

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> TurnCheckpoint:
        """Read a ``openai_agents.turn`` envelope."""
        payload: dict[str, Any] = envelope.payload
        return cls(
            state=payload.get("state"),
            usage=dict(payload.get("usage") or {}),
            turn_usage=dict(payload.get("turn_usage") or {}),
            items=int(payload.get("items") or 0),
            step=envelope.step,
            checkpoint_id=envelope.checkpoint_id,
            created_at=envelope.created_at,
        )
