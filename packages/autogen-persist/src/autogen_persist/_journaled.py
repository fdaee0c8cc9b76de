"""The call journal installed into a freshly built team or agent: model clients and tools.

    install_journal(team, journal, position)     # before the team's first run

Every model client an agent, a SocietyOfMind agent or a selector uses is wrapped in a
:class:`JournaledChatCompletionClient`, and every tool in an agent's static workbenches in a
:class:`JournaledTool` (other workbenches, such as MCP ones, whole, in a
:class:`JournaledWorkbench`). The wrappers ask :class:`agent_persist._journal.Journal` for a
recorded result first and record what they had to compute. Stream tools (an agent or a
team used as a tool: ``AgentTool``, ``TeamTool``) are left as they are, so their inner
events still stream; their calls are not journaled. Each wrapper knows its *stream*
(the agent's path in the team, ``$manager`` for a selector) so calls are numbered per
agent: agents of a GraphFlow that run in parallel cannot mix their numbers. Handoff tools
are not journaled: they return a fixed text and have no side effect.

The wrappers are installed after the configuration fingerprint was taken and before the
runtime builds the group chat manager (which copies the selector's client).
"""

# pyright: reportPrivateUsage=false

from __future__ import annotations

import contextvars
import copy
import functools
import inspect
import json
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any

from autogen_agentchat.agents import AssistantAgent, SocietyOfMindAgent
from autogen_agentchat.base import ChatAgent, Team
from autogen_agentchat.teams import BaseGroupChat
from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,  # pyright: ignore[reportDeprecated]
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import (
    BaseTool,
    FunctionTool,
    StaticWorkbench,
    StreamTool,
    TextResultContent,
    Tool,
    ToolResult,
    ToolSchema,
    Workbench,
)
from pydantic import BaseModel

from agent_persist._journal import Journal, Span

from ._capture import segment

__all__ = [
    "JournaledChatCompletionClient",
    "JournaledTool",
    "JournaledWorkbench",
    "format_error",
    "install_journal",
    "raise_journal_failure",
    "with_journal_note",
]

Position = Callable[[], Span]
"""Where the run is now: the span every journal entry is filed under."""


def _plain(value: Any) -> Any:
    """``value`` as JSON for a fingerprint; what JSON cannot hold becomes its type's name.

    Never its ``repr``: that may hold a memory address, different in every process, and
    would end replay at every resume.
    """
    return json.loads(json.dumps(value, default=_type_name))


def _type_name(value: object) -> str:
    return f"<{type(value).__qualname__}>"


def _model_request(
    messages: Sequence[LLMMessage],
    tools: Sequence[Tool | ToolSchema],
    tool_choice: Tool | str,
    json_output: bool | type[BaseModel] | None,
    extra_create_args: Mapping[str, Any],
) -> dict[str, Any]:
    """What a model call depends on: messages, tools and settings."""
    output: Any = json_output
    if isinstance(json_output, type):
        output = json_output.model_json_schema()
    return {
        "messages": [message.model_dump(mode="json") for message in messages],
        "tools": [_plain(tool.schema if isinstance(tool, Tool) else tool) for tool in tools],
        "tool_choice": tool_choice.name if isinstance(tool_choice, Tool) else tool_choice,
        "json_output": output,
        "extra": _plain(dict(extra_create_args)),
    }


def _dump_result(result: CreateResult) -> Any:
    return result.model_dump(mode="json")


def format_error(error: Exception) -> str:
    """A tool error's text as AutoGen's static workbench writes it (groups concatenated)."""
    inner: Sequence[Exception] | None = getattr(error, "exceptions", None)
    if inner is not None and hasattr(error, "derive"):
        return "".join(format_error(e) for e in inner).strip()
    return str(error).strip()


