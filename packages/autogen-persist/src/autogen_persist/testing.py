"""A deterministic model double whose every reply is a hash of the whole prompt.

    from autogen_persist.testing import HashChatCompletionClient

    client = HashChatCompletionClient(name="writer", tool_every=3)
    agent = AssistantAgent("writer", model_client=client, tools=[add])

Any lost, duplicated or reordered message in an agent's context changes the prompt, so it
changes that reply and, through the transcript, every later one: comparing the transcript of
a resumed run with an uninterrupted one is then a strong check. Unlike
``ReplayChatCompletionClient`` it has no position to fast-forward after a restart, so a
fresh process builds it exactly as the first one did. It is a declarative component, so
``dump_component()`` (and so the team's fingerprint) works with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal, cast

from autogen_core import CancellationToken, Component, FunctionCall
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelCapabilities,  # pyright: ignore[reportDeprecated]
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel
from typing_extensions import Self

__all__ = ["HashChatCompletionClient", "HashChatCompletionClientConfig"]


class HashChatCompletionClientConfig(BaseModel):
    """The declarative configuration of :class:`HashChatCompletionClient`."""

    name: str = "hash"
    tool_every: int = 0
    choices: list[str] = []
    stop_text: str | None = None
    stop_after: int = 0
    parallel_tools: int | None = None
    """``None`` stands for 1, so a default client's configuration (and fingerprint) is unchanged."""


class HashChatCompletionClient(ChatCompletionClient, Component[HashChatCompletionClientConfig]):
    """Replies with a digest of the prompt; calls tools and names speakers deterministically.

    Args:
        name: A label put in every reply (and hashed), so two agents differ.
        tool_every: When tools are offered and the last message is not a tool result, call
            one when the digest is divisible by this (0 never calls tools).
        choices: When given, the reply is one of these, picked by the digest (a selector).
        stop_text: Appended to the reply once the prompt holds ``stop_after`` messages or
            more, so a ``TextMentionTermination`` fires at a predictable turn.
        stop_after: See ``stop_text``.
        parallel_tools: How many tool calls one tool-calling reply holds (AutoGen runs
            them concurrently); the first is the one a single-call reply would make.
    """

    component_type = "model"
    component_config_schema = HashChatCompletionClientConfig
    component_provider_override = "autogen_persist.testing.HashChatCompletionClient"

    def __init__(
        self,
        *,
        name: str = "hash",
        tool_every: int = 0,
        choices: Sequence[str] = (),
        stop_text: str | None = None,
        stop_after: int = 0,
        parallel_tools: int = 1,
    ) -> None:
        if parallel_tools < 1:
            raise ValueError(f"parallel_tools must be at least 1, got {parallel_tools}")
        self._config = HashChatCompletionClientConfig(
            name=name,
            tool_every=tool_every,
            choices=list(choices),
            stop_text=stop_text,
            stop_after=stop_after,
            parallel_tools=None if parallel_tools == 1 else parallel_tools,
        )
        self._usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._total = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self.calls = 0

    def _digest(self, messages: Sequence[LLMMessage], tools: Sequence[Tool | ToolSchema]) -> int:
        prompt = {
            "name": self._config.name,
            "messages": [message.model_dump(mode="json") for message in messages],
            "tools": [_schema(tool)["name"] for tool in tools],
        }
        encoded = json.dumps(prompt, sort_keys=True, separators=(",", ":")).encode()
        return int.from_bytes(hashlib.sha256(encoded).digest()[:8], "big")

    def _reply(
        self, messages: Sequence[LLMMessage], tools: Sequence[Tool | ToolSchema]
    ) -> CreateResult:
        config = self._config
        digest = self._digest(messages, tools)
        prompt_tokens = sum(len(str(getattr(m, "content", "")).split()) for m in messages)
        wants_tool = (
            tools
            and config.tool_every > 0
            and digest % config.tool_every == 0
            and not (messages and isinstance(messages[-1], FunctionExecutionResultMessage))
        )
        content: str | list[FunctionCall]
        if wants_tool:
            content = [
                _tool_call(tools, digest, index) for index in range(config.parallel_tools or 1)
            ]
            finish: Literal["stop", "function_calls"] = "function_calls"
            completion_tokens = 1
        else:
            if config.choices:
                text = config.choices[digest % len(config.choices)]
            else:
                text = f"{config.name} says {digest:016x}"
            if config.stop_text is not None and len(messages) >= config.stop_after:
                text = f"{text} {config.stop_text}"
            content, finish, completion_tokens = text, "stop", len(text.split())
        self._usage = RequestUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        self._total = RequestUsage(
            prompt_tokens=self._total.prompt_tokens + prompt_tokens,
            completion_tokens=self._total.completion_tokens + completion_tokens,
        )
        self.calls += 1
        return CreateResult(finish_reason=finish, content=content, usage=self._usage, cached=False)

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """The reply this prompt always gets."""
        return self._reply(messages, tools)

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """The same reply as :meth:`create`, the text first as one chunk."""
        result = self._reply(messages, tools)
        if isinstance(result.content, str):
            yield result.content
        yield result

    async def close(self) -> None:
        """Nothing to release."""

    def actual_usage(self) -> RequestUsage:
        """Usage of the last call."""
        return self._usage

    def total_usage(self) -> RequestUsage:
        """Usage of every call so far."""
        return self._total

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        """Words in the prompt: a stable stand-in for tokens."""
        return sum(len(str(getattr(m, "content", "")).split()) for m in messages)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        """A large window minus the prompt."""
        return 1_000_000 - self.count_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:  # pyright: ignore[reportDeprecated]
        """Deprecated by AutoGen; the same as :attr:`model_info`."""
        return {"vision": False, "function_calling": True, "json_output": False}

    @property
    def model_info(self) -> ModelInfo:
        """A text model with function calling, of an unknown family."""
        return {
            "vision": False,
            "function_calling": True,
            "json_output": False,
            "family": "unknown",
            "structured_output": False,
        }

    def _to_config(self) -> HashChatCompletionClientConfig:
        return self._config.model_copy()

    @classmethod
    def _from_config(cls, config: HashChatCompletionClientConfig) -> Self:
        return cls(**config.model_dump(exclude_none=True))


def _schema(tool: Tool | ToolSchema) -> ToolSchema:
    return tool.schema if isinstance(tool, Tool) else tool


def _tool_call(tools: Sequence[Tool | ToolSchema], digest: int, index: int) -> FunctionCall:
    """The ``index``-th call of a reply: the next tool and other arguments for each one."""
    schema = _schema(tools[(digest + index) % len(tools)])
    seed = digest if index == 0 else digest >> (index * 3)
    suffix = "" if index == 0 else f"_{index}"
    return FunctionCall(
        id=f"call_{digest:016x}{suffix}",
        name=schema["name"],
        arguments=json.dumps(_arguments(schema, seed)),
    )


def _arguments(schema: ToolSchema, digest: int) -> dict[str, Any]:
    """Arguments for every declared parameter, derived from the digest."""
    parameters: Mapping[str, Any] = schema.get("parameters") or {}
    properties: Mapping[str, Any] = parameters.get("properties") or {}
    arguments: dict[str, Any] = {}
    for index, (name, spec) in enumerate(sorted(properties.items())):
        value = (digest >> (index * 7)) % 100
        kind = cast("Mapping[str, Any]", spec).get("type") if isinstance(spec, Mapping) else None
        if kind == "string":
            arguments[name] = f"v{value}"
        elif kind == "boolean":
            arguments[name] = value % 2 == 0
        elif kind == "number":
            arguments[name] = value / 4
        else:
            arguments[name] = value
    return arguments
