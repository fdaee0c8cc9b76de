"""A StoreSession from many threads and event loops: the Agents SDK's own scenarios, on our stores.

The SDK tests its sessions with ``Runner.run_sync`` (one default loop per thread, left open
between calls) and with one session shared by threads that each ``asyncio.run`` their own
loop. Each scenario here does that with a ``StoreSession`` and checks the items exactly: no
item lost, none duplicated, each thread's items in its order. A hang fails (threads are
joined with a timeout), it never blocks the suite. Run as a script, every scenario runs in
this process, so the tests can watch a crash (a segmentation fault) from outside::

    python loop_scenarios.py --url URL [--option k=v]   # prints "ok" and exits 0
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from agents import Agent, Runner, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message

from agent_persist import BaseStore, open_store
from openai_agents_persist import StoreSession

set_tracing_disabled(True)

JOIN_TIMEOUT = 180.0
"""Seconds a scenario's threads get; still running after that is a hang, and fails."""

OpenStore = Callable[[], BaseStore]


def message(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def contents(items: list[Any]) -> list[str]:
    """Each item's text: a user message's content, an assistant message's output text."""
    return [
        item["content"] if isinstance(item["content"], str) else text_of(item) for item in items
    ]


def text_of(item: dict[str, Any]) -> str:
    """The text of an assistant message item (its content is a list of parts)."""
    return "".join(part.get("text", "") for part in item["content"])


def run_threads(*targets: Callable[[], None]) -> None:
    """Run each target in its own thread; re-raise the first failure; fail on a hang."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [
        threading.Thread(target=guarded, args=(target,), daemon=True, name=f"scenario-{n}")
        for n, target in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    hung = [thread.name for thread in threads if thread.is_alive()]
    assert not hung, f"still running after {JOIN_TIMEOUT:.0f}s, so hung: {hung}"
    if errors:
        raise errors[0]


def shut_down(loop: asyncio.AbstractEventLoop) -> None:
    """Close a loop the way ``asyncio.run`` does: its tasks are cancelled (and finish) first."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


@contextmanager
def own_default_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh default loop for this thread (the one ``Runner.run_sync`` uses), then closed."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        shut_down(loop)
        asyncio.set_event_loop(None)


def in_order(got: list[str], prefix: str) -> list[str]:
    return [text for text in got if text.startswith(prefix)]


def threads_share_one_session(new_store: OpenStore, *, threads: int = 8, rounds: int = 2) -> None:
    """One session, 8 threads, each ``asyncio.run`` (twice) of add, get and pop calls."""
    store = new_store()
    session = StoreSession("shared", store=store)
    popped: list[str] = []
    lock = threading.Lock()
    turns = 5

    def worker(t: int) -> None:
        for r in range(rounds):

            async def work(r: int) -> None:
                for n in range(turns):
                    await session.add_items(
                        [message(f"t{t}-{r}-{n}-a"), message(f"t{t}-{r}-{n}-b")]
                    )
                    assert len(await session.get_items(limit=2)) == 2
                    item = await session.pop_item()
                    assert item is not None
                    with lock:
                        popped.append(str(item["content"]))

            asyncio.run(work(r))

    run_threads(*(lambda t=t: worker(t) for t in range(threads)))

    async def check() -> None:
        try:
            left = contents(await session.get_items())
            added = [
                f"t{t}-{r}-{n}-{k}"
                for t in range(threads)
                for r in range(rounds)
                for n in range(turns)
                for k in "ab"
            ]
            assert len(popped) == threads * rounds * turns
            assert sorted(left + popped) == sorted(added), "an item was lost or duplicated"
            for t in range(threads):  # a thread's items stay in the order it added them
                mine = in_order(left, f"t{t}-")
                assert mine == sorted(mine, key=added.index)
        finally:
            await store.close()

    asyncio.run(check())


def scripted_agent(replies: list[str]) -> Agent[Any]:
    model = ScriptedModel([[assistant_message(reply)] for reply in replies])
    return Agent(name="a", instructions="be brief", model=model)


def run_sync_in_a_row(new_store: OpenStore, *, calls: int = 6) -> None:
    """``Runner.run_sync`` called again and again from this thread, on one session."""
    store = new_store()
    session = StoreSession("in-a-row", store=store)
    agent = scripted_agent([f"a{n}" for n in range(calls)])
    with own_default_loop() as loop:
        for n in range(calls):
            result = Runner.run_sync(agent, f"q{n}", session=session)
            assert result.final_output == f"a{n}"
        model = agent.model
        assert isinstance(model, ScriptedModel)
        assert model.last_call is not None
        sent = [item.get("content") for item in model.last_call.input if isinstance(item, dict)]
        assert sent[0] == "q0", "the history was not passed"
        assert sent[-1] == f"q{calls - 1}"
        got = contents(loop.run_until_complete(session.get_items()))
        assert got == [text for n in range(calls) for text in (f"q{n}", f"a{n}")]
        loop.run_until_complete(store.close())


def run_sync_in_worker_threads(new_store: OpenStore, *, threads: int = 4, calls: int = 5) -> None:
    """``Runner.run_sync`` repeated in several threads at once, one session between them."""
    store = new_store()
    session = StoreSession("workers", store=store)

    def worker(t: int) -> None:
        agent = scripted_agent([f"t{t}-a{n}" for n in range(calls)])
        with own_default_loop():
            for n in range(calls):
                result = Runner.run_sync(agent, f"t{t}-q{n}", session=session)
                assert result.final_output == f"t{t}-a{n}"

    run_threads(*(lambda t=t: worker(t) for t in range(threads)))

    async def check() -> None:
        try:
            got = contents(await session.get_items())
            assert len(got) == threads * calls * 2
            for t in range(threads):
                expected = [f"t{t}-{kind}{n}" for n in range(calls) for kind in "qa"]
                assert in_order(got, f"t{t}-") == expected
        finally:
            await store.close()

    asyncio.run(check())


def loop_after_loop(new_store: OpenStore) -> None:
    """A store opened in one loop and used in the next ones, each after the last closed."""

    async def first() -> tuple[BaseStore, StoreSession]:
        store = new_store()
        session = StoreSession("serial", store=store)
        await session.add_items([message("1"), message("2")])
        return store, session

    store, session = asyncio.run(first())

    async def again() -> None:
        assert contents(await session.get_items()) == ["1", "2"]
        await session.add_items([message("3")])
        assert await session.pop_item() == message("3")

    asyncio.run(again())
    asyncio.run(again())

    async def last() -> None:
        try:
            assert contents(await session.get_items()) == ["1", "2"]
        finally:
            await store.close()

    asyncio.run(last())


def closed_and_used_again(new_store: OpenStore) -> None:
    """close() in one loop, then the same store used (and closed) in the next."""
    store = new_store()
    session = StoreSession("again", store=store)

    async def turn(n: int) -> list[str]:
        try:
            await session.add_items([message(str(n))])
            return contents(await session.get_items())
        finally:
            await store.close()

    assert [asyncio.run(turn(n)) for n in range(3)] == [["0"], ["0", "1"], ["0", "1", "2"]]


def two_loops_at_once(new_store: OpenStore, *, steps: int = 20) -> None:
    """Two threads, two loops, in step: every call of one overlaps a call of the other."""
    store = new_store()
    session = StoreSession("two", store=store)
    barrier = threading.Barrier(2, timeout=JOIN_TIMEOUT)

    def worker(name: str) -> None:
        async def work() -> None:
            for n in range(steps):
                barrier.wait()
                await asyncio.wait_for(session.add_items([message(f"{name}{n}")]), JOIN_TIMEOUT)
                barrier.wait()
                assert f"{name}{n}" in contents(await session.get_items(limit=2))

        asyncio.run(work())

    run_threads(lambda: worker("x"), lambda: worker("y"))

    async def check() -> None:
        try:
            got = contents(await session.get_items())
            assert sorted(got) == sorted(f"{name}{n}" for name in "xy" for n in range(steps))
            assert in_order(got, "x") == [f"x{n}" for n in range(steps)]
        finally:
            await store.close()

    asyncio.run(check())


SCENARIOS = {
    "threads_share_one_session": threads_share_one_session,
    "run_sync_in_a_row": run_sync_in_a_row,
    "run_sync_in_worker_threads": run_sync_in_worker_threads,
    "loop_after_loop": loop_after_loop,
    "closed_and_used_again": closed_and_used_again,
    "two_loops_at_once": two_loops_at_once,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--option", action="append", default=[])
    args = parser.parse_args()
    options = dict(option.split("=", 1) for option in args.option)
    for scenario in SCENARIOS.values():
        scenario(lambda: open_store(args.url, **options))
    print("ok", flush=True)


if __name__ == "__main__":
    main()