class JournaledChatCompletionClient(ChatCompletionClient):
    """A model client whose completed calls are journaled and replayed after a crash."""

    def __init__(
        self, inner: ChatCompletionClient, journal: Journal, position: Position, stream: str
    ) -> None:
        self._inner, self._journal, self._position, self._stream = inner, journal, position, stream

    @property
    def inner(self) -> ChatCompletionClient:
        """The wrapped client."""
        return self._inner

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Any = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """The recorded result of this request, or the wrapped client's (recorded)."""
        return await self._journal.model_call(
            self._position(),
            self._stream,
            _model_request(messages, tools, tool_choice, json_output, extra_create_args),
            lambda: self._inner.create(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=extra_create_args,
                cancellation_token=cancellation_token,
            ),
            dump=_dump_result,
            load=CreateResult.model_validate,
        )

    def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Any = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Stream live; a recorded result comes back as one chunk of its text, then itself."""
        request = _model_request(messages, tools, tool_choice, json_output, extra_create_args)

        async def live() -> AsyncGenerator[str | CreateResult, None]:
            async for chunk in self._inner.create_stream(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=extra_create_args,
                cancellation_token=cancellation_token,
            ):
                yield chunk

        return self._journal.model_stream(
            self._position(),
            self._stream,
            request,
            live,
            is_final=lambda chunk: isinstance(chunk, CreateResult),
            replay=_replay_stream,
            dump=_dump_result,
            load=CreateResult.model_validate,
        )

    async def close(self) -> None:
        """Close the wrapped client."""
        await self._inner.close()

    def actual_usage(self) -> RequestUsage:
        """The wrapped client's usage (replayed calls cost nothing)."""
        return self._inner.actual_usage()

    def total_usage(self) -> RequestUsage:
        """The wrapped client's total usage."""
        return self._inner.total_usage()

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """The wrapped client's count."""
        return self._inner.count_tokens(messages, tools=tools)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """The wrapped client's count."""
        return self._inner.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:  # pyright: ignore[reportDeprecated]
        """The wrapped client's capabilities."""
        return self._inner.capabilities  # pyright: ignore[reportDeprecated]

    @property
    def model_info(self) -> ModelInfo:
        """The wrapped client's model info."""
        return self._inner.model_info


def _tool_result(name: str, value: Any) -> ToolResult:
    """A recorded workbench result, or the text a reconcile function or a person gave."""
    if isinstance(value, str):
        return ToolResult(name=name, result=[TextResultContent(content=value)])
    return ToolResult.model_validate(value)


def _text(value: Any) -> Any:
    return value


def _replay_stream(result: CreateResult) -> list[str | CreateResult]:
    return [result.content, result] if isinstance(result.content, str) else [result]


def _with_context(tool: BaseTool[Any, Any]) -> BaseTool[Any, Any]:
    """``tool``, made to run a synchronous function with this context's variables.

    ``FunctionTool`` runs a plain function with ``run_in_executor``, which does not carry
    context variables to the thread: the copy runs it inside a copy of the current context,
    so :func:`agent_persist.journal.idempotency_key` works in the tool body too.
    """
    if not isinstance(tool, FunctionTool) or inspect.iscoroutinefunction(tool._func):
        return tool
    clone = copy.copy(tool)
    clone._func = functools.partial(contextvars.copy_context().run, tool._func)
    return clone


class JournaledTool(BaseTool[BaseModel, Any]):
    """A tool whose completed runs are journaled: it returns the result's text, recorded."""

    def __init__(
        self, inner: BaseTool[Any, Any], journal: Journal, position: Position, stream: str
    ) -> None:
        super().__init__(
            inner.args_type(), inner.return_type(), inner.name, inner.description, inner._strict
        )
        self._inner, self._journal, self._position, self._stream = inner, journal, position, stream

    @property
    def inner(self) -> BaseTool[Any, Any]:
        """The wrapped tool."""
        return self._inner

    @property
    def schema(self) -> ToolSchema:
        """The wrapped tool's schema."""
        return self._inner.schema

    def state_type(self) -> type[BaseModel] | None:
        """The wrapped tool's state type."""
        return self._inner.state_type()

    def return_value_as_string(self, value: Any) -> str:
        """Text stays text (a journaled result); anything else as the wrapped tool says."""
        return value if isinstance(value, str) else self._inner.return_value_as_string(value)

    async def run(self, args: BaseModel, cancellation_token: CancellationToken) -> Any:
        """Unjournaled: the wrapped tool's ``run`` (``run_json`` is the journaled entry)."""
        return await self._inner.run(args, cancellation_token)

    async def run_json(
        self,
        args: Mapping[str, Any],
        cancellation_token: CancellationToken,
        call_id: str | None = None,
    ) -> Any:
        """The recorded result of this call, or the tool's, as text, recorded first."""

        async def live() -> Any:
            value = await _with_context(self._inner).run_json(
                args, cancellation_token, call_id=call_id
            )
            return self._inner.return_value_as_string(value)

        return await self._journal.tool_call(
            self._position(),
            self._stream,
            call_id,
            self.name,
            _plain(dict(args)),
            live,
            dump=_text,
            load=lambda value: value,
            error_text=format_error,
        )

    async def save_state_json(self) -> Mapping[str, Any]:
        """The wrapped tool's state."""
        return await self._inner.save_state_json()

    async def load_state_json(self, state: Mapping[str, Any]) -> None:
        """Into the wrapped tool."""
        await self._inner.load_state_json(state)


