"""Long tool outputs stored short in the history, in full in the session's audit trail.

    outputs = StoreToolOutputs(max_chars=2_000, summarize=my_summarizer)   # or no summarizer
    session = StoreSession("user-1", store=store, tool_outputs=outputs)
    run_config = RunConfig(call_model_input_filter=outputs.model_input_filter)  # same turn
    ...
    full = await full_tool_output(session, item)   # from a history item's reference

When ``add_items`` receives a ``function_call_output`` whose text output is longer than
``max_chars``, the history item is stored with a short form (the summarizer's answer, or the
first ``max_chars`` characters) ending in a reference line ``[... full output: audit#12]``,
and the full output goes to the session's audit trail at that position: a ``tool_call``
audit event (``call_id``, the tool's ``name`` and ``input`` from its ``function_call`` item,
``output``, ``chars``), in the same atomic write when checkpoints are on (before the items
otherwise, so a reference never points at nothing). On the SQL stores that event is also a
row of ``agent_persist_audit_tool_calls`` whose ``output`` column holds the full output
(sealed when the store encrypts); on memory and Redis it is read through the API. Later
turns read the short form from the session.

The same turn: the SDK does not read the session back within a run; the model's next call in
the turn is built from the run's own items, which hold the tool's full output. Passing
:meth:`StoreToolOutputs.model_input_filter` as the run's ``call_model_input_filter`` sends
the same short form there too (the SDK saves a tool's output before the model call that
follows it, so the filter finds the stored form, reference included).

The ``audit`` log is the one :class:`~openai_agents_persist.audit.AuditTrail` and
``BaseStore.append_audit`` write: if the run's audit hooks write to the session's own store
and namespace, a long output is recorded twice (once by the hooks, with its duration, once
by this policy). ``clear_session`` leaves the trail (as checkpoints keep the items they
saw); deleting the thread removes it. References written by earlier releases point at the
``tool_outputs`` log and still resolve.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from agents.run_config import CallModelData, ModelInputData

from .errors import CorruptItemError

if TYPE_CHECKING:
    from .session import StoreSession

__all__ = [
    "AUDIT_LOG",
    "TOOL_OUTPUTS_LOG",
    "OutputSummarizer",
    "StoreToolOutputs",
    "full_tool_output",
    "tool_output_reference",
]

AUDIT_LOG = "audit"
"""The log that holds the full outputs stored short: the session's audit trail."""

TOOL_OUTPUTS_LOG = "tool_outputs"
"""Where full outputs were kept before they joined the audit trail; references to it resolve."""

CallLookup: TypeAlias = Callable[[str], Awaitable["dict[str, Any] | None"]]
"""Finds an earlier ``function_call`` item by its call id (the history's, for a tool name)."""

_MAX_NAME = 256
"""The longest tool name or call id the audit tables index."""

OutputSummarizer: TypeAlias = Callable[[str], "str | Awaitable[str]"]
"""Summarises one long tool output (usually a call to a cheap model)."""

_REFERENCE = re.compile(r"full output: (?P<log>[A-Za-z0-9_$.-]+)#(?P<position>\d+)\]\s*\Z")


def tool_output_reference(item: Any) -> tuple[str, int] | None:
    """The ``(log, position)`` a stored-short tool output refers to, or ``None``."""
    if not isinstance(item, dict):
        return None
    fields = cast("dict[str, Any]", item)
    output = fields.get("output")
    if fields.get("type") != "function_call_output" or not isinstance(output, str):
        return None
    match = _REFERENCE.search(output)
    return None if match is None else (match["log"], int(match["position"]))


