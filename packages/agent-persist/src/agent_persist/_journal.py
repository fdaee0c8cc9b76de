"""The durable call journal: completed model calls and tool runs, replayed after a crash.

    journal = Journal(store, "t-1", lease=lambda: holder.lease, producer="my-adapter 1.0")
    await journal.load(span)                       # one read of the thread's journal log
    await journal.settle(span)                     # tools a crash left running: policies
    reply = await journal.model_call(span, "writer", request, call, dump=dump, load=load)
    value = await journal.tool_call(span, "writer", call_id, name, arguments, run, ...)
    await store.put(envelope, lease=lease, clear_logs=[JOURNAL_LOG])   # the turn is saved
    journal.checkpointed()

A *span* is the stretch of work between two checkpoints (an AutoGen turn, the part of an
SDK run after a checkpoint); the adapter names it. Every completed call is one append to the
log :data:`~agent_persist.journal.JOURNAL_LOG`, keyed by span and by its place in the span:
``stream#n`` for the n-th model call of a stream (an agent, a selector), ``stream@call_id``
for a tool call (tool calls of one response run concurrently and finish in any order), with a
fingerprint of the request. A tool gets a ``started`` entry before it runs and a result entry
after. The checkpoint that ends the span empties the log in its own transaction, so the
journal never holds more than one span and no checkpoint pins its items.

Replay takes a call's result from the journal while the request's fingerprint matches. At
the first mismatch (the prompt changed, non-deterministic code) replay of the span ends:
a ``reset`` entry is appended (entries before it are ignored from then on), a warning is
logged and :meth:`Journal.take_note` has a note for the next checkpoint's metadata. Entries
in another format or from another producer (an older adapter, another framework version)
are skipped with a log line, never replayed.

Journal appends carry the lease, so a worker that lost the thread cannot add to it. An
append whose connection broke is retried: the entry may then be stored twice, which is
harmless because a key's first entry wins.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

from ._json import JSON, canonical_json
from .errors import (
    AgentPersistError,
    CorruptCheckpointError,
    CorruptJournalError,
    StoreUnavailableError,
    ToolOutcomeUnknownError,
)
from .journal import JOURNAL_LOG, Reconcile, ToolCall, ToolPolicy, running
from .retry import DEFAULT_WRITE_ATTEMPTS
from .stores import CheckpointStore, Lease

__all__ = ["FORMAT", "Journal", "ReplayedToolError", "Span"]

logger = logging.getLogger("agent_persist")

FORMAT = 1
"""The journal entry format this code writes and replays."""

_BACKOFF = 0.05
_TYPES = frozenset({"model", "started", "tool", "reset"})

R = TypeVar("R")
C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class Span:
    """The stretch of work between two checkpoints: a key, and words for messages."""

    key: str
    where: str


class ReplayedToolError(Exception):
    """A tool's recorded failure, raised again on replay with the message it had."""


@dataclass(slots=True)
class _SpanEntries:
    """A span's usable entries: those after its last ``reset``."""

    generation: int = 0
    results: dict[str, dict[str, Any]] = field(default_factory=lambda: {})
    started: dict[str, dict[str, Any]] = field(default_factory=lambda: {})

    def add(self, entry: dict[str, Any]) -> None:
        kind = entry["type"]
        if kind == "reset":
            self.generation += 1
            self.results.clear()
            self.started.clear()
        elif kind == "started":
            self.started.setdefault(entry["key"], entry)
        else:
            self.results.setdefault(entry["key"], entry)


def _problem(entry: Any) -> str | None:
    """What is wrong with a current-format entry, or ``None``."""
    fields = cast("dict[str, Any]", entry)
    kind = fields.get("type")
    if kind not in _TYPES:
        return f"unknown entry type {kind!r}"
    if not isinstance(fields.get("span"), str):
        return "no span"
    if kind == "reset":
        return None
    if not isinstance(fields.get("key"), str) or not isinstance(fields.get("fp"), str):
        return "no key or fingerprint"
    if kind == "started":
        if not isinstance(fields.get("tool"), str) or not isinstance(fields.get("idem"), str):
            return "a started entry without tool name or idempotency key"
    elif "result" not in fields and "error" not in fields:
        return "no result"
    return None