class JournaledWorkbench(Workbench):
    """A workbench other than a static one, whose tool calls are journaled whole."""

    def __init__(self, inner: Workbench, journal: Journal, position: Position, stream: str) -> None:
        self._inner, self._journal, self._position, self._stream = inner, journal, position, stream

    async def list_tools(self) -> list[ToolSchema]:
        """The wrapped workbench's tools."""
        return await self._inner.list_tools()

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
        call_id: str | None = None,
    ) -> ToolResult:
        """The recorded result of this call, or the wrapped workbench's, recorded."""
        return await self._journal.tool_call(
            self._position(),
            self._stream,
            call_id,
            name,
            _plain(dict(arguments or {})),
            lambda: self._inner.call_tool(name, arguments, cancellation_token, call_id),
            dump=lambda result: result.model_dump(mode="json"),
            load=lambda value: _tool_result(name, value),
            error_text=format_error,
        )

    async def start(self) -> None:
        """Start the wrapped workbench."""
        await self._inner.start()

    async def stop(self) -> None:
        """Stop the wrapped workbench."""
        await self._inner.stop()

    async def reset(self) -> None:
        """Reset the wrapped workbench."""
        await self._inner.reset()

    async def save_state(self) -> Mapping[str, Any]:
        """The wrapped workbench's state."""
        return await self._inner.save_state()

    async def load_state(self, state: Mapping[str, Any]) -> None:
        """Into the wrapped workbench."""
        await self._inner.load_state(state)


def _wrap_client(owner: object, journal: Journal, position: Position, stream: str) -> None:
    client = getattr(owner, "_model_client", None)
    if isinstance(client, ChatCompletionClient) and not isinstance(
        client, JournaledChatCompletionClient
    ):
        owner._model_client = JournaledChatCompletionClient(  # type: ignore[attr-defined]
            client, journal, position, stream
        )


def _wrap_workbench(
    bench: Workbench, journal: Journal, position: Position, stream: str
) -> Workbench:
    if isinstance(bench, StaticWorkbench):
        tools: list[BaseTool[Any, Any]] = [
            tool
            if isinstance(tool, JournaledTool | StreamTool)  # agents and teams as tools
            else JournaledTool(tool, journal, position, stream)
            for tool in bench._tools
        ]
        bench._tools = tools
        return bench
    if isinstance(bench, JournaledWorkbench):
        return bench
    return JournaledWorkbench(bench, journal, position, stream)


def install_journal(
    component: Team | ChatAgent, journal: Journal, position: Position, path: str = ""
) -> None:
    """Wrap every model client and tool of a team or agent, recursively."""
    if isinstance(component, BaseGroupChat):
        names = component._participant_names
        for name, participant in zip(names, component._participants, strict=True):
            install_journal(participant, journal, position, path + segment(name))
        _wrap_client(component, journal, position, path + "$manager")
        return
    _wrap_client(component, journal, position, path or "$agent")
    if isinstance(component, AssistantAgent):
        component._workbench = [
            _wrap_workbench(bench, journal, position, path or "$agent")
            for bench in component._workbench
        ]
    elif isinstance(component, SocietyOfMindAgent):
        install_journal(component._team, journal, position, path)


def with_journal_note(
    metadata: dict[str, Any] | None, journal: Journal | None
) -> dict[str, Any] | None:
    """A checkpoint's metadata with the journal's note (replays, a replay that ended)."""
    note = None if journal is None else journal.take_note()
    if note is None:
        return metadata
    return {**(metadata or {}), "journal": note}


def raise_journal_failure(journal: Journal | None) -> None:
    """Raise the error that stopped the journal, if any, before a checkpoint is written.

    AutoGen's workbench turns a tool's exception into a tool error the model reads, so a
    journal append that failed inside a tool (a lost lease, the store down) would
    otherwise let the turn end normally and its checkpoint empty the journal, forgetting
    that the tool ran.
    """
    if journal is not None and journal.failure is not None:
        raise journal.failure
