"""The running summary of SummaryPlusRecent: one summary per window shift, kept across restarts."""

from __future__ import annotations

from typing import Any, cast

import pytest
from agents import Agent, RunConfig, Runner
from agents.testing import ScriptedModel, assistant_message
from oa_support import Backend

from openai_agents_persist import StoreSession
from openai_agents_persist.policies import SummaryPlusRecent, context_policy
from openai_agents_persist.summaries import SUMMARIES_LOG, SummaryRecord

TURNS, WINDOW = 100, 10


class Summarizer:
    """Records every call: the previous summary and the items that left the window."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, list[dict[str, Any]]]] = []

    async def __call__(self, previous: str | None, items: list[dict[str, Any]]) -> str:
        self.calls.append((previous, items))
        return f"summary {len(self.calls)}"


def user(n: int) -> dict[str, Any]:
    return {"role": "user", "content": f"u{n}"}


def text_of(item: dict[str, Any]) -> str:
    content = item["content"]
    return content if isinstance(content, str) else content[0]["text"]


async def run_turns(
    store: Any, turns: range, summarizer: Summarizer, model: ScriptedModel
) -> StoreSession:
    """Each turn on a new session object and policy, as a web handler builds them."""
    session = StoreSession("chat", store=store)
    for turn in turns:
        session = StoreSession("chat", store=store)
        policy = SummaryPlusRecent(recent=WINDOW, summarize=summarizer, session=session)
        config = RunConfig(session_input_callback=context_policy(policy))
        agent = Agent(name="a", model=model)
        await Runner.run(agent, f"u{turn}", session=session, run_config=config)
    return session


async def test_one_summary_per_window_shift_over_100_turns_with_a_restart(
    backend: Backend,
) -> None:
    model = ScriptedModel([[assistant_message(f"a{turn}")] for turn in range(TURNS)])
    summarizer = Summarizer()
    async with backend.open() as store:
        await run_turns(store, range(50), summarizer, model)
        calls_before_restart = len(summarizer.calls)
    async with backend.open() as store:  # a restart: a new store, session and policy
        session = await run_turns(store, range(50, TURNS), summarizer, model)
        history = [dict(item) for item in await session.get_items()]
        stored = cast("list[dict[str, Any]]", await store.read_log("chat", SUMMARIES_LOG))

    # the store holds the conversation only: no summary was appended as an item
    assert [text_of(item) for item in history] == [
        text for turn in range(TURNS) for text in (f"u{turn}", f"a{turn}")
    ]
    # 200 items, a window of 10: the summarizer runs once each time 10 items left the window
    # (turns 10, 15, ..., 95 see 20, 30, ..., 190 items): 18 calls, not one per turn
    assert len(summarizer.calls) == 18
    assert calls_before_restart == 8
    # each call got exactly the items that left the window since the last one, in order,
    # and the previous summary (also right after the restart: it was read from the store)
    covered = [item for _, items in summarizer.calls for item in items]
    assert [text_of(item) for item in covered] == [text_of(item) for item in history[:180]]
    assert [len(items) for _, items in summarizer.calls] == [10] * 18
    assert [previous for previous, _ in summarizer.calls] == [None] + [
        f"summary {n}" for n in range(1, 18)
    ]
    assert [SummaryRecord.from_json(record) for record in stored] == [
        SummaryRecord(10 * n, f"summary {n}", record["last"]) for n, record in enumerate(stored, 1)
    ]
    # the last model call: the summary, then the items from its watermark, then the input
    sent = model.last_call
    assert sent is not None
    assert sent.input[0] == {
        "role": "developer",
        "content": "Summary of the earlier conversation: summary 18",
    }
    assert [text_of(item) for item in sent.input[1:]] == [
        text_of(item) for item in history[180:199]
    ]


async def test_every_batches_the_shifts_and_a_stale_summary_is_not_reused() -> None:
    summarizer = Summarizer()
    policy = SummaryPlusRecent(recent=2, summarize=summarizer, every=3)
    history = [user(n) for n in range(6)]
    assert await policy(history[:4]) == history[:4]  # 2 items left the window: not yet
    shaped = await policy(history[:5])  # 3 left: one call with all three
    assert shaped == [
        {"role": "developer", "content": "Summary of the earlier conversation: summary 1"},
        user(3),
        user(4),
    ]
    assert await policy(history) == [shaped[0], user(3), user(4), user(5)]
    assert summarizer.calls == [(None, history[:3])]
    # the history changed under the summary (cleared and regrown): summarised afresh
    other = [user(n + 10) for n in range(5)]
    await policy(other)
    assert summarizer.calls[-1] == (None, other[:3])


async def test_clear_session_drops_the_running_summary(backend: Backend) -> None:
    async with backend.open() as store:
        session = StoreSession("chat", store=store)
        await session.add_items([user(n) for n in range(4)])  # pyright: ignore[reportArgumentType]
        await session.add_summary(SummaryRecord(2, "old", "x"))
        assert await session.latest_summary() == SummaryRecord(2, "old", "x")
        await session.clear_session()
        assert await session.latest_summary() is None
        await store.append("chat", SUMMARIES_LOG, [{"through": "nope"}])
        assert await session.latest_summary() is None  # not a record: not reused


async def test_the_old_summarizer_still_works_with_a_deprecation_warning() -> None:
    seen: list[list[dict[str, Any]]] = []

    def old(items: list[dict[str, Any]]) -> str:
        seen.append(items)
        return f"s{len(seen)}"

    with pytest.warns(DeprecationWarning, match="summarize="):
        policy = SummaryPlusRecent(recent=1, summarizer=old)
    history = [user(n) for n in range(4)]
    await policy(history[:2])
    await policy(history[:3])
    assert seen == [
        [user(0)],
        [{"role": "developer", "content": "Summary of the earlier conversation: s1"}, user(1)],
    ]
    with pytest.raises(TypeError, match="exactly one"):
        SummaryPlusRecent(recent=1)
    with pytest.raises(ValueError, match="every"):
        SummaryPlusRecent(recent=1, summarize=Summarizer(), every=0)
