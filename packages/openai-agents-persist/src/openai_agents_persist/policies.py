"""Context policies: what the model is sent, while the store keeps the full history.

    run_config = RunConfig(session_input_callback=context_policy(
        TrimToolOutputs(max_chars=2_000),
        SummaryPlusRecent(recent=20, summarize=my_summarizer, session=session),
    ))                                                          # or SlidingWindow(last=30)
    await Runner.run(agent, "next question", session=session, run_config=run_config)

Each policy maps the stored history to the history sent; :func:`context_policy` chains them
into the SDK's ``session_input_callback``, which only shapes the model input: the SDK still
appends just the new items to the session, so nothing stored is ever dropped, and nothing a
policy makes (a summary, a trimmed output) is stored as a new item. To store long tool
outputs short at write time, see :mod:`.tool_outputs`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from ._deprecated import warn_renamed
from .summaries import SummaryRecord, item_fingerprint

if TYPE_CHECKING:
    from .session import StoreSession

__all__ = [
    "Policy",
    "RunningSummarizer",
    "SlidingWindow",
    "Summarizer",
    "SummaryPlusRecent",
    "TrimToolOutputs",
    "context_policy",
]

Item: TypeAlias = dict[str, Any]
Policy: TypeAlias = Callable[[list[Item]], "list[Item] | Awaitable[list[Item]]"]
"""A function from the stored history to the history the model sees."""
RunningSummarizer: TypeAlias = Callable[[str | None, list[Item]], "str | Awaitable[str]"]
"""``(previous, items) -> summary``: the previous summary (``None`` at first) brought up to
date with the items that left the recent window (usually a call to a cheap model)."""
Summarizer: TypeAlias = Callable[[list[Item]], "str | Awaitable[str]"]
"""The old ``items -> summary`` (``SummaryPlusRecent(summarizer=...)``, deprecated)."""

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
    """Older items replaced by a running summary, the newest kept verbatim.

    The summary has a watermark (:class:`~.summaries.SummaryRecord`'s ``through``): the
    position in the history it covers up to. A call summarises only the items between the
    watermark and the start of the recent window, with the previous summary, and only once
    at least ``every`` items have left the window since the last summary; until then those
    items are sent verbatim after the summary (the model sees between ``recent`` and
    ``recent + every - 1`` verbatim items). With ``every=recent`` (the default) the
    summarizer runs at most once per window shift: over a conversation of ``n`` items,
    about ``(n - recent) / recent`` times, not once per turn.

    With ``session``, the summary is kept in the session's ``summaries`` log, so a restart
    (a new session object and policy) reuses it; without one, it lives in this object (one
    conversation, lost with the process). Positions are those of the history the session
    gives the policy: use it on the session's whole history (no ``limit``). A stored summary
    whose items changed (the session was cleared, or items popped into the summarised part)
    is not reused: the policy summarises from the start again.

    Args:
        recent: How many newest items the model sees verbatim (at least 1).
        summarize: ``summarize(previous, items) -> str`` (sync or async): the new summary
            from the previous one (``None`` at first) and the items that left the window.
        every: Re-summarise once at least this many items left the window (default
            ``recent``; 1 summarises on every shift).
        session: Where the summary is kept (a :class:`~.session.StoreSession`).
        summarizer: Deprecated: the old ``summarizer(items) -> str``; it is called with the
            previous summary as a developer message followed by the new items.
    """

    def __init__(
        self,
        *,
        recent: int,
        summarize: RunningSummarizer | None = None,
        every: int | None = None,
        session: StoreSession | None = None,
        summarizer: Summarizer | None = None,
    ) -> None:
        if recent < 1:
            raise ValueError(f"recent must be at least 1, got {recent}")
        every = recent if every is None else every
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        if (summarize is None) == (summarizer is None):
            raise TypeError("give exactly one of summarize (or the deprecated summarizer)")
        if summarizer is not None:
            warn_renamed(
                "SummaryPlusRecent(summarizer=items -> str)",
                "SummaryPlusRecent(summarize=(previous, items) -> str)",
            )
            summarize = _running(summarizer)
        self.recent = recent
        self.every = every
        self.summarize = cast("RunningSummarizer", summarize)
        self.session = session
        self._record: SummaryRecord | None = None
        self._loaded = session is None

    async def __call__(self, items: list[Item]) -> list[Item]:
        """``items`` with everything before the verbatim ones summarised."""
        head, rest = _split_instructions(items)
        window = len(items) - len(_recent(rest, self.recent))
        record = await self._summary(items)
        through = len(head) if record is None else record.through
        if window - through >= self.every:
            previous = None if record is None else record.text
            left = [dict(item) for item in items[through:window]]  # its own copies to keep
            text = self.summarize(previous, left)
            text = await text if inspect.isawaitable(text) else text
            record = SummaryRecord(window, text, item_fingerprint(items[window - 1]))
            self._record = record
            if self.session is not None:
                await self.session.add_summary(record)
        if record is None:
            return items
        summary = {"role": "developer", "content": _SUMMARY_PREFIX + record.text}
        return [*head, summary, *items[record.through :]]

    async def _summary(self, items: list[Item]) -> SummaryRecord | None:
        """The summary in use, if it was made from these ``items``."""
        if not self._loaded and self.session is not None:
            self._record = await self.session.latest_summary()
            self._loaded = True
        record = self._record
        return record if record is not None and record.covers(items) else None


_SUMMARY_PREFIX = "Summary of the earlier conversation: "


def _running(summarizer: Summarizer) -> RunningSummarizer:
    """An old one-argument summarizer as a running one (the previous summary as an item)."""

    def summarize(previous: str | None, items: list[Item]) -> str | Awaitable[str]:
        if previous is None:
            return summarizer(items)
        return summarizer([{"role": "developer", "content": _SUMMARY_PREFIX + previous}, *items])

    return summarize


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
        return [*_as_history(items, history), *new_input]

    return callback


def _as_history(shaped: list[Any], history: list[Any]) -> list[Any]:
    """``shaped`` with each item a policy made (a summary, a trimmed output) in a history object.

    The SDK appends to the session every item the callback returns that it cannot match to
    the history it passed (by identity, then by content), so a summary or a trimmed output
    would be stored as a new item of the turn. Its content is moved into a history object
    the policies dropped (the callback's lists are the SDK's copies): the SDK then takes it
    for history and stores nothing new. An item with no dropped object left is returned as
    it is.
    """
    known = {id(item) for item in history}
    kept = {id(item) for item in shaped}
    spares: list[Any] = [item for item in history if id(item) not in kept]
    adopted: list[Any] = []
    for item in shaped:
        if id(item) in known or not isinstance(item, dict) or not spares:
            adopted.append(item)
            continue
        spare = spares.pop()
        if not isinstance(spare, dict):
            adopted.append(item)
            continue
        spare = cast("dict[str, Any]", spare)
        spare.clear()
        spare.update(cast("dict[str, Any]", item))
        adopted.append(spare)
    return adopted
