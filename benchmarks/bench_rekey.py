"""What the key-maintenance commands cost over many threads: ``seal``, then ``rekey``.

For each store it writes ``--threads`` threads in clear (a checkpoint and two log items
each; not timed), then times, one run after the other on the same data:

- ``seal``: turning encryption on, every thread gets a data key and its three clear values
  are sealed in place (:func:`agent_persist.crypto.seal`);
- ``seal`` again: nothing left to seal (what a resumed run costs for finished threads);
- ``rekey --dry-run``, ``rekey`` to a new primary (every data key re-wrapped), and
  ``rekey`` again (every key already under the primary: skipped).

Each run works on 8 threads at once, as the commands do by default (``--concurrency``).
It checks a sample of threads reads back after each step and prints seconds and threads
per second.

    uv run python benchmarks/bench_rekey.py [--stores memory,sqlite,postgres,redis]
                                            [--threads 10000]

PostgreSQL and Redis come from AGENT_PERSIST_POSTGRES_URL / AGENT_PERSIST_REDIS_URL (each
run on a schema or key prefix of its own, dropped afterwards); an unreachable one is left
out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _harness import POSTGRES_URL, REDIS_URL, drop_prefix, drop_schema, fresh_name

from agent_persist import open_store
from agent_persist.crypto import Encryption, KeyRing, rekey, seal
from agent_persist.envelope import Envelope, Producer
from agent_persist.stores.base import BaseStore

KEY_A, KEY_B = os.urandom(32), os.urandom(32)
PRODUCER = Producer(package="bench_rekey")
BATCH = 64
CONCURRENCY = 8
"""Threads worked on at once, as the command does (``--concurrency``, default 8)."""


def locate(name: str, folder: str) -> tuple[str, dict[str, Any], str]:
    where = fresh_name("ap_benchk", name)
    urls: dict[str, tuple[str, dict[str, Any]]] = {
        "memory": (f"memory://{where}", {}),
        "sqlite": (f"sqlite:///{folder}/rekey-{where}.db", {}),
        "postgres": (POSTGRES_URL, {"schema": where}),
        "redis": (REDIS_URL, {"prefix": where}),
    }
    url, options = urls[name]
    return url, options, where


async def opened(url: str, options: dict[str, Any], keys: KeyRing | None) -> BaseStore:
    encryption = None if keys is None else Encryption(keys)
    store = open_store(url, encryption=encryption, **options)
    await store.setup()
    return store


async def fill(store: BaseStore, threads: int) -> None:
    async def one(index: int) -> None:
        thread_id = f"thread-{index}"
        await store.put(
            Envelope.create(
                kind="bench.rekey",
                schema_version=1,
                thread_id=thread_id,
                payload={"state": f"secret state {index}"},
                producer=PRODUCER,
            ),
            appends={"transcript": [{"role": "user", "content": f"hello {index}"}, "bye"]},
        )

    for start in range(0, threads, BATCH):
        await asyncio.gather(*(one(i) for i in range(start, min(start + BATCH, threads))))


async def check(store: BaseStore, threads: int) -> None:
    for index in range(0, threads, max(1, threads // 20)):
        head = await store.get(f"thread-{index}")
        if head.payload != {"state": f"secret state {index}"}:
            raise SystemExit(f"thread-{index}: read back {head.payload!r}")
        items = await store.read_log(f"thread-{index}", "transcript")
        if items != [{"role": "user", "content": f"hello {index}"}, "bye"]:
            raise SystemExit(f"thread-{index}: read back {items!r}")


async def timed(work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await work()
    return time.perf_counter() - start, result


async def measure(name: str, url: str, options: dict[str, Any], threads: int) -> list[str]:
    clear = await opened(url, options, None)
    try:
        await fill(clear, threads)
    finally:
        await clear.close()
    ring_a = KeyRing({"a": KEY_A}, primary="a")
    ring_ab = KeyRing({"a": KEY_A, "b": KEY_B}, primary="b")
    rows: list[str] = []

    def row(what: str, seconds: float, detail: str) -> None:
        rate = threads / seconds if seconds else float("inf")
        rows.append(f"| {name} | {what} | {threads} | {seconds:.2f} | {rate:,.0f} | {detail} |")

    store = await opened(url, options, ring_a)
    try:
        seconds, report = await timed(lambda: seal(store, concurrency=CONCURRENCY))
        row("seal", seconds, f"{report.values} values sealed")
        seconds, report = await timed(lambda: seal(store, concurrency=CONCURRENCY))
        row("seal, run again", seconds, f"{report.values} values sealed")
        await check(store, threads)
    finally:
        await store.close()
    store = await opened(url, options, ring_ab)
    try:
        seconds, report = await timed(lambda: rekey(store, dry_run=True, concurrency=CONCURRENCY))
        row("rekey --dry-run", seconds, f"{report.rewrapped} keys to re-wrap")
        seconds, report = await timed(lambda: rekey(store, concurrency=CONCURRENCY))
        row("rekey", seconds, f"{report.rewrapped} keys re-wrapped")
        seconds, report = await timed(lambda: rekey(store, concurrency=CONCURRENCY))
        row("rekey, run again", seconds, f"{report.already_primary} already under the primary")
    finally:
        await store.close()
    only_b = await opened(url, options, KeyRing({"b": KEY_B}, primary="b"))
    try:
        await check(only_b, threads)
    finally:
        await only_b.close()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stores", default="memory,sqlite,postgres,redis")
    parser.add_argument("--threads", type=int, default=10_000)
    args = parser.parse_args()
    print("| store | run | threads | seconds | threads/s | result |")
    print("| --- | --- | --: | --: | --: | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.stores.split(","):
            url, options, where = locate(name, folder)
            try:
                probe = await opened(url, options, None)
                await probe.close()
            except Exception as exc:
                print(f"{name}: unavailable ({type(exc).__name__}: {exc}); left out")
                continue
            try:
                for line in await measure(name, url, options, args.threads):
                    print(line, flush=True)
            finally:
                if name == "postgres":
                    await drop_schema(where)
                elif name == "redis":
                    await drop_prefix(where)


if __name__ == "__main__":
    asyncio.run(main())