class Journal:
    """One thread's journal, for one durable run: replays what it holds, records the rest.

    Args:
        store: The thread's store.
        thread_id: The thread.
        lease: Returns the lease every append carries (raising if it was lost).
        producer: Who writes the entries (adapter and framework versions); entries of
            another producer are skipped, never replayed.
        policies: Tool name to policy for tool calls a crash left unfinished; ``"raise"``
            for the others.
        on_corrupt: ``"raise"`` (``CorruptJournalError``) or ``"discard"`` (empty the
            journal, log a warning, go live).
        attempts: How many times an append is tried while the store is unavailable.
        tool_result: Turns what a reconcile function or a resolved call gives into the
            JSON a tool call's ``load`` replays (the adapter's own tool ``dump``).
    """

    def __init__(
        self,
        store: CheckpointStore,
        thread_id: str,
        *,
        lease: Callable[[], Lease],
        producer: str,
        policies: Mapping[str, ToolPolicy | Reconcile] | None = None,
        on_corrupt: Literal["raise", "discard"] = "raise",
        attempts: int = DEFAULT_WRITE_ATTEMPTS,
        tool_result: Callable[[Any], JSON] | None = None,
    ) -> None:
        self._store, self._thread_id, self._lease = store, thread_id, lease
        self._tool_result = tool_result or _json
        self._producer = producer
        self._policies = dict(policies or {})
        self._on_corrupt = on_corrupt
        self._attempts = attempts
        self._spans: dict[str, _SpanEntries] = {}
        self._counters: dict[tuple[str, str], int] = {}
        self._live: set[str] = set()
        self._note: dict[str, Any] = {}
        self.failure: AgentPersistError | None = None
        """The error that stopped journaling (a lost lease, a store down): every later
        call raises it, so a run whose framework swallows errors still stops."""
        self.replayed_model_calls = 0
        self.replayed_tool_runs = 0

    # -- loading ---------------------------------------------------------------------------

    async def load(self, span: Span) -> None:
        """Read the journal once; ``CorruptJournalError`` (or discard) if it is damaged."""
        try:
            raw = await self._store.read_log(self._thread_id, JOURNAL_LOG)
            self._index(raw, span)
        except CorruptCheckpointError as exc:
            await self._corrupt(span, str(exc), exc)

    def _index(self, raw: list[JSON], span: Span) -> None:
        skipped: dict[str, int] = {}
        for position, value in enumerate(raw):
            if not isinstance(value, dict):
                raise CorruptJournalError(f"entry {position} is not an object")
            entry = cast("dict[str, Any]", value)
            version, producer = entry.get("j"), entry.get("by")
            if version != FORMAT or producer != self._producer:
                label = f"format {version!r} by {producer!r}"
                skipped[label] = skipped.get(label, 0) + 1
                if entry.get("type") in {"started", "tool"} and _problem(entry) is None:
                    # Never replayed, but a tool it started and never finished stays
                    # unknown: an upgrade between crash and resume must not run it again.
                    foreign = {**entry, "foreign": True}
                    self._spans.setdefault(entry["span"], _SpanEntries()).add(foreign)
                continue
            problem = _problem(entry)
            if problem is not None:
                raise CorruptJournalError(f"entry {position}: {problem}")
            self._spans.setdefault(entry["span"], _SpanEntries()).add(entry)
        for label, count in skipped.items():
            logger.warning(
                "thread %r (%s): skipped %d journal entries of %s (this is format %d by %r); "
                "their calls run live, and tools they left unfinished follow their policy",
                self._thread_id,
                span.where,
                count,
                label,
                FORMAT,
                self._producer,
            )

    async def _corrupt(self, span: Span, reason: str, cause: Exception | None) -> None:
        if self._on_corrupt == "raise":
            raise CorruptJournalError(
                f"thread {self._thread_id!r} ({span.where}): the call journal cannot be "
                f"replayed: {reason}. Nothing was replayed; run again with "
                "journal='discard' to drop it (the turn's calls are then made again)"
            ) from cause
        logger.warning(
            "thread %r (%s): call journal discarded (%s); the turn's calls run live",
            self._thread_id,
            span.where,
            reason,
        )
        self._spans.clear()
        self._lease()  # a worker that lost the thread must not clear its journal
        await self._store.clear_log(self._thread_id, JOURNAL_LOG)
        self._note["discarded"] = reason

    # -- unfinished tools ------------------------------------------------------------------

    def unfinished(self, span: Span) -> list[ToolCall]:
        """Tool calls of ``span`` that were started and never recorded as finished."""
        entries = self._spans.get(span.key)
        if entries is None:
            return []
        return [
            self._tool_call(span, entry)
            for key, entry in entries.started.items()
            if key not in entries.results
        ]

    def _tool_call(self, span: Span, entry: dict[str, Any]) -> ToolCall:
        return ToolCall(
            thread_id=self._thread_id,
            name=entry["tool"],
            arguments=entry.get("arguments"),
            call_id=entry.get("call_id"),
            idempotency_key=entry["idem"],
            where=span.where,
        )

    async def settle(self, span: Span) -> None:
        """Apply the tool policies to ``span``'s unfinished tool calls, before anything runs.

        ``"rerun"`` leaves the call to run again when replay reaches it; a reconcile
        function's result is recorded, so replay returns it; ``"raise"`` raises
        ``ToolOutcomeUnknownError`` for the first such call (the log names them all).
        """
        unknown: list[ToolCall] = []
        for call in self.unfinished(span):
            policy = self._policies.get(call.name, ToolPolicy.RAISE)
            if policy is ToolPolicy.RERUN:
                logger.info("thread %r: tool %r runs again (policy rerun)", *self._who(call))
            elif policy is ToolPolicy.RAISE:
                unknown.append(call)
            else:
                outcome = policy(call)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                await self._record_result(span, call, outcome)
                logger.info("thread %r: tool %r reconciled", *self._who(call))
        if unknown:
            raise _unknown_outcome(unknown)

    def _who(self, call: ToolCall) -> tuple[str, str]:
        return self._thread_id, call.name

    async def resolve(self, key: str, result: Any) -> ToolCall:
        """Record ``result`` as the outcome of the unfinished call with idempotency ``key``."""
        for span_key in self._spans:
            span = Span(span_key, span_key)
            for call in self.unfinished(span):
                if call.idempotency_key == key:
                    await self._record_result(span, call, result)
                    return call
        raise ValueError(
            f"idempotency_key {key!r} names no unfinished tool call of thread {self._thread_id!r}"
        )

    async def _record_result(self, span: Span, call: ToolCall, result: Any) -> None:
        entries = self._spans[span.key]
        started = next(e for e in entries.started.values() if e["idem"] == call.idempotency_key)
        value = self._tool_result(result)
        entry = self._entry(span, "tool", started["key"], started["fp"], result=_json(value))
        await self._append(entry)
        entries.results.setdefault(started["key"], entry)

    # -- calls -----------------------------------------------------------------------------

    async def model_call(
        self,
        span: Span,
        stream: str,
        request: Any,
        call: Callable[[], Awaitable[R]],
        *,
        dump: Callable[[R], JSON],
        load: Callable[[JSON], R],
    ) -> R:
        """The recorded reply to this request, or ``call()``'s, recorded."""
        key, fp, recorded = await self._model_slot(span, stream, request, load)
        if recorded:
            return recorded[0]
        value = await call()
        await self._append(self._entry(span, "model", key, fp, result=dump(value)))
        return value

    def model_stream(
        self,
        span: Span,
        stream: str,
        request: Any,
        live: Callable[[], AsyncIterator[C]],
        *,
        is_final: Callable[[C], bool],
        replay: Callable[[R], Sequence[C]],
        dump: Callable[[R], JSON],
        load: Callable[[JSON], R],
    ) -> AsyncGenerator[C, None]:
        """A streaming model call, journaled as its final chunk.

        Live chunks pass through and the final one is recorded before it is yielded; a
        recorded reply comes back as the chunks ``replay`` makes of it.
        """

        async def chunks() -> AsyncGenerator[C, None]:
            key, fp, recorded = await self._model_slot(span, stream, request, load)
            if recorded:
                for chunk in replay(recorded[0]):
                    yield chunk
                return
            async for chunk in live():
                if is_final(chunk):
                    final = cast("R", chunk)
                    await self._append(self._entry(span, "model", key, fp, result=dump(final)))
                yield chunk

        return chunks()

    async def _model_slot(
        self, span: Span, stream: str, request: Any, load: Callable[[JSON], R]
    ) -> tuple[str, str, list[R]]:
        """This call's key and fingerprint, and its recorded reply (``[]`` if none)."""
        self._check()
        index = self._counters.get((span.key, stream), 0)
        self._counters[span.key, stream] = index + 1
        key = f"{stream}#{index}"
        fp = _fingerprint(request)
        recorded = await self._replayable(span, key, fp)
        if recorded is not None:
            try:
                value = load(recorded["result"])
            except Exception as exc:  # the framework's own validation: any error
                await self._unreadable(span, key, exc)
            else:
                self.replayed_model_calls += 1
                return key, fp, [value]
        return key, fp, []

    async def tool_call(
        self,
        span: Span,
        stream: str,
        call_id: str | None,
        name: str,
        arguments: Any,
        run: Callable[[], Awaitable[R]],
        *,
        dump: Callable[[R], JSON],
        load: Callable[[JSON], R],
        error_text: Callable[[Exception], str] = str,
        record_errors: bool = True,
    ) -> R:
        """The recorded outcome of this tool call, or ``run()``'s, with a ``started`` entry first.

        ``run`` sees the call as :func:`~agent_persist.journal.current_tool_call`. A tool that
        raises is recorded as failed and raised again on replay
        (:class:`ReplayedToolError`, with the message ``error_text`` gave), for frameworks
        that hand a tool's error to the model; with ``record_errors=False`` (frameworks
        where the error ends the run) nothing is recorded and the call stays unfinished, so
        its tool policy decides on the next run.
        """
        self._check()
        # Numbered per call id, before the first await (so in the order calls are made):
        # some clients give every call of a response, or every process, the same ids.
        slot = (span.key, f"{stream}@{call_id or ''}")
        occurrence = self._counters.get(slot, 0)
        self._counters[slot] = occurrence + 1
        key = f"{stream}@{call_id or ''}#{occurrence}"
        fp = _fingerprint({"tool": name, "arguments": arguments})
        recorded = await self._replayable(span, key, fp)
        if recorded is not None:
            self.replayed_tool_runs += 1
            if "error" in recorded:
                raise ReplayedToolError(str(recorded["error"]))
            try:
                return load(recorded["result"])
            except Exception as exc:
                await self._unreadable(span, key, exc)
        entries = self._spans.setdefault(span.key, _SpanEntries())
        earlier = entries.started.get(key)
        if earlier is not None and earlier["fp"] == fp:  # a rerun: the key the tool saw
            idem = str(earlier["idem"])
        else:
            idem = self._idempotency_key(span, entries.generation, key, fp)
        call = ToolCall(self._thread_id, name, arguments, call_id, idem, span.where)
        started = self._entry(span, "started", key, fp, tool=name, idem=idem)
        started["arguments"] = _json(arguments)
        if call_id is not None:
            started["call_id"] = call_id
        await self._append(started)
        try:
            with running(call):
                value = await run()
        except Exception as exc:
            if record_errors:
                await self._append(self._entry(span, "tool", key, fp, error=error_text(exc)))
            raise
        await self._append(self._entry(span, "tool", key, fp, result=dump(value)))
        return value

    async def _replayable(self, span: Span, key: str, fp: str) -> dict[str, Any] | None:
        """The entry to replay for ``key``, ending replay if the request changed."""
        if span.key in self._live:
            return None
        entries = self._spans.get(span.key)
        if entries is None:
            return None
        recorded = entries.results.get(key) or entries.started.get(key)
        if recorded is None or recorded.get("foreign"):
            return None
        if recorded["fp"] != fp:
            await self._end_replay(span, key, "the request differs from the recorded one")
            return None
        return recorded if recorded["type"] != "started" else None

    async def _unreadable(self, span: Span, key: str, exc: Exception) -> None:
        """A recorded result the framework refuses: corrupt, or discarded and made live."""
        if self._on_corrupt == "raise":
            self.failure = CorruptJournalError(
                f"thread {self._thread_id!r} ({span.where}): journal entry {key!r} cannot "
                f"be replayed: {exc}. Run again with journal='discard' to drop the "
                "journal (the turn's calls are then made again)"
            )
            raise self.failure from exc
        await self._end_replay(span, key, f"its recorded result cannot be read ({exc})")

    async def _end_replay(self, span: Span, key: str, reason: str) -> None:
        self._live.add(span.key)
        logger.warning(
            "thread %r (%s): journal replay ends at %s: %s; calls are made live from here",
            self._thread_id,
            span.where,
            key,
            reason,
        )
        self._note["replay_ended"] = {"at": key, "where": span.where, "reason": reason}
        entries = self._spans.setdefault(span.key, _SpanEntries())
        await self._append(self._entry(span, "reset", key, ""))
        entries.add({"type": "reset"})

    # -- bookkeeping -----------------------------------------------------------------------

    def _idempotency_key(self, span: Span, generation: int, key: str, fp: str) -> str:
        parts = [self._thread_id, span.key, str(generation), key, fp]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]

    def _entry(self, span: Span, kind: str, key: str, fp: str, **fields: Any) -> dict[str, Any]:
        return {
            "j": FORMAT,
            "by": self._producer,
            "type": kind,
            "span": span.key,
            "key": key,
            "fp": fp,
            **fields,
        }

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failure

    async def _append(self, entry: dict[str, Any]) -> None:
        """One atomic, lease-checked append, retried while the store is unavailable."""
        for attempt in range(1, self._attempts + 1):
            try:
                await self._store.append(self._thread_id, JOURNAL_LOG, [entry], lease=self._lease())
                return
            except StoreUnavailableError as exc:
                if attempt == self._attempts:
                    self.failure = exc
                    raise
                logger.warning(
                    "thread %r: journal append failed (%s); retrying", self._thread_id, exc
                )
                await asyncio.sleep(_BACKOFF * 2 ** (attempt - 1))
            except AgentPersistError as exc:  # the lease was lost, the entry refused
                self.failure = exc
                raise

    def take_note(self) -> dict[str, Any] | None:
        """What the next checkpoint's metadata should say about this journal, once."""
        note = dict(self._note)
        if self.replayed_model_calls or self.replayed_tool_runs:
            note["replayed"] = {
                "model_calls": self.replayed_model_calls,
                "tool_runs": self.replayed_tool_runs,
            }
        self._note.clear()
        self.replayed_model_calls = self.replayed_tool_runs = 0
        return note or None

    def checkpointed(self) -> None:
        """The span's checkpoint emptied the journal: forget it and start counting anew."""
        self._spans.clear()
        self._counters.clear()
        self._live.clear()


def _fingerprint(request: Any) -> str:
    return hashlib.sha256(canonical_json(request, what="journaled request")).hexdigest()[:32]


def _json(value: Any) -> Any:
    """``value`` if it is JSON, else ``InvalidPayloadError`` naming the problem."""
    canonical_json(value, what="journaled value")
    return value


def _unknown_outcome(calls: list[ToolCall]) -> ToolOutcomeUnknownError:
    first = calls[0]
    names = ", ".join(
        f"{call.name}({call.arguments!r}) key={call.idempotency_key}" for call in calls
    )
    return ToolOutcomeUnknownError(
        f"thread {first.thread_id!r} ({first.where}): the outcome of {len(calls)} tool "
        f"call(s) started before a crash is unknown: {names}. Decide, then run again: "
        "tool_policies={name: 'rerun'} runs it again with the same idempotency key, a "
        "reconcile function supplies its result, or resolve_tool_call(key, result) "
        "records it",
        thread_id=first.thread_id,
        tool=first.name,
        arguments=first.arguments,
        call_id=first.call_id,
        idempotency_key=first.idempotency_key,
    )
