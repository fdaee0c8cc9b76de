"""The call journal installed on an agent graph: its ``Model`` instances and function tools.

    install_journal(agent)                 # once, when @durable is applied
    with journaling(journal, position):    # for the duration of one durable call
        await Runner.run(agent, user_input, session=session)

The user's run function calls ``Runner.run`` with its own agent object, so the wrappers are
installed in place on that graph (the agent and the agents reachable through handoffs):
every ``Model`` instance becomes a :class:`JournaledModel` and every ``FunctionTool`` a copy
whose ``on_invoke_tool`` is journaled. Outside a durable call (no active journal in the
context) they pass every call through unchanged, so the same agent still works in plain
``Runner.run`` calls. The active journal lives in a context variable, which the tasks the
Runner creates inherit (and ``asyncio.to_thread`` copies for synchronous tools, so
:func:`agent_persist.journal.idempotency_key` works in their bodies).

A model given by name (a string, or ``None`` for the default) is resolved by the Runner's
model provider on each run, out of reach: its calls are not journaled. Give the agent a
``Model`` instance to have them journaled (``OpenAIResponsesModel(model="gpt-4.1",
openai_client=AsyncOpenAI())`` or ``OpenAIProvider().get_model("gpt-4.1")``).

Handoffs are not journaled (their output is fixed); an agent used as a tool is a function
tool, journaled as one call (its own model calls are inside it).
"""

# pyright: reportPrivateUsage=false

from __future__ import annotations

import contextvars
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from agents import Agent, FunctionTool, Handoff, ModelResponse, ModelSettings, Tool
from agents.agent_output import AgentOutputSchemaBase
from agents.items import TResponseInputItem, TResponseOutputItem, TResponseStreamEvent
from agents.models.interface import Model, ModelTracing
from agents.tool import ToolOutputFileContent, ToolOutputImage, ToolOutputText
from agents.tool_context import ToolContext
from agents.usage import deserialize_usage, serialize_usage
from openai.types.responses import ResponseCompletedEvent, ResponseOutputItemDoneEvent
from openai.types.responses.response_prompt_param import ResponsePromptParam
from pydantic import BaseModel, TypeAdapter

from agent_persist._journal import Journal, Span

__all__ = [
    "JournaledModel",
    "Position",
    "dump_output",
    "inner_model",
    "install_journal",
    "journaling",
    "plain",
]

logger = logging.getLogger("openai_agents_persist")

Position = Callable[[], Span]
"""Where the durable call is now: the span its journal entries are filed under."""


@dataclass(frozen=True, slots=True)
class _Active:
    journal: Journal
    position: Position


_ACTIVE: contextvars.ContextVar[_Active | None] = contextvars.ContextVar(
    "openai_agents_persist_journal", default=None
)

_OUTPUT_ITEM: TypeAdapter[TResponseOutputItem] = TypeAdapter(TResponseOutputItem)
_TOOL_OUTPUTS = (ToolOutputText, ToolOutputImage, ToolOutputFileContent)
_JOURNALED = "__openai_agents_persist_journaled__"


@contextmanager
def journaling(journal: Journal, position: Position) -> Generator[None]:
    """Make ``journal`` the active one while a durable call runs."""
    token = _ACTIVE.set(_Active(journal, position))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def plain(value: Any) -> Any:
    """``value`` as JSON for a fingerprint: models dumped, other objects by type name.

    Never ``repr`` (it may hold a memory address, different in every process, which would
    end replay at every resume).
    """
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        items = cast("dict[Any, Any]", value).items()
        return {str(k): plain(v) for k, v in items if v is not None}
    if isinstance(value, list | tuple):
        return [plain(v) for v in cast("list[Any]", value)]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return f"<{type(value).__qualname__}>"


def _tool(tool: Tool) -> dict[str, Any]:
    return {
        "name": str(getattr(tool, "name", type(tool).__name__)),
        "parameters": plain(getattr(tool, "params_json_schema", None)),
    }


