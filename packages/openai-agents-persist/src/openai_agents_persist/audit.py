"""An audit trail: per session its messages, tool calls, tokens and cost; queryable by user.

    audit = AuditTrail(open_store("postgresql://...", namespace="audit"))
    await Runner.run(agent, "hi", session=session, hooks=audit.hooks("session-1", user="ann"))
    report = await audit.report("session-1")        # messages, tool_calls, tokens, cost_usd
    total = await audit.report_for_user("ann")      # every session of the user

Events go to the ``audit`` log of the session's thread through the store's
``append_audit`` and each user's sessions to the ``sessions`` log of ``user:<id>``, appended
as they happen, so the report works on every store (give it a store in a namespace of its
own). On the SQL stores the same events are also rows of real, indexed tables
(``agent_persist_audit_sessions``, ``_messages``, ``_tool_calls``), written in the same
transaction, for SQL and BI tools; ``agent-persist audit backfill`` fills them for sessions
recorded before. An assistant message carries the tokens and cost of the model call that
produced it; a call that produced no message (only tool calls) is an ``llm`` event. Cost
comes from a price table in USD per million tokens, which the user overrides per model.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from agents import Agent, ModelResponse, RunContextWrapper, RunHooks, Tool

from agent_persist import BaseStore

from ._journaled import inner_model

__all__ = ["DEFAULT_PRICES", "AuditHooks", "AuditReport", "AuditTrail"]

DEFAULT_PRICES: Mapping[str, tuple[float, float]] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
}
"""USD per million (input, output) tokens; override with ``AuditTrail(prices=...)``."""

AUDIT_LOG = "audit"
SESSIONS_LOG = "sessions"


@dataclass
class AuditReport:
    """What a session (or all of a user's sessions) did."""

    messages: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    tool_calls: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, event: dict[str, Any]) -> None:
        """Fold one stored event into the report."""
        kind = event.get("event")
        if kind == "message":
            self.messages.append(event)
        elif kind == "tool_call":
            self.tool_calls.append(event)
        if kind in ("message", "llm"):
            self.input_tokens += int(event.get("input_tokens", 0))
            self.output_tokens += int(event.get("output_tokens", 0))
            self.cost_usd += float(event.get("cost_usd", 0.0))


MAX_NAME = 256
"""The longest model name, tool name, call id or user the audit tables index."""


def _model_name(agent: Agent[Any]) -> str:
    model = inner_model(agent.model)
    name = model if isinstance(model, str) else str(getattr(model, "model", type(model).__name__))
    return name[:MAX_NAME] or "unknown"


def _text(item: Any) -> str:
    content = getattr(item, "content", None)
    if isinstance(content, list):
        return "".join(str(getattr(part, "text", "")) for part in cast("list[Any]", content))
    return str(content or "")


