"""Runs survive their process: SIGKILL between turns, and an approval given in a new process.

Each test starts ``restart_worker.py`` as a real subprocess on SQLite, PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from agents import Runner
from journal_doubles import TURNS, Counter, make_agent, tool_runs
from oa_support import Backend
from restart_worker import echo_agent, run_turns

from agent_persist import Status, open_store
from openai_agents_persist import RUN_STATE_KIND, StoreSession, durable

WORKER = Path(__file__).with_name("restart_worker.py")


def worker(backend: Backend, *args: str) -> list[str]:
    return [sys.executable, str(WORKER), *args, *backend.cli_args, "--session", "s-1"]


async def reference_transcript(turns: int) -> list[Any]:
    async with open_store("memory://") as store:
        session = StoreSession("s-1", store=store, state=lambda ctx: ctx and ctx.context)
        await run_turns(session, echo_agent(turns), turns, wait=False)
        return await session.get_items()


async def finish(backend: Backend, *args: str) -> str:
    """Run the worker to completion and return what it printed."""
    child = await asyncio.create_subprocess_exec(
        *worker(backend, *args), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    assert child.returncode == 0
    return out.decode()


async def test_sigkill_between_turns_resumes_exactly(durable_backend: Backend) -> None:
    first = await asyncio.create_subprocess_exec(
        *worker(durable_backend, "turns", "--turns", "4", "--wait"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert first.stdout is not None
    assert first.stdin is not None
    assert await first.stdout.readline() == b"saved 1\n"
    first.stdin.write(b"\n")
    await first.stdin.drain()
    assert await first.stdout.readline() == b"saved 2\n"
    first.send_signal(signal.SIGKILL)  # between turns 2 and 3
    assert await first.wait() == -signal.SIGKILL

    second = await finish(durable_backend, "turns", "--turns", "4")
    assert second.split() == ["saved", "3", "saved", "4"]

    async with durable_backend.open() as store:
        session = StoreSession("s-1", store=store)
        assert await session.get_items() == await reference_transcript(4)
        last = await session.last_checkpoint()
        assert last is not None
        assert last.state == {"turn": 4, "budget": 96}
        assert last.turn_usage == {
            "requests": 1,
            "input_tokens": 10,
            "output_tokens": 5,
            "total_tokens": 15,
        }


async def test_interruption_approved_in_a_new_process(durable_backend: Backend) -> None:
    asked = await finish(durable_backend, "ask")
    assert json.loads(asked) == {"pending": ["delete_file"], "final": None}

    async with durable_backend.open() as store:
        head = await store.get("s-1")
        assert head.kind == RUN_STATE_KIND
        assert head.status is Status.INTERRUPTED

    approved = await finish(durable_backend, "approve")
    assert json.loads(approved) == {"pending": [], "final": "a.txt is gone"}

    async with durable_backend.open() as store:
        items = await StoreSession("s-1", store=store).get_items()
        assert [
            item.get("output") for item in items if item.get("type") == "function_call_output"
        ] == ["deleted a.txt"]
        assert items[0] == {"role": "user", "content": "delete a.txt"}
        assert (await store.get("s-1")).status is Status.DONE


@pytest.mark.sweep
@pytest.mark.parametrize("kill_at", [2, 4])
async def test_sigkill_inside_a_run_repays_nothing(
    durable_backend: Backend, tmp_path: Path, kill_at: int
) -> None:
    """Killed as a tool starts (its turn's model call done): the next worker replays it."""
    log = tmp_path / "done.log"
    args = ["journal", "--log", str(log)]
    first = await asyncio.create_subprocess_exec(
        *worker(durable_backend, *args, "--pause-at", str(kill_at)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert first.stdout is not None
    assert await first.stdout.readline() == f"at {kill_at} tool\n".encode()
    first.send_signal(signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL
    done_before = log.read_text().split()

    second = json.loads(await finish(durable_backend, *args))
    assert str(second["final"]).startswith("done")
    done = log.read_text().split()
    print(f"\n{durable_backend.name}, killed at event {kill_at}: before {done_before}, all {done}")
    assert done.count("model") == TURNS, "no model call paid twice"
    assert done.count("tool") == tool_runs(), "no tool run twice"
    async with durable_backend.open() as store:
        assert await store.read_log("s-1", "items") == await journal_reference()


async def journal_reference() -> list[Any]:
    async with open_store("memory://") as store:
        agent = make_agent(Counter())

        @durable(store=store, agent=agent)
        async def chat(session: StoreSession, user_input: Any) -> Any:
            return await Runner.run(agent, user_input, session=session)

        await chat("s-1", "go")
        return await store.read_log("s-1", "items")
