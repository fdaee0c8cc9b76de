"""Deterministic doubles for the journal tests: a model and tools that count completed work.

The model's reply is derived from a hash of everything it is sent (instructions and input),
so a resumed run whose model input differs from the uninterrupted run's gets other replies
(other call ids, other text) and the session items differ. Each turn but the last asks for
one tool call (or ``parallel`` ones, run concurrently by the Runner); the last answers with
a message.

Work is counted where it happens: ``Counter.model`` when the double returns a response,
``Counter.tools`` when a tool body returns. A ``crash_at`` event number makes the double (or
a tool, before its body does anything) raise :class:`WorkerDied`, a ``BaseException`` as a
dying worker would leave the stack: the SDK's tool error handling does not catch it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
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
"""Model calls of one uninterrupted run (all but the last ask for tool calls)."""


def tool_runs(parallel: int = 1) -> int:
    """Tool runs of one uninterrupted run whose turns ask for ``parallel`` calls each."""
    return parallel * (TURNS - 1)


def events(parallel: int = 1) -> int:
    """Model calls and tool runs of one uninterrupted run: where a crash can happen."""
    return TURNS + tool_runs(parallel)


class WorkerDied(BaseException):
    """The worker's death, simulated."""


class ModelDown(Exception):
    """The model provider failed (an ordinary error)."""


@dataclass
class Counter:
    """Completed work, and where to crash: the n-th event attempted (from 1), or the n-th tool
    run after its side effect (``die_in_tool``)."""

    model: int = 0
    tools: int = 0
    attempts: int = 0
    crash_at: int | None = None
    die_in_tool: int | None = None
    keys: list[str | None] = field(default_factory=lambda: [])
    tool_args: list[int] = field(default_factory=lambda: [])
    on_attempt: Callable[[int, str], None] | None = None
    on_done: Callable[[str], None] | None = None

    def attempt(self, what: str) -> None:
        """An event starts: the model (``ModelDown``) or the worker (in a tool) may fail."""
        self.attempts += 1
        if self.on_attempt is not None:
            self.on_attempt(self.attempts, what)
        if self.attempts == self.crash_at:
            self.crash_at = None
            error = ModelDown if what == "model" else WorkerDied
            raise error(f"crash at event {self.attempts} ({what})")

    def done(self, what: str) -> None:
        """An event completed: a reply returned, a tool's side effect happened."""
        if what == "model":
            self.model += 1
        else:
            self.tools += 1
            if self.tools == self.die_in_tool:
                self.die_in_tool = None
                raise WorkerDied(f"died in tool run {self.tools}, after its side effect")
        if self.on_done is not None:
            self.on_done(what)


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}  # pyright: ignore[reportUnknownVariableType]
    return value


def reply_for(
    instructions: str | None, items: str | list[TResponseInputItem], parallel: int = 1
) -> ModelResponse:
    """The reply to this input: ``parallel`` tool calls a turn until ``TURNS - 1`` rounds ran,
    then a message."""
    sent = json.dumps([instructions, _plain(items)], sort_keys=True)
    digest = hashlib.sha256(sent.encode()).hexdigest()[:10]
    sent_items: Any = [] if isinstance(items, str) else _plain(items)
    outputs = sum(1 for item in sent_items if item.get("type") == "function_call_output")
    turn = outputs // parallel
    usage = Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15)
    if turn < TURNS - 1:
        output = [
            function_call("step", {"n": parallel * turn + i}, call_id=f"call-{digest}-{i}")
            for i in range(parallel)
        ]
    else:
        output = [assistant_message(f"done {digest}", item_id=f"msg-{digest}")]
    return ModelResponse(output=output, usage=usage, response_id=f"resp-{digest}")


class HashModel(Model):
    """A model whose reply is a function of its input; counts the calls it completed."""

    def __init__(self, counter: Counter, parallel: int = 1) -> None:
        self.counter, self.parallel = counter, parallel

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
        response = reply_for(system_instructions, input, self.parallel)
        self.counter.done("model")
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
        reply = reply_for(system_instructions, input, self.parallel)
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
        self.counter.done("model")
        yield ResponseCompletedEvent(
            type="response.completed", response=response, sequence_number=0
        )


def step_tool(counter: Counter) -> FunctionTool:
    @function_tool
    async def step(n: int) -> str:
        """Do one step of the work (a side effect)."""
        counter.attempt("tool")
        counter.keys.append(idempotency_key())
        counter.tool_args.append(n)
        counter.done("tool")
        return f"step {n} done"

    return step


def make_agent(
    counter: Counter, *, instructions: str = "work in steps", parallel: int = 1
) -> Agent[Any]:
    return Agent(
        name="worker",
        instructions=instructions,
        model=HashModel(counter, parallel),
        tools=[step_tool(counter)],
    )