class StoreToolOutputs:
    """A write-time policy of :class:`~openai_agents_persist.StoreSession` for tool outputs.

    Args:
        max_chars: Outputs longer than this are stored short (at least 1).
        summarize: Makes the short form of an output (sync or async); without it, the first
            ``max_chars`` characters.
    """

    def __init__(self, *, max_chars: int = 2_000, summarize: OutputSummarizer | None = None):
        if type(max_chars) is not int or max_chars < 1:
            raise ValueError(f"max_chars must be an int of at least 1, got {max_chars!r}")
        if summarize is not None and not callable(summarize):
            raise TypeError(f"summarize must be callable, got {summarize!r}")
        self.max_chars = max_chars
        self.summarize = summarize
        self._short: dict[str, str] = {}
        """call_id -> the stored short form, for :meth:`model_input_filter`."""
        self._made: dict[str, str] = {}
        """call_id -> a short form the filter made before the output was stored."""

    def is_long(self, item: Any) -> bool:
        """Whether ``item`` is a tool output this policy stores short."""
        if not isinstance(item, dict):
            return False
        fields = cast("dict[str, Any]", item)
        output = fields.get("output")
        return (
            fields.get("type") == "function_call_output"
            and isinstance(output, str)
            and len(output) > self.max_chars
            and tool_output_reference(fields) is None
        )

    async def shorten(self, output: str) -> str:
        """The short form of ``output`` (without the reference line)."""
        if self.summarize is None:
            return output[: self.max_chars]
        summary = self.summarize(output)
        return await summary if inspect.isawaitable(summary) else summary

    async def split(
        self, items: list[Any], *, start: int, lookup: CallLookup | None = None
    ) -> tuple[list[Any], list[dict[str, Any]]]:
        """``items`` with long outputs stored short, and the audit events of the full outputs.

        ``start`` is the ``audit`` log's length: the first event's position. The tool's name
        and input come from its ``function_call`` item, found in ``items`` or else through
        ``lookup`` (the session's history); ``"unknown"`` when neither has it.
        """
        shaped: list[Any] = []
        records: list[dict[str, Any]] = []
        fielded = [cast("dict[str, Any]", item) for item in items if isinstance(item, dict)]
        calls = {f.get("call_id"): f for f in fielded if f.get("type") == "function_call"}
        for item in items:
            if not self.is_long(item):
                shaped.append(item)
                continue
            fields = cast("dict[str, Any]", item)
            output = cast("str", fields["output"])
            position = start + len(records)
            call_id = fields.get("call_id")
            made = self._made.pop(call_id, None) if isinstance(call_id, str) else None
            summary = await self.shorten(output) if made is None else made
            short = (
                f"{summary}\n[tool output of {len(output)} characters stored short; "
                f"full output: {AUDIT_LOG}#{position}]"
            )
            call = calls.get(call_id)
            if call is None and lookup is not None and isinstance(call_id, str):
                call = await lookup(call_id)
            records.append(_event(call_id, call, output))
            if isinstance(call_id, str):
                _remember(self._short, call_id, short)
            shaped.append({**fields, "output": short})
        return shaped, records

    async def model_input_filter(self, data: CallModelData[Any]) -> ModelInputData:
        """A ``call_model_input_filter``: the same turn's model calls see the short forms."""
        items: list[Any] = []
        for item in data.model_data.input:
            fields = cast("dict[str, Any]", item)
            if self.is_long(fields):
                call_id = fields.get("call_id")
                short = self._short.get(call_id) if isinstance(call_id, str) else None
                if short is None:  # not stored yet: its short form, without a reference
                    short = await self.shorten(cast("str", fields["output"]))
                    if isinstance(call_id, str):  # stored later with this one summary
                        _remember(self._made, call_id, short)
                fields = {**fields, "output": short}
            items.append(fields)
        return ModelInputData(input=items, instructions=data.model_data.instructions)


async def full_tool_output(session: StoreSession, item: Any) -> str:
    """The full output a history item stored short refers to (the item's own if not short).

    Raises:
        CorruptItemError: The reference points at no output of that call.
    """
    reference = tool_output_reference(item)
    fields = cast("dict[str, Any]", item)
    if reference is None:
        output = fields.get("output") if isinstance(item, dict) else None
        if not isinstance(output, str):
            raise TypeError(f"item must be a function_call_output item, got {item!r}")
        return output
    log, position = reference
    call_id = fields.get("call_id")
    store, thread = session.store, session.session_id
    found = await store.read_log(thread, log, start=position, stop=position + 1)
    if not _is_output_of(found[0] if found else None, call_id):  # moved: look it up by call
        found = [r for r in await store.read_log(thread, log) if _is_output_of(r, call_id)]
    if not found:
        raise CorruptItemError(
            f"session {thread!r}: the full output of tool call {call_id!r} is not in log "
            f"{log!r} (referenced at position {position})"
        )
    return cast("str", cast("dict[str, Any]", found[-1])["output"])


_REMEMBERED = 1_000
"""How many short forms a policy keeps for the same turn's filter (the newest)."""


def _remember(cache: dict[str, str], call_id: str, short: str) -> None:
    cache.pop(call_id, None)
    cache[call_id] = short
    while len(cache) > _REMEMBERED:
        del cache[next(iter(cache))]


def _event(call_id: Any, call: dict[str, Any] | None, output: str) -> dict[str, Any]:
    """The ``tool_call`` audit event of a full output (names cut to what the tables index)."""
    name = call.get("name") if call is not None else None
    arguments = call.get("arguments") if call is not None else None
    event: dict[str, Any] = {
        "event": "tool_call",
        "name": name[:_MAX_NAME] if isinstance(name, str) and name else "unknown",
        "output": output,
        "chars": len(output),
        "at": time.time(),
    }
    if isinstance(call_id, str) and 0 < len(call_id) <= _MAX_NAME:
        event["call_id"] = call_id
    if arguments is not None:
        event["input"] = arguments
    return event


def _is_output_of(record: Any, call_id: Any) -> bool:
    if not isinstance(record, dict):
        return False
    fields = cast("dict[str, Any]", record)
    return fields.get("call_id") == call_id and isinstance(fields.get("output"), str)
