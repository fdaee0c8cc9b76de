"""The call journal's engine, without a framework: keys, replay, resets, policies, faults."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from agent_persist import open_store
from agent_persist._journal import Journal, ReplayedToolError, Span
from agent_persist.errors import (
    CorruptJournalError,
    LeaseLostError,
    StoreUnavailableError,
    ToolOutcomeUnknownError,
)
from agent_persist.journal import JOURNAL_LOG, ToolCall, current_tool_call, tool_policies
from agent_persist.stores import BaseStore, Lease

SPAN = Span("0.3", "run 0, turn 3")
THREAD = "t-1"


@pytest.fixture
async def store() -> AsyncIterator[BaseStore]:
    async with open_store("memory://") as opened:
        yield opened


async def _lease(store: BaseStore, owner: str = "worker") -> Lease:
    return await store.acquire_lease(THREAD, owner, ttl=timedelta(minutes=1))


def _journal(store: BaseStore, lease: Lease, **options: Any) -> Journal:
    return Journal(store, THREAD, lease=lambda: lease, producer="test 1", **options)


class Model:
    """Counts calls; replies with the request's text."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, text: str) -> dict[str, Any]:
        self.calls += 1
        return {"reply": text.upper()}


async def _ask(journal: Journal, model: Model, text: str, stream: str = "a") -> Any:
    return await journal.model_call(
        SPAN, stream, {"text": text}, lambda: model(text), dump=dict, load=dict
    )


async def test_completed_calls_are_replayed_in_order_while_requests_match(
    store: BaseStore,
) -> None:
    lease = await _lease(store)
    first, model = _journal(store, lease), Model()
    await first.load(SPAN)
    assert await _ask(first, model, "x") == {"reply": "X"}
    assert await _ask(first, model, "y") == {"reply": "Y"}
    assert await store.log_length(THREAD, JOURNAL_LOG) == 2, "one append per model call"

    second = _journal(store, lease)
    await second.load(SPAN)
    assert await _ask(second, model, "x") == {"reply": "X"}
    assert await _ask(second, model, "y") == {"reply": "Y"}
    assert await _ask(second, model, "z") == {"reply": "Z"}
    assert model.calls == 3, "only the third call went live"
    assert second.take_note() == {"replayed": {"model_calls": 2, "tool_runs": 0}}


async def test_streams_are_numbered_apart(store: BaseStore) -> None:
    lease = await _lease(store)
    first, model = _journal(store, lease), Model()
    await first.load(SPAN)
    await _ask(first, model, "from a", stream="a")
    await _ask(first, model, "from b", stream="b")
    second = _journal(store, lease)
    await second.load(SPAN)
    await _ask(second, model, "from b", stream="b")  # the other order: still replayed
    await _ask(second, model, "from a", stream="a")
    assert model.calls == 2


async def test_another_span_is_never_replayed(store: BaseStore) -> None:
    lease = await _lease(store)
    first, model = _journal(store, lease), Model()
    await first.load(SPAN)
    await _ask(first, model, "x")
    second = _journal(store, lease)
    next_turn = Span("0.4", "run 0, turn 4")
    await second.load(next_turn)
    await second.model_call(next_turn, "a", {"text": "x"}, lambda: model("x"), dump=dict, load=dict)
    assert model.calls == 2


