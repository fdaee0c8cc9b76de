"""What the durable call journal costs per call, per store.

For each store it times, with the thread's lease held (every append carries it):

- a journaled model call: ``Journal.model_call`` of a two-message request whose ``call``
  returns a CreateResult-sized dict at once, so the time is the journal's (the request's
  fingerprint and one append);
- a journaled tool call: ``Journal.tool_call`` of a tool that returns at once (a
  ``started`` append and a result append);
- a replayed model call: ``Journal.model_call`` of a request the journal holds, after one
  ``Journal.load`` (no append);
- one bare ``store.append`` of a model call's entry, for reference.

It counts the store appends each call makes (targets: 1 for a model call, 2 for a tool call,
0 for a replay) and prints the median and p90 milliseconds over ``--samples`` calls (after
a warm-up), and the bytes of the entries (canonical JSON). Every 10 calls the journal is
emptied outside the timings, as a turn's checkpoint would, so it never holds more than
one turn's entries. Target: about 0.2 ms per append on SQLite.

    uv run python benchmarks/bench_journal.py [--stores memory,sqlite,postgres,redis]
                                              [--samples 300]

PostgreSQL and Redis come from AGENT_PERSIST_POSTGRES_URL / AGENT_PERSIST_REDIS_URL (each
run on a schema or key prefix of its own, dropped afterwards); an unreachable one is left
out.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, cast

from _harness import MESSAGE, POSTGRES_URL, REDIS_URL, drop_prefix, drop_schema, fresh_name

from agent_persist import canonical_json, open_store
from agent_persist._journal import Journal, Span
from agent_persist.journal import JOURNAL_LOG
from agent_persist.stores import Lease
from agent_persist.stores.base import BaseStore

THREAD = "bench-journal"
PRODUCER = "bench_journal 1"
WARMUP = 20
TURN = 10
"""Calls between two emptyings of the journal (what a turn's checkpoint does)."""

REQUEST: dict[str, Any] = {
    "messages": [
        {"type": "SystemMessage", "content": "You are writer."},
        {"type": "UserMessage", "content": MESSAGE, "source": "user"},
    ],
    "tools": [],
    "tool_choice": "auto",
    "json_output": None,
    "extra": {},
}
"""A model request as the AutoGen wrapper fingerprints it: messages, tools, settings."""

RESULT: dict[str, Any] = {
    "finish_reason": "stop",
    "content": MESSAGE,
    "usage": {"prompt_tokens": 52, "completion_tokens": 31},
    "cached": False,
    "logprobs": None,
    "thought": None,
}
"""A CreateResult's ``model_dump(mode="json")`` of about that size."""

ARGUMENTS: dict[str, Any] = {"city": "Paris", "units": "metric"}
TOOL_RESULT: dict[str, Any] = {"content": "18 C, light rain", "is_error": False}


def same(value: Any) -> Any:
    return value


class Counted:
    """Counts the appends the store under test is asked for."""

    def __init__(self, store: BaseStore) -> None:
        self.appends = 0
        append = store.append

        async def counting(*args: Any, **kwargs: Any) -> None:
            self.appends += 1
            await append(*args, **kwargs)

        store.append = counting  # type: ignore[method-assign]


async def open_bench_store(name: str, folder: str) -> tuple[BaseStore, str] | None:
    """The store, opened and set up, and where it lives; ``None`` if unreachable."""
    where = fresh_name("ap_benchj", name)
    urls: dict[str, tuple[str, dict[str, str]]] = {
        "memory": ("memory://", {}),
        "sqlite": (f"sqlite:///{folder}/journal.db", {}),
        "postgres": (POSTGRES_URL, {"schema": where}),
        "redis": (REDIS_URL, {"prefix": where}),
    }
    url, options = urls[name]
    store = open_store(url, **options)
    try:
        await store.setup()
    except Exception as exc:
        print(f"{name}: unavailable ({type(exc).__name__}: {exc}); left out")
        await store.close()
        return None
    return store, where


class Timings:
    """Times calls made one after the other, and the appends each made."""

    def __init__(self, counted: Counted) -> None:
        self.counted = counted
        self.ms: list[float] = []
        self.appends: set[int] = set()

    async def run(
        self,
        call: Callable[[int], Awaitable[Any]],
        samples: int,
        *,
        turn: Callable[[], Awaitable[None]],
    ) -> None:
        """``call(i)`` ``WARMUP + samples`` times; ``turn()`` (untimed) every ``TURN`` calls."""
        for i in range(WARMUP + samples):
            if i % TURN == 0:
                await turn()
            before = self.counted.appends
            started = time.perf_counter()
            await call(i)
            elapsed = (time.perf_counter() - started) * 1000
            if i >= WARMUP:
                self.ms.append(elapsed)
                self.appends.add(self.counted.appends - before)

    def row(self, name: str, what: str, entry_bytes: str) -> str:
        p90 = statistics.quantiles(self.ms, n=10)[8]
        appends = ", ".join(str(n) for n in sorted(self.appends))
        return (
            f"| {name} | {what} | {appends} | {statistics.median(self.ms):.3f} | "
            f"{p90:.3f} | {entry_bytes} |"
        )


async def replied() -> Any:
    return RESULT


async def ran() -> Any:
    return TOOL_RESULT


class Bench:
    """One store's thread, its lease, and the journal the timed calls go through."""

    def __init__(self, store: BaseStore, lease: Lease) -> None:
        self.store, self.lease = store, lease
        self.counted = Counted(store)
        self.span = Span("0.1", "run 0, turn 1")
        self.journal = self.new_journal()

    def new_journal(self) -> Journal:
        lease = self.lease
        return Journal(self.store, THREAD, lease=lambda: lease, producer=PRODUCER)

    def model_call(self, journal: Journal) -> Awaitable[Any]:
        return journal.model_call(self.span, "writer", REQUEST, replied, dump=same, load=same)

    async def checkpointed(self) -> None:
        """What a turn's checkpoint does to the journal: empty it."""
        await self.store.clear_log(THREAD, JOURNAL_LOG)
        self.journal.checkpointed()

    async def recorded_turn(self) -> None:
        """Empty the journal, record a turn of model calls, load it into a fresh journal."""
        await self.checkpointed()
        writer = self.new_journal()
        for _ in range(TURN):
            await self.model_call(writer)
        self.journal = self.new_journal()
        await self.journal.load(self.span)

    async def replay(self, i: int) -> None:
        await self.model_call(self.journal)
        if self.journal.replayed_model_calls != i % TURN + 1:
            raise RuntimeError(f"call {i} was not replayed")


async def measure(name: str, store: BaseStore, samples: int) -> list[str]:
    lease = await store.acquire_lease(THREAD, "bench-journal-worker", ttl=timedelta(hours=1))
    bench = Bench(store, lease)
    rows: list[str] = []

    model = Timings(bench.counted)
    await model.run(lambda _: bench.model_call(bench.journal), samples, turn=bench.checkpointed)
    entry = cast("dict[str, Any]", (await store.read_log(THREAD, JOURNAL_LOG))[0])
    rows.append(model.row(name, "model call", f"{len(canonical_json(entry)):,}"))

    tool = Timings(bench.counted)
    await tool.run(
        lambda i: bench.journal.tool_call(
            bench.span, "writer", f"call_{i}", "weather", ARGUMENTS, ran, dump=same, load=same
        ),
        samples,
        turn=bench.checkpointed,
    )
    started, result = (await store.read_log(THREAD, JOURNAL_LOG))[:2]
    sizes = f"{len(canonical_json(started)):,} + {len(canonical_json(result)):,}"
    rows.append(tool.row(name, "tool call", sizes))

    replayed = Timings(bench.counted)
    await replayed.run(bench.replay, samples, turn=bench.recorded_turn)
    rows.append(replayed.row(name, "replayed model call", "-"))

    bare = Timings(bench.counted)
    await bare.run(
        lambda _: store.append(THREAD, JOURNAL_LOG, [entry], lease=lease),
        samples,
        turn=bench.checkpointed,
    )
    rows.append(bare.row(name, "reference: one bare `append` of a model entry", "same"))
    await store.release_lease(lease)
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stores", default="memory,sqlite,postgres,redis")
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    print("| store | call | store appends per call | median ms | p90 ms | entry bytes |")
    print("| --- | --- | --: | --: | --: | --: |")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.stores.split(","):
            opened = await open_bench_store(name, folder)
            if opened is None:
                continue
            store, where = opened
            try:
                for row in await measure(name, store, args.samples):
                    print(row, flush=True)
            finally:
                await store.close()
                if name == "postgres":
                    await drop_schema(where)
                elif name == "redis":
                    await drop_prefix(where)


if __name__ == "__main__":
    asyncio.run(main())
