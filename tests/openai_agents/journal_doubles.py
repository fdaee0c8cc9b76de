"""Deterministic doubles for the journal tests: a model and tools that count completed work.

The model's reply is derived from a hash of everything it is sent (instructions and input),
so a resumed run whose model input differs from the uninterrupted run's gets other replies
(other call ids, other text) and the session items differ. Each turn but the last asks for
two tool calls, run concurrently by the Runner; the last answers with a message.

Work is counted where it happens: ``Counter.model`` when the double returns a response,
``Counter.tools`` when a tool body returns. A ``crash_at`` event number makes the double (or
a tool, before its body does anything) raise :class:`WorkerDied`, a ``BaseException`` as a
dying worker would leave the stack: the SDK's tool error handling does not catch it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from agents import (
    Agent,
    FunctionTool,
    ModelResponse,
    ModelSettings,
    Tool,
    function_tool,
)
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import TResponseInputItem, TResponseStreamEvent
from agents.models.interface import Model, ModelTracing
from agents.testing import assistant_message, function_call
from agents.usage import Usage
from openai.types.responses import ResponseCompletedEvent
from openai.types.responses.response import Response
from openai.types.responses.response_prompt_param import ResponsePromptParam

from agent_persist.journal import idempotency_key

TURNS = 3
"""Model calls of one uninterrupted run (two of them ask for two tool calls each)."""
TOOL_RUNS = 2 * (TURNS - 1)
EVENTS = TURNS + TOOL_RUNS
"""Model calls and tool runs of one uninterrupted run: where a crash can happen."""


class WorkerDied(BaseException):  # noqa: N818 - it is not an error the run handles
    """The worker's death, simulated."""


class ModelDown(Exception):  # noqa: N818
    """The model provider failed (an ordinary error)."""


@dataclass
class Counter:
    """Completed work, and where to crash (the n-th event attempted, from 1)."""

    model: int = 0
    tools: int = 0
    attempts: int = 0
    crash_at: int | None = None
    crash_with: type[BaseException] = WorkerDied
    keys: list[str | None] = field(default_factory=lambda: [])
    tool_args: list[int] = field(default_factory=lambda: [])

    def attempt(self, what: str) -> None:
        self.attempts += 1
        if self.attempts == self.crash_at:
            self.crash_at = None
            raise self.crash_with(f"crash at event {self.attempts} ({what})")


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}  # pyright: ignore[reportUnknownVariableType]
    return value


def reply_for(instructions: str | None, items: str | list[TResponseInputItem]) -> ModelResponse:
    """The reply to this input: tool calls until ``TURNS - 1`` rounds ran, then a message."""
    sent = json.dumps([instructions, _plain(items)], sort_keys=True)
    digest = hashlib.sha256(sent.encode()).hexdigest()[:10]
    outputs = 0 if isinstance(items, str) else sum(
        1 for item in items if isinstance(item, dict) and item.get("type") == "function_call_output"
    )
    turn = outputs // 2
    usage = Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15)
    if turn < TURNS - 1:
        output = [
            function_call("step", {"n": 2 * turn + i}, call_id=f"call-{digest}-{i}")
            for i in range(2)
        ]
    else:
        output = [assistant_message(f"done {digest}", item_id=f"msg-{digest}")]
    return ModelResponse(output=output, usage=usage, response_id=f"resp-{digest}")


class HashModel(Model):
    """A model whose reply is a function of its input; counts the calls it completed."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff[Any, Any]],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        self.counter.attempt("model")
        response = reply_for(system_instructions, input)
        self.counter.model += 1
        return response

    async def stream_response(  # pyright: ignore[reportIncompatibleMethodOverride]
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff[Any, Any]],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        self.counter.attempt("model")
        reply = reply_for(system_instructions, input)
        response = Response(
            id=reply.response_id or "r",
            created_at=0,
            model="hash",
            object="response",
            output=reply.output,
            parallel_tool_calls=True,
            tool_choice="auto",
            tools=[],
        )
        self.counter.model += 1
        yield ResponseCompletedEvent(type="response.completed", response=response, sequence_number=0)


def step_tool(counter: Counter) -> FunctionTool:
    @function_tool
    async def step(n: int) -> str:
        """Do one step of the work (a side effect)."""
        counter.attempt("tool")
        counter.keys.append(idempotency_key())
        counter.tool_args.append(n)
        counter.tools += 1
        return f"step {n} done"

    return step


def make_agent(counter: Counter, *, instructions: str = "work in steps") -> Agent[Any]:
    return Agent(
        name="worker",
        instructions=instructions,
        model=HashModel(counter),
        tools=[step_tool(counter)],
    )