async def test_a_changed_request_ends_replay_for_the_span(
    store: BaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    lease = await _lease(store)
    first, model = _journal(store, lease), Model()
    await first.load(SPAN)
    for text in ("x", "y", "z"):
        await _ask(first, model, text)

    caplog.set_level(logging.WARNING, "agent_persist")
    second = _journal(store, lease)
    await second.load(SPAN)
    await _ask(second, model, "x")
    await _ask(second, model, "changed")
    await _ask(second, model, "z")  # recorded, but replay has ended
    assert model.calls == 3 + 2
    assert "journal replay ends at a#1" in caplog.text
    note = second.take_note()
    assert note is not None
    assert note["replay_ended"] == {
        "at": "a#1",
        "where": "run 0, turn 3",
        "reason": "the request differs from the recorded one",
    }

    third = _journal(store, lease)  # the reset entry: nothing before it counts
    await third.load(SPAN)
    await _ask(third, model, "x")
    assert model.calls == 6


async def test_tools_get_a_started_entry_and_a_stable_idempotency_key(store: BaseStore) -> None:
    lease = await _lease(store)
    seen: list[ToolCall | None] = []

    async def run() -> str:
        seen.append(current_tool_call())
        return "done"

    first = _journal(store, lease)
    await first.load(SPAN)
    args = {"to": "ann"}
    call_a = first.tool_call(SPAN, "a", "c1", "mail", args, run, dump=str, load=str)
    call_b = first.tool_call(SPAN, "a", "c2", "mail", args, run, dump=str, load=str)
    assert (await call_a, await call_b) == ("done", "done")
    assert await store.log_length(THREAD, JOURNAL_LOG) == 4, "two appends per tool call"
    calls = [call for call in seen if call is not None]
    assert [c.call_id for c in calls] == ["c1", "c2"]
    assert calls[0].idempotency_key != calls[1].idempotency_key
    assert current_tool_call() is None

    second = _journal(store, lease)
    await second.load(SPAN)
    replayed = await second.tool_call(SPAN, "a", "c2", "mail", args, run, dump=str, load=str)
    assert replayed == "done"
    assert len(seen) == 2


async def test_a_failed_tool_is_replayed_as_the_same_failure(store: BaseStore) -> None:
    lease = await _lease(store)

    async def boom() -> str:
        raise RuntimeError("smtp refused")

    first = _journal(store, lease)
    await first.load(SPAN)
    with pytest.raises(RuntimeError):
        await first.tool_call(SPAN, "a", "c1", "mail", {}, boom, dump=str, load=str)
    second = _journal(store, lease)
    await second.load(SPAN)
    with pytest.raises(ReplayedToolError, match=r"^smtp refused$"):
        await second.tool_call(SPAN, "a", "c1", "mail", {}, boom, dump=str, load=str)


async def _started_only(store: BaseStore, lease: Lease) -> str:
    """A tool whose worker died inside it: a started entry and no result."""
    journal = _journal(store, lease)
    await journal.load(SPAN)

    class Died(BaseException):
        pass

    async def die() -> str:
        raise Died

    with pytest.raises(Died):
        await journal.tool_call(SPAN, "a", "c1", "charge", {"cents": 5}, die, dump=str, load=str)
    reloaded = _journal(store, lease)
    await reloaded.load(SPAN)
    (unfinished,) = reloaded.unfinished(SPAN)
    return unfinished.idempotency_key


async def test_policies_for_a_tool_a_crash_left_running(store: BaseStore) -> None:
    lease = await _lease(store)
    key = await _started_only(store, lease)

    default = _journal(store, lease)
    await default.load(SPAN)
    with pytest.raises(ToolOutcomeUnknownError) as raised:
        await default.settle(SPAN)
    assert (raised.value.tool, raised.value.arguments) == ("charge", {"cents": 5})
    assert raised.value.idempotency_key == key
    assert raised.value.call_id == "c1"

    asked: list[ToolCall] = []

    def reconcile(call: ToolCall) -> str:
        asked.append(call)
        return "charged once"

    reconciled = _journal(store, lease, policies=tool_policies({"charge": reconcile}))
    await reconciled.load(SPAN)
    await reconciled.settle(SPAN)
    assert [call.idempotency_key for call in asked] == [key]

    async def never() -> str:
        raise AssertionError("the tool ran again")

    outcome = await reconciled.tool_call(
        SPAN, "a", "c1", "charge", {"cents": 5}, never, dump=str, load=str
    )
    assert outcome == "charged once"


async def test_rerun_runs_the_tool_again_with_the_same_key(store: BaseStore) -> None:
    lease = await _lease(store)
    key = await _started_only(store, lease)
    keys: list[str | None] = []

    async def charge() -> str:
        call = current_tool_call()
        keys.append(None if call is None else call.idempotency_key)
        return "charged"

    rerun = _journal(store, lease, policies=tool_policies({"charge": "rerun"}))
    await rerun.load(SPAN)
    await rerun.settle(SPAN)
    await rerun.tool_call(SPAN, "a", "c1", "charge", {"cents": 5}, charge, dump=str, load=str)
    assert keys == [key]


async def test_resolve_records_a_decision_the_tool_then_never_runs(store: BaseStore) -> None:
    lease = await _lease(store)
    key = await _started_only(store, lease)
    resolver = _journal(store, lease)
    await resolver.load(Span("", "resolving"))  # any span: it finds the call by its key
    with pytest.raises(ValueError, match="idempotency_key 'nope'"):
        await resolver.resolve("nope", "x")
    call = await resolver.resolve(key, "charged by hand")
    assert (call.name, call.call_id) == ("charge", "c1")

    async def never() -> str:
        raise AssertionError("the tool ran again")

    resumed = _journal(store, lease)
    await resumed.load(SPAN)
    await resumed.settle(SPAN)  # nothing unknown any more
    outcome = await resumed.tool_call(
        SPAN, "a", "c1", "charge", {"cents": 5}, never, dump=str, load=str
    )
    assert outcome == "charged by hand"


async def test_entries_of_another_format_or_producer_are_skipped(
    store: BaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    lease = await _lease(store)
    first, model = _journal(store, lease), Model()
    await first.load(SPAN)
    await _ask(first, model, "x")
    entry = (await store.read_log(THREAD, JOURNAL_LOG))[0]
    assert isinstance(entry, dict)
    await store.append(THREAD, JOURNAL_LOG, [{**entry, "j": 0}, {**entry, "by": "test 0"}])
    caplog.set_level(logging.WARNING, "agent_persist")
    second = _journal(store, lease)
    await second.load(SPAN)
    await _ask(second, model, "x")
    assert model.calls == 1, "the entry of this producer still replays"
    assert "skipped 1 journal entries of format 0" in caplog.text
    assert "by 'test 0'" in caplog.text


@pytest.mark.parametrize(
    "entry",
    [
        "not an object",
        {"j": 1, "by": "test 1", "type": "bogus", "span": "0.3"},
        {"j": 1, "by": "test 1", "type": "model", "span": "0.3"},
        {"j": 1, "by": "test 1", "type": "model", "span": "0.3", "key": "a#0", "fp": "f"},
        {"j": 1, "by": "test 1", "type": "started", "span": "0.3", "key": "k", "fp": "f"},
    ],
)
async def test_a_corrupt_entry_raises_or_is_discarded(store: BaseStore, entry: Any) -> None:
    lease = await _lease(store)
    await store.append(THREAD, JOURNAL_LOG, [entry])
    with pytest.raises(CorruptJournalError, match=r"'t-1' \(run 0, turn 3\)"):
        await _journal(store, lease).load(SPAN)
    assert await store.log_length(THREAD, JOURNAL_LOG) == 1, "nothing changed"
    discarding = _journal(store, lease, on_corrupt="discard")
    await discarding.load(SPAN)
    assert await store.log_length(THREAD, JOURNAL_LOG) == 0
    assert discarding.take_note() is not None


async def test_an_unreadable_result_is_a_typed_error(store: BaseStore) -> None:
    lease = await _lease(store)
    first, model = _journal(store, lease), Model()
    await first.load(SPAN)
    await _ask(first, model, "x")

    def refuse(value: Any) -> dict[str, Any]:
        raise ValueError("not a reply")

    second = _journal(store, lease)
    await second.load(SPAN)
    with pytest.raises(CorruptJournalError, match="a#0"):
        await second.model_call(
            SPAN, "a", {"text": "x"}, lambda: model("x"), dump=dict, load=refuse
        )
    with pytest.raises(CorruptJournalError):  # the journal stays failed
        await _ask(second, model, "y")


async def test_a_lost_lease_stops_the_journal(store: BaseStore) -> None:
    lease = await _lease(store, "old")
    await store.acquire_lease(THREAD, "new", ttl=timedelta(minutes=1), take_over="old")
    journal, model = _journal(store, lease), Model()
    await journal.load(SPAN)
    with pytest.raises(LeaseLostError):
        await _ask(journal, model, "x")
    assert await store.log_length(THREAD, JOURNAL_LOG) == 0
    with pytest.raises(LeaseLostError):
        await _ask(journal, model, "y")
    assert model.calls == 1, "no model call after the journal failed"


async def test_an_append_the_connection_broke_is_retried(store: BaseStore) -> None:
    lease = await _lease(store)
    failures = [StoreUnavailableError("connection reset")]
    append = store.append

    async def flaky(*args: Any, **kwargs: Any) -> None:
        if failures:
            raise failures.pop()
        await append(*args, **kwargs)

    store.append = flaky  # type: ignore[method-assign]
    journal, model = _journal(store, lease), Model()
    await journal.load(SPAN)
    await _ask(journal, model, "x")
    assert await store.log_length(THREAD, JOURNAL_LOG) == 1


def test_tool_policies_are_checked() -> None:
    assert tool_policies(None) == {}
    with pytest.raises(TypeError, match="tool_policies must be a mapping"):
        tool_policies(["x"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keys must be tool names"):
        tool_policies({1: "rerun"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"tool_policies\['x'\]"):
        tool_policies({"x": "maybe"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"tool_policies\['x'\]"):
        tool_policies({"x": 3})  # type: ignore[dict-item]


async def test_calls_sharing_a_call_id_are_told_apart(store: BaseStore) -> None:
    """Some clients give every call of a response (or every process) the same id."""
    lease = await _lease(store)
    runs: list[Any] = []

    def poll(n: int) -> Any:
        async def run() -> str:
            runs.append(current_tool_call())
            return f"result {n}"

        return run

    first = _journal(store, lease)
    await first.load(SPAN)
    one = first.tool_call(SPAN, "a", "0", "poll", {"n": 1}, poll(1), dump=str, load=str)
    two = first.tool_call(SPAN, "a", "0", "poll", {"n": 1}, poll(2), dump=str, load=str)
    assert (await one, await two) == ("result 1", "result 2")
    assert runs[0].idempotency_key != runs[1].idempotency_key, "two calls, two keys"

    second = _journal(store, lease)
    await second.load(SPAN)
    one = second.tool_call(SPAN, "a", "0", "poll", {"n": 1}, poll(9), dump=str, load=str)
    two = second.tool_call(SPAN, "a", "0", "poll", {"n": 1}, poll(9), dump=str, load=str)
    assert (await one, await two) == ("result 1", "result 2"), "each replays its own result"
    assert len(runs) == 2


async def test_a_tool_left_unfinished_by_another_version_still_follows_its_policy(
    store: BaseStore,
) -> None:
    lease = await _lease(store)
    await _started_only(store, lease)
    upgraded = Journal(store, THREAD, lease=lambda: lease, producer="test 2")
    await upgraded.load(SPAN)
    with pytest.raises(ToolOutcomeUnknownError):
        await upgraded.settle(SPAN)