class AuditHooks(RunHooks[Any]):
    """Run hooks that append one audit event per message, tool call and model call."""

    def __init__(self, trail: AuditTrail, session_id: str, *, user: str | None = None) -> None:
        self._trail, self._session_id, self._user = trail, session_id, user
        self._started: dict[str, float] = {}

    async def on_agent_start(self, context: Any, agent: Agent[Any]) -> None:
        """Index the session under its user, once per run (and name the user in the trail)."""
        if self._user is not None:
            await self._trail.index(self._user, self._session_id)
            await self._record({"event": "session", "user": self._user})
            self._user = None

    async def _record(self, event: dict[str, Any]) -> None:
        event["at"] = time.time()
        await self._trail.store.append_audit(self._session_id, [event])

    async def on_llm_start(
        self,
        context: RunContextWrapper[Any],
        agent: Agent[Any],
        system_prompt: str | None,
        input_items: list[Any],
    ) -> None:
        """Record the user's message that starts a turn."""
        last = cast("dict[str, Any]", input_items[-1]) if input_items else {}
        if last.get("role") == "user":
            await self._record({"event": "message", "role": "user", "content": last["content"]})

    async def on_llm_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
    ) -> None:
        """Record the model's messages, its tokens and their cost (on its last message).

        A call that produced no message (it only called tools) is an ``llm`` event.
        """
        model = _model_name(agent)
        usage = response.usage
        call: dict[str, Any] = {
            "model": model,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cost_usd": self._trail.cost(model, usage.input_tokens, usage.output_tokens),
        }
        texts = [
            _text(item) for item in response.output if getattr(item, "type", None) == "message"
        ]
        events: list[dict[str, Any]] = [
            {"event": "message", "role": "assistant", "content": text, "model": model}
            for text in texts
        ]
        if events:
            events[-1].update(call)
        else:
            events = [{"event": "llm", **call}]
        for event in events:
            await self._record(event)

    @staticmethod
    def _call_id(context: RunContextWrapper[Any], tool: Tool) -> str:
        return str(getattr(context, "tool_call_id", tool.name))

    async def on_tool_start(
        self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool
    ) -> None:
        """Start the tool's clock."""
        self._started[self._call_id(context, tool)] = time.perf_counter()

    async def on_tool_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool, result: object
    ) -> None:
        """Record the call: name, input, output and duration."""
        call_id = self._call_id(context, tool)
        started = self._started.pop(call_id, time.perf_counter())
        await self._record(
            {
                "event": "tool_call",
                **({"call_id": call_id[:MAX_NAME]} if call_id else {}),
                "name": tool.name[:MAX_NAME] or "unnamed",
                "input": str(getattr(context, "tool_arguments", "")),
                "output": str(result),
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            }
        )


class AuditTrail:
    """Where audit events are written and read back.

    Args:
        store: The store for the trail (best in a namespace of its own).
        prices: USD per million (input, output) tokens by model name; merged over
            :data:`DEFAULT_PRICES`. Unknown models cost 0.
    """

    def __init__(
        self, store: BaseStore, *, prices: Mapping[str, tuple[float, float]] | None = None
    ) -> None:
        self.store = store
        self.prices = {**DEFAULT_PRICES, **(prices or {})}

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """The USD cost of a model call under this trail's price table."""
        per_input, per_output = self.prices.get(model, (0.0, 0.0))
        return (input_tokens * per_input + output_tokens * per_output) / 1_000_000

    def hooks(self, session_id: str, *, user: str | None = None) -> AuditHooks:
        """The ``hooks=`` for one run of a session (and, with ``user``, index it by user).

        Raises:
            ValueError: ``user`` is empty or longer than 256 characters (the audit tables
                index it), so a run is refused before it starts, not halfway.
        """
        if user is not None and not 0 < len(user) <= MAX_NAME:
            raise ValueError(f"user must be 1 to {MAX_NAME} characters, got {len(user)}")
        return AuditHooks(self, session_id, user=user)

    async def index(self, user: str, session_id: str) -> None:
        """Record that ``session_id`` belongs to ``user`` (idempotent)."""
        if session_id not in await self.sessions_of(user):
            await self.store.append(f"user:{user}", SESSIONS_LOG, [session_id])

    async def sessions_of(self, user: str) -> list[str]:
        """The user's sessions, oldest first."""
        return [str(s) for s in await self.store.read_log(f"user:{user}", SESSIONS_LOG)]

    async def report(self, session_id: str) -> AuditReport:
        """Everything recorded for one session."""
        report = AuditReport()
        for event in await self.store.read_log(session_id, AUDIT_LOG):
            report.add(cast("dict[str, Any]", event))
        return report

    async def report_for_user(self, user: str) -> AuditReport:
        """Every session of a user, folded into one report."""
        total = AuditReport()
        for session_id in await self.sessions_of(user):
            for event in await self.store.read_log(session_id, AUDIT_LOG):
                total.add(cast("dict[str, Any]", event))
        return total
