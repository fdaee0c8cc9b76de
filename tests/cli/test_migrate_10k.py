"""``migrate --dry-run`` and ``migrate`` over many envelopes on SQLite, PostgreSQL and Redis.

Threads of 5 checkpoints at schema version 1 of a test kind (registered with a 1 -> 2
migration in a registry injected for the test): the dry run must see every checkpoint, the
real run must write one new current head per thread, and a rerun must find nothing left to
do. The suite runs 400 threads (2,000 envelopes); ``AGENT_PERSIST_MIGRATE_THREADS=2000``
runs the 10,000 envelopes the README's numbers come from. Run with ``-s`` to see the time
each took (the command prints it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

from cli_support import Backend, arun, first, make_registry

from agent_persist.stores.base import BaseStore

THREADS = int(os.environ.get("AGENT_PERSIST_MIGRATE_THREADS", "400"))
PER_THREAD = 5


async def bulk_load(store: BaseStore) -> None:
    """Write the threads concurrently (each thread's chain in order) to load quickly."""
    gate = asyncio.Semaphore(16)

    async def one(index: int) -> None:
        async with gate:
            head = await store.put(first(f"thread-{index}", metadata={"i": index}))
            for step in range(1, PER_THREAD):
                head = await store.put(head.next(payload={"n": step}))

    await asyncio.gather(*(one(index) for index in range(THREADS)))


async def heads(store: BaseStore) -> list[tuple[str, int | None, int]]:
    return [
        (info.thread_id, info.schema_version, info.checkpoint_count)
        for info in await store.list_threads()
    ]


def test_migrate_ten_thousand_envelopes(backend: Backend, tmp_path: Path) -> None:
    registry = make_registry()
    arun(backend.with_store(bulk_load))

    dry = backend.invoke(
        "migrate", "--dry-run", "--report", str(tmp_path / "dry.json"), registry=registry
    )
    assert dry.exit_code == 0, dry.output
    assert re.search(r"in \d+\.\d\ds \(nothing written", dry.output), dry.output
    planned = json.loads((tmp_path / "dry.json").read_text())
    assert planned["counts"] == {
        "checkpoints": THREADS * PER_THREAD,
        "would_migrate": THREADS * PER_THREAD,
        "current": 0,
        "future": 0,
        "unknown_kind": 0,
        "errors": 0,
    }
    assert planned["would_migrate"][0]["changes"] == ["+ $.count", "- $.n"]
    assert all(version == 1 for _, version, _ in arun(backend.with_store(heads)))

    real = backend.invoke("migrate", "--report", str(tmp_path / "real.json"), registry=registry)
    assert real.exit_code == 0, real.output
    timing = re.search(r"in (\d+\.\d\d)s", real.output)
    assert timing, real.output
    report = json.loads((tmp_path / "real.json").read_text())
    assert report["completed"] is True
    assert report["counts"] == {
        "migrated": THREADS,
        "skipped": 0,
        "skipped_current": 0,
        "skipped_future": 0,
        "skipped_unknown_kind": 0,
        "failed": 0,
    }
    after = arun(backend.with_store(heads))
    assert len(after) == THREADS
    assert all(version == 2 and count == PER_THREAD + 1 for _, version, count in after)

    async def sample(store: BaseStore) -> None:
        head = await store.get("thread-7")
        assert head.payload == {"count": PER_THREAD - 1}
        assert head.metadata == {"i": 7, "migrated_from": 1}
        assert head.step == PER_THREAD
        parent = await store.get("thread-7", head.parent_id)
        assert (parent.schema_version, parent.payload) == (1, {"n": PER_THREAD - 1})

    arun(backend.with_store(sample))

    again = backend.invoke("migrate", "--json", registry=registry)
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["counts"]["skipped_current"] == THREADS
    print(
        f"\n{backend.name}: dry run over {THREADS * PER_THREAD} checkpoints "
        f"{planned['seconds']:.2f}s; migrate {THREADS} heads {timing.group(1)}s "
        f"({report['seconds']:.2f}s in the report)"
    )
