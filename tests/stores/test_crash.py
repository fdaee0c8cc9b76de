"""A writer killed with SIGKILL in the middle of its writes leaves a consistent store.

A child process writes checkpoints as fast as it can, each appending three items to a log;
it is killed at an arbitrary moment, three times over. After each kill the head must load,
every checkpoint must see exactly the log it was written with, no item may exist that no
checkpoint wrote, and the next writer must be able to continue from the head.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent_persist import open_store
from agent_persist.errors import ThreadNotFoundError

WRITER = r"""
import asyncio, json, sys
from agent_persist import Envelope, Producer, open_store
from agent_persist.errors import ThreadNotFoundError

async def main(url, options):
    store = open_store(url, **options)
    try:
        head = await store.get("crash")
    except ThreadNotFoundError:
        head = None
    while True:
        n = 0 if head is None else head.payload["n"] + 1
        items = [f"{n}-{i}" for i in range(3)]
        envelope = (
            Envelope.create(kind="crash.test", schema_version=1, thread_id="crash",
                            payload={"n": n}, producer=Producer(package="crash"))
            if head is None else head.next(payload={"n": n})
        )
        head = await store.put(envelope, appends={"log": items})
        if n % 10 == 0:
            print(n, flush=True)

asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
"""


async def kill_mid_write(url: str, options: dict[str, Any], after: int) -> None:
    """Start a writer, let it pass ``after`` checkpoints, then SIGKILL it."""
    child = subprocess.Popen(  # noqa: ASYNC220, S603 - our own writer script, killed below
        [sys.executable, "-c", WRITER, url, json.dumps(options)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        while True:
            line = await asyncio.to_thread(child.stdout.readline)
            assert line, f"the writer exited early with {child.wait()}"
            if int(line) >= after:
                break
        await asyncio.sleep(0.013)  # let it get into the middle of another write
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


async def check_consistent(url: str, options: dict[str, Any]) -> int:
    async with open_store(url, **options) as store:
        head = await store.get("crash")
        n = head.payload["n"]
        assert head.step == n
        assert await store.read_log("crash", "log") == [
            f"{k}-{i}" for k in range(n + 1) for i in range(3)
        ]
        for checkpoint in await store.list_checkpoints("crash", limit=25):
            k = checkpoint.payload["n"]
            seen = await store.read_log("crash", "log", at=checkpoint)
            assert seen == [f"{j}-{i}" for j in range(k + 1) for i in range(3)]
        after = await store.put(
            head.next(payload={"n": n + 1}), appends={"log": [f"{n + 1}-{i}" for i in range(3)]}
        )
        assert (await store.get("crash")).checkpoint_id == after.checkpoint_id
        return n + 1


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A store URL and the options that isolate this test on it (cleaned up by the fixtures)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/crash.db", {}
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url"), {
            "schema": request.getfixturevalue("postgres_schema")
        }
    return request.getfixturevalue("redis_url"), {"prefix": request.getfixturevalue("redis_prefix")}


async def test_killed_writer_leaves_the_previous_head_intact(
    target: tuple[str, dict[str, Any]],
) -> None:
    url, options = target
    written = 0
    for _ in range(3):
        await kill_mid_write(url, options, after=written + 20)
        written = await check_consistent(url, options)
    with pytest.raises(ThreadNotFoundError):
        async with open_store(url, **options) as store:
            await store.get("never-written")
    assert written >= 60
