"""Summarizer calls of summary + recent over a long session: running summary against before.

    uv run python benchmarks/bench_summary_calls.py [--turns 100] [--recent 10]

Runs ``--turns`` turns (a user message and an answer each, from a scripted model: no network)
through the SDK's ``Runner`` on a ``StoreSession`` in memory, with ``SummaryPlusRecent`` as
the session input callback, and prints how many times the summarizer ran and how many items
it was given in all. "before" is the policy as it was before the running summary (the whole
older history summarised again whenever it grew: about one call per turn); "running" is the
policy now (``every=recent``: one call per window shift), once straight through and once with
a restart (new store object, session and policy) halfway.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any

from agents import Agent, RunConfig, Runner, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message

from agent_persist import open_store
from openai_agents_persist import StoreSession
from openai_agents_persist.policies import SummaryPlusRecent, context_policy

Item = dict[str, Any]


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.items = 0

    def __call__(self, previous: str | None, items: list[Item]) -> str:
        self.calls += 1
        self.items += len(items)
        return f"summary {self.calls}"


class Before:
    """The policy before the running summary: the whole older history summarised each time."""

    def __init__(self, recent: int, counter: Counter) -> None:
        self.recent, self.counter, self.older = recent, counter, -1

    def __call__(self, items: list[Item]) -> list[Item]:
        older = max(0, len(items) - self.recent)
        if older and older != self.older:
            self.older = older
            self.counter(None, items[:older])
        return items[older:]


async def run(turns: int, recent: int, variant: str) -> tuple[Counter, int]:
    counter = Counter()
    url = f"memory://bench-summary-{uuid.uuid4().hex}"
    model = ScriptedModel([[assistant_message(f"a{turn}")] for turn in range(turns)])
    agent = Agent(name="a", model=model)
    store = open_store(url)
    before = Before(recent, counter)
    for turn in range(turns):
        if variant == "running + restart" and turn == turns // 2:
            await store.close()
            store = open_store(url)
        session = StoreSession("chat", store=store)
        policy = (
            before
            if variant == "before"
            else SummaryPlusRecent(recent=recent, summarize=counter, session=session)
        )
        config = RunConfig(session_input_callback=context_policy(policy))
        await Runner.run(agent, f"u{turn}", session=session, run_config=config)
    stored = len(await StoreSession("chat", store=store).get_items())
    await store.close()
    return counter, stored


async def main() -> None:
    parser = argparse.ArgumentParser(description="Summarizer calls of summary + recent.")
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--recent", type=int, default=10)
    args = parser.parse_args()
    set_tracing_disabled(True)
    print(f"{args.turns} turns, window of {args.recent} items")
    print(f"{'policy':<20} {'summarizer calls':>16} {'items summarised':>17} {'stored items':>13}")
    for variant in ("before", "running", "running + restart"):
        counter, stored = await run(args.turns, args.recent, variant)
        print(f"{variant:<20} {counter.calls:>16} {counter.items:>17} {stored:>13}")


if __name__ == "__main__":
    asyncio.run(main())
