"""A worker process killed with SIGKILL mid-run; a fresh worker resumes and finishes the task.

A representative subset of the scenarios on every persistent store: the dead worker's
lease stays behind, and worker B, with default options, takes it over (its holder is a
process of this machine that no longer runs) and finishes. The result must equal an
uninterrupted run's (the exhaustive every-turn matrix is test_resume_matrix.py).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest
from scenarios import TASK, TEAMS
from support import normalize, same_result

from agent_persist import open_store
from autogen_persist import DurableTeam
from conftest import StoreSpec

WORKER = Path(__file__).parent / "sigkill_worker.py"


async def _start_and_kill(spec: StoreSpec, scenario: str, thread_id: str, after: int) -> None:
    url, options = spec
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        url,
        json.dumps(options),
        scenario,
        thread_id,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    seen = 0
    try:
        while seen < after:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert line, "the worker ended before it was killed"
            seen += line.startswith(b"checkpoint")
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    ("scenario", "after"), [("round_robin_text_or_max", 4), ("graph_cycle", 7)]
)
async def test_a_killed_worker_is_replaced_by_a_fresh_one(
    store_spec: StoreSpec, scenario: str, after: int
) -> None:
    url, options = store_spec
    await _start_and_kill(store_spec, scenario, "crashed", after)
    async with open_store(url, **options) as store:
        partial = await store.list_checkpoints("crashed")
        assert len(partial) >= after
        reference = DurableTeam(TEAMS[scenario], store=store, thread_id="reference")
        expected = await reference.run(task=TASK)

        worker_b = DurableTeam(TEAMS[scenario], store=store, thread_id="crashed")
        result = await worker_b.run(task=TASK)
        assert same_result(result, expected)
        assert normalize(await worker_b.state()) == normalize(await reference.state())