def _model_request(
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
) -> dict[str, Any]:
    """What a model call depends on: instructions, input, settings, tools and the rest.

    Takes a ``Model`` call's own arguments; ``tracing`` does not change the reply.
    """
    schema: Any = None
    if output_schema is not None and not output_schema.is_plain_text():
        schema = {"name": output_schema.name(), "schema": plain(output_schema.json_schema())}
    return {
        "instructions": system_instructions,
        "input": plain(input),
        "settings": plain(model_settings.to_json_dict()),
        "tools": [_tool(tool) for tool in tools],
        "output_schema": schema,
        "handoffs": [handoff.tool_name for handoff in handoffs],
        "previous_response_id": previous_response_id,
        "conversation_id": conversation_id,
        "prompt": plain(prompt),
    }


def _dump_model(value: BaseModel) -> Any:
    """The fields that were set, by alias: what validates back into an equal object.

    Its ``model_dump(exclude_unset=True)`` (what the Runner stores in the session) is then
    the same as the original's: a dump of every field would add ``None`` fields to the items.
    """
    return value.model_dump(mode="json", exclude_unset=True, by_alias=True)


def _dump_response(response: ModelResponse) -> Any:
    return {
        "output": [_dump_model(item) for item in response.output],
        "usage": serialize_usage(response.usage),
        "response_id": response.response_id,
        "request_id": response.request_id,
    }


def _load_response(value: Any) -> ModelResponse:
    fields = cast("dict[str, Any]", value)
    return ModelResponse(
        output=[_OUTPUT_ITEM.validate_python(item) for item in fields["output"]],
        usage=deserialize_usage(fields["usage"]),
        response_id=fields.get("response_id"),
        request_id=fields.get("request_id"),
    )


def _dump_completed(event: ResponseCompletedEvent) -> Any:
    return _dump_model(event)


def _load_completed(value: Any) -> ResponseCompletedEvent:
    return ResponseCompletedEvent.model_validate(value)


