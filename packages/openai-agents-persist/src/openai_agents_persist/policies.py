"""Context policies: what the model is sent, while the store keeps the full history.

    run_config = RunConfig(session_input_callback=context_policy(
        TrimToolOutputs(max_chars=2_000),
        SummaryPlusRecent(recent=20, summarizer=my_summarizer),   # or SlidingWindow(last=30)
    ))
    await Runner.run(agent, "next question", session=session, run_config=run_config)

Each policy maps the stored history to the history sent; :func:`context_policy` chains them
into the SDK's ``session_input_callback``, which only shapes the model input: the SDK still
appends just the new items to the session, so nothing stored is ever dropped.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

from agent_persist import canonical_json

__all__ = [
    "Policy",
    "SlidingWindow",
    "Summarizer",
    "SummaryPlusRecent",
    "TrimToolOutputs",
    "context_policy",
]

Item: TypeAlias = dict[str, Any]
Policy: TypeAlias = Callable[[list[Item]], "list[Item] | Awaitable[list[Item]]"]
"""A function from the stored history to the history the model sees."""
Summarizer: TypeAlias = Callable[[list[Item]], "str | Awaitable[str]"]
"""Summarises older items in a few sentences (usually a call to a cheap model)."""

_INSTRUCTION_ROLES = frozenset({"system", "developer"})


def _split_instructions(items: list[Item]) -> tuple[list[Item], list[Item]]:
    """The first system/developer item (kept always) and the rest."""
    if items and items[0].get("role") in _INSTRUCTION_ROLES:
        return items[:1], items[1:]
    return [], items


def _recent(items: list[Item], count: int) -> list[Item]:
    """The last ``count`` items, never starting with a tool output whose call was cut off."""
    window = items[len(items) - count :] if count else []
    while window and str(window[0].get("type", "")).endswith("_call_output"):
        window = window[1:]
    return window


class SlidingWindow:
    """The last ``last`` items, always keeping the first system/developer item."""

    def __init__(self, *, last: int) -> None:
        if last < 1:
            raise ValueError(f"last must be at least 1, got {last}")
        self.last = last

    def __call__(self, items: list[Item]) -> list[Item]:
        """The window of ``items`` the model sees."""
        head, rest = _split_instructions(items)
        return head + _recent(rest, self.last)


class SummaryPlusRecent:
    """Older items replaced by one summary message, the ``recent`` newest kept verbatim.

    The summary of a given prefix is computed once and reused while only newer items change.
    """

    def __init__(self, *, recent: int, summarizer: Summarizer) -> None:
        if recent < 1:
            raise ValueError(f"recent must be at least 1, got {recent}")
        self.recent = recent
        self.summarizer = summarizer
        self._cache: dict[bytes, str] = {}

    async def __call__(self, items: list[Item]) -> list[Item]:
        """``items`` with everything before the recent ones summarised."""
        head, rest = _split_instructions(items)
        recent = _recent(rest, self.recent)
        older = rest[: len(rest) - len(recent)]
        if not older:
            return head + recent
        key = canonical_json(older)
        if key not in self._cache:
            summary = self.summarizer(older)
            self._cache = {key: await summary if inspect.isawaitable(summary) else summary}
        text = f"Summary of the earlier conversation: {self._cache[key]}"
        return [*head, {"role": "developer", "content": text}, *recent]


class TrimToolOutputs:
    """Tool outputs longer than ``max_chars`` sent as one short line; stored in full."""

    def __init__(self, *, max_chars: int = 2_000) -> None:
        self.max_chars = max_chars

    def __call__(self, items: list[Item]) -> list[Item]:
        """``items`` with each long tool output replaced by a summary line."""
        return [self._trim(item) for item in items]

    def _trim(self, item: Item) -> Item:
        output = item.get("output")
        if item.get("type") != "function_call_output" or not isinstance(output, str):
            return item
        if len(output) <= self.max_chars:
            return item
        first = output.strip().splitlines()[0][:120] if output.strip() else ""
        line = f"[tool output of {len(output)} characters trimmed; it began: {first}]"
        return {**item, "output": line}


def context_policy(
    *policies: Policy,
) -> Callable[[list[Any], list[Any]], Awaitable[list[Any]]]:
    """Chain policies into a ``RunConfig(session_input_callback=...)``."""

    async def callback(history: list[Any], new_input: list[Any]) -> list[Any]:
        items = cast("list[Item]", history)
        for policy in policies:
            shaped = policy(items)
            items = await shaped if inspect.isawaitable(shaped) else shaped
        return [*items, *new_input]

    return callback
