"""What one checkpoint costs as the history grows, on every store.

For histories of 10, 100 and 1,000 messages, it writes 40 more checkpoints (each adds a
user message and a reply to the transcript log, plus a small state payload) and prints the
median and p90 time of one `put`, the bytes encoded for it, and what a full snapshot
(`json.dump` of the whole state, the naive pattern) would write at that length.
Target: the figure at 1,000 within 1.5x of the figure at 10.

    uv run python benchmarks/bench_checkpoint_cost.py [--stores memory,sqlite,postgres,redis]

PostgreSQL and Redis come from AGENT_PERSIST_POSTGRES_URL / AGENT_PERSIST_REDIS_URL (the
local servers by default); an unreachable one is reported and left out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from typing import Any

from agent_persist import Envelope, PayloadCodec, Producer, canonical_json, open_store
from agent_persist.stores._records import encode_checkpoint, encode_item
from agent_persist.stores.base import BaseStore

HISTORIES = (10, 100, 1000)
SAMPLES = 40
PRODUCER = Producer(package="bench")
POSTGRES_URL = os.environ.get(
    "AGENT_PERSIST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AGENT_PERSIST_REDIS_URL", "redis://127.0.0.1:6379/0")


def message(index: int) -> dict[str, Any]:
    role = "user" if index % 2 == 0 else "assistant"
    return {"role": role, "content": f"message {index}: " + "lorem ipsum dolor sit amet " * 6}


async def open_bench_store(name: str, folder: str) -> BaseStore:
    run = uuid.uuid4().hex[:12]
    if name == "memory":
        store = open_store("memory://")
    elif name == "sqlite":
        store = open_store(f"sqlite:///{folder}/bench.db")
    elif name == "postgres":
        store = open_store(POSTGRES_URL, schema=f"ap_bench_{run}")
    else:
        store = open_store(REDIS_URL, prefix=f"apbench:{run}")
    await store.setup()
    return store


async def drop(name: str, store: BaseStore) -> None:
    for thread in await store.list_threads():
        await store.delete_thread(thread.thread_id)
    if name == "postgres":
        from sqlalchemy import text

        schema = store.schema  # type: ignore[attr-defined]
        engine = store.engine  # type: ignore[attr-defined]
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await store.close()


async def measure(store: BaseStore, history: int) -> tuple[list[float], int, int]:
    thread_id = f"bench-{history}-{uuid.uuid4().hex[:6]}"
    messages = [message(i) for i in range(history)]
    head = await store.put(
        Envelope.create(
            kind="bench.chat",
            schema_version=1,
            thread_id=thread_id,
            payload={"turn": 0},
            producer=PRODUCER,
        ),
        appends={"transcript": messages},
    )
    codec = PayloadCodec()
    times: list[float] = []
    encoded_bytes = 0
    for sample in range(SAMPLES):
        new = [message(history + 2 * sample), message(history + 2 * sample + 1)]
        messages += new
        envelope = head.next(payload={"turn": sample + 1, "tokens_left": 10_000 - sample})
        started = time.perf_counter()
        head = await store.put(envelope, appends={"transcript": new})
        times.append((time.perf_counter() - started) * 1000)
        encoded = encode_checkpoint(envelope, codec)
        encoded_bytes = (
            len(encoded.header)
            + len(encoded.payload)
            + len(canonical_json(head.logs))
            + sum(len(encode_item(m, codec)) for m in new)
        )
    naive = len(canonical_json({"turn": SAMPLES, "transcript": messages}))
    transcript = await store.read_log(thread_id, "transcript", at=head)
    if transcript != messages:
        raise RuntimeError(f"{thread_id}: the transcript read back differs from what was written")
    return times, encoded_bytes, naive


async def run(stores: list[str]) -> None:
    print(
        f"{'store':9} {'history':>7} {'median ms':>9} {'p90 ms':>7} {'bytes/ckpt':>10} "
        f"{'naive bytes':>11}"
    )
    summary: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for name in stores:
            try:
                store = await open_bench_store(name, folder)
            except Exception as exc:
                print(f"{name:9} unavailable: {type(exc).__name__}: {exc}")
                continue
            medians: dict[int, float] = {}
            sizes: dict[int, int] = {}
            for history in HISTORIES:
                times, size, naive = await measure(store, history)
                medians[history], sizes[history] = statistics.median(times), size
                p90 = statistics.quantiles(times, n=10)[-1]
                print(
                    f"{name:9} {history:7} {medians[history]:9.3f} {p90:7.3f} {size:10} {naive:11}"
                )
            await drop(name, store)
            summary.append(
                f"{name:9} time 1000/10 = {medians[1000] / medians[10]:.2f}x, "
                f"bytes 1000/10 = {sizes[1000] / sizes[10]:.2f}x"
            )
    print("\nratios (target: at most 1.5x)")
    print("\n".join(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="memory,sqlite,postgres,redis")
    asyncio.run(run(parser.parse_args().stores.split(",")))


if __name__ == "__main__":
    main()