class JournaledModel(Model):
    """A ``Model`` whose completed calls a durable call journals and replays after a crash."""

    def __init__(self, inner: Model, stream: str) -> None:
        self._inner, self._stream = inner, stream

    @property
    def inner(self) -> Model:
        """The wrapped model."""
        return self._inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

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
        """The recorded response to this request, or the wrapped model's (recorded)."""
        args = (system_instructions, input, model_settings, tools, output_schema, handoffs, tracing)

        def call() -> Awaitable[ModelResponse]:
            return self._inner.get_response(
                *args,
                previous_response_id=previous_response_id,
                conversation_id=conversation_id,
                prompt=prompt,
            )

        active = _ACTIVE.get()
        if active is None:
            return await call()
        return await active.journal.model_call(
            active.position(),
            self._stream,
            _model_request(
                *args,
                previous_response_id=previous_response_id,
                conversation_id=conversation_id,
                prompt=prompt,
            ),
            call,
            dump=_dump_response,
            load=_load_response,
        )

    def stream_response(
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
        """Stream live, journaling the ``response.completed`` event; replay yields only it.

        The Runner builds its ``ModelResponse`` from that event alone (its output, usage and
        id); when a backend leaves the completed response's output empty, the items of the
        ``output_item.done`` events are recorded in it, as the Runner would use them.
        """
        args = (system_instructions, input, model_settings, tools, output_schema, handoffs, tracing)

        def live() -> AsyncIterator[TResponseStreamEvent]:
            return _completed_with_items(
                self._inner.stream_response(
                    *args,
                    previous_response_id=previous_response_id,
                    conversation_id=conversation_id,
                    prompt=prompt,
                )
            )

        active = _ACTIVE.get()
        if active is None:
            return live()
        stream = active.journal.model_stream(
            active.position(),
            self._stream,
            _model_request(
                *args,
                previous_response_id=previous_response_id,
                conversation_id=conversation_id,
                prompt=prompt,
            ),
            live,
            is_final=lambda event: isinstance(event, ResponseCompletedEvent),
            replay=lambda event: [cast("TResponseStreamEvent", event)],
            dump=_dump_completed,
            load=_load_completed,
        )
        return cast("AsyncIterator[TResponseStreamEvent]", stream)

    async def close(self) -> None:
        """Close the wrapped model."""
        await self._inner.close()

    async def _cleanup_on_run_end(self, owner: object) -> None:
        await self._inner._cleanup_on_run_end(owner)

    def get_retry_advice(self, request: Any) -> Any:
        """The wrapped model's retry advice."""
        return self._inner.get_retry_advice(request)


async def _completed_with_items(
    events: AsyncIterator[TResponseStreamEvent],
) -> AsyncIterator[TResponseStreamEvent]:
    done: list[Any] = []
    async for event in events:
        if isinstance(event, ResponseOutputItemDoneEvent):
            done.append(event.item)
        elif isinstance(event, ResponseCompletedEvent) and not event.response.output and done:
            event.response.output = list(done)
        yield event


def inner_model(model: Any) -> Any:
    """``model`` without its journal wrapper: what fingerprints and drift checks see."""
    return model.inner if isinstance(model, JournaledModel) else model


# -- tools ---------------------------------------------------------------------------------


def _arguments(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def dump_output(value: Any) -> Any:
    """A tool's output as JSON the Runner turns into the same output item on replay."""
    if isinstance(value, _TOOL_OUTPUTS):
        return value.model_dump(mode="json")  # the Runner reads the dict the same way
    parts: list[Any] = cast("list[Any]", value) if isinstance(value, list) else []
    if parts and all(isinstance(part, _TOOL_OUTPUTS) for part in parts):
        return [cast("BaseModel", part).model_dump(mode="json") for part in parts]
    output: Any = cast("Any", value)
    try:
        json.dumps(output, allow_nan=False)
    except (TypeError, ValueError):
        return str(output)  # what the Runner makes of it
    return output


def _load_output(value: Any) -> Any:
    """A recorded output (or one a reconcile function or ``resolve_tool_call`` gave)."""
    return value


def _journaled_tool(tool: Tool, stream: str) -> Tool:
    """A copy of a function tool whose calls are journaled; other tools as they are."""
    if not isinstance(tool, FunctionTool) or getattr(tool.on_invoke_tool, _JOURNALED, False):
        return tool
    inner = tool.on_invoke_tool

    async def invoke(ctx: ToolContext[Any], raw: str) -> Any:
        active = _ACTIVE.get()
        if active is None:
            return await inner(ctx, raw)
        return await active.journal.tool_call(
            active.position(),
            stream,
            getattr(ctx, "tool_call_id", None) or None,
            tool.name,
            _arguments(raw),
            lambda: inner(ctx, raw),
            dump=dump_output,
            load=_load_output,
            record_errors=False,  # an error escaping a tool ends the SDK's run: unfinished
        )

    setattr(invoke, _JOURNALED, True)
    return dataclasses.replace(tool, on_invoke_tool=invoke)


def _graph(agent: Agent[Any]) -> list[Agent[Any]]:
    seen: dict[int, Agent[Any]] = {}
    pending: list[Agent[Any]] = [agent]
    while pending:
        current = pending.pop()
        if id(current) not in seen:
            seen[id(current)] = current
            pending.extend(h for h in current.handoffs if isinstance(h, Agent))
    return list(seen.values())


def install_journal(agent: Agent[Any]) -> None:
    """Wrap the ``Model`` instances and function tools of the graph, in place, once."""
    for member in _graph(agent):
        model = member.model
        if isinstance(model, Model) and not isinstance(model, JournaledModel):
            member.model = JournaledModel(model, member.name)
        elif not isinstance(model, Model):
            logger.info(
                "agent %r: its model is given by name (%r), so its calls are not journaled; "
                "give it a Model instance to journal them",
                member.name,
                model,
            )
        member.tools = [
            _journaled_tool(tool, member.name)
            if isinstance(tool, FunctionTool)
            and not getattr(tool.on_invoke_tool, _JOURNALED, False)
            else tool
            for tool in member.tools
        ]
