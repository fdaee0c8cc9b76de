"""Restart after a crash just works, with default options, and leases still exclude.

* The README's ``@durable`` code, SIGKILLed mid-run and started again at once in a new
  process, takes the dead process's lease over without waiting and finishes the run. The
  restart-to-lease time is printed (``-s``): ``uv run pytest
  tests/autogen/test_restart_after_crash.py -s -k killed``.
* A lease of another machine (another boot id, so its holder cannot be proved dead) is waited
  out: by default for at most the TTL plus one heartbeat, with one warning naming the holder.
* Two live workers exclude each other; a worker whose lease was taken over cannot write.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import signal
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from autogen_restart_worker import MESSAGES, TASK, essay_team
from scenarios import TASK as SCENARIO_TASK
from scenarios import round_robin_max
from support import same_result

from agent_persist import Envelope, open_store
from agent_persist.errors import LeaseLostError
from agent_persist.leases import DEFAULT_LEASE_TTL, default_lease_wait, owner_id, owner_is_dead
from agent_persist.stores import BaseStore
from autogen_persist import DurableAgent, DurableTeam, durable
from autogen_persist.errors import ThreadBusyError
from conftest import StoreSpec

WORKER = Path(__file__).parent / "autogen_restart_worker.py"
_LINE_TIMEOUT = 60.0


async def _spawn(spec: StoreSpec, thread_id: str, **env: str) -> asyncio.subprocess.Process:
    url, options = spec
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        url,
        json.dumps(options),
        thread_id,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )


async def _read_messages(process: asyncio.subprocess.Process, count: int) -> list[str]:
    """Read the worker's output until ``Console`` has shown ``count`` messages."""
    assert process.stdout is not None
    lines: list[str] = []
    seen = 0
    while seen < count:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=_LINE_TIMEOUT)
        assert line, f"the worker ended early: {lines}"
        lines.append(line.decode().rstrip("\n"))
        seen += line.startswith(b"---------- ")
    return lines


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
    await process.wait()


def _stamp(lines: list[str], tag: str) -> float:
    return float(next(line.split()[1] for line in lines if line.startswith(f"{tag} ")))


async def test_a_worker_killed_mid_run_is_resumed_at_once_by_a_new_process(
    store_spec: StoreSpec,
) -> None:
    url, options = store_spec
    worker_a = await _spawn(store_spec, "essay-1")
    try:
        await _read_messages(worker_a, 4)  # the task and three replies: mid-run
    finally:
        await _kill(worker_a)
    assert worker_a.returncode == -signal.SIGKILL
    killed = time.time()

    worker_b = await _spawn(store_spec, "essay-1")  # at once, the same code, a new process
    output, _ = await asyncio.wait_for(worker_b.communicate(), timeout=180)
    lines = output.decode().splitlines()
    assert worker_b.returncode == 0, lines
    finished = [line for line in lines if line.startswith("FINISHED ")]
    assert finished == [
        f"FINISHED {MESSAGES} Maximum number of messages {MESSAGES} reached, "
        f"current message count: {MESSAGES}"
    ]
    assert not [line for line in lines if line.startswith("LOG WARNING")], lines  # no wait
    took_over = any(line.startswith("LOG INFO") and "took over" in line for line in lines)
    acquired = next(
        float(line.split()[2])
        for line in lines
        if line.startswith("LOG DEBUG") and "lease acquired" in line
    )
    started, imported = _stamp(lines, "STARTED"), _stamp(lines, "IMPORTED")
    how = "took over the dead worker's lease" if took_over else "the lease had expired"
    print(
        f"\n[{url.split(':', 1)[0]}] restart to lease: {acquired - killed:.2f} s after the kill "
        f"(interpreter start {started - killed:.2f} s, imports {imported - started:.2f} s, "
        f"store + lease {acquired - imported:.2f} s; {how})"
    )

    async with open_store(url, **options) as store:
        reference = DurableTeam(lambda: essay_team(paced=False), store=store, thread_id="reference")
        expected = await reference.run(task=TASK)
        resumed = DurableTeam(lambda: essay_team(paced=False), store=store, thread_id="essay-1")
        assert same_result(await resumed.run(task=TASK), expected)  # finished: B's result


async def _dead_owner() -> str:
    """The owner id of a process that ran on this machine and exited."""
    code = "from agent_persist.leases import owner_id; print(owner_id())"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await child.communicate()
    return output.decode().strip()


async def test_a_dead_owners_lease_is_taken_over_at_once(
    store: BaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    dead = await _dead_owner()
    assert owner_is_dead(dead)
    await store.acquire_lease("t", dead, ttl=timedelta(hours=1))  # it would never expire
    team = DurableTeam(round_robin_max, store=store, thread_id="t")  # default options
    with caplog.at_level(logging.INFO, logger="autogen_persist"):
        result = await team.run(task=SCENARIO_TASK)
    assert result.stop_reason is not None
    taken = [r for r in caplog.records if r.levelno == logging.INFO and "took over" in r.message]
    assert len(taken) == 1
    assert dead in taken[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_two_live_workers_exclude_each_other(store_spec: StoreSpec) -> None:
    url, options = store_spec
    worker_a = await _spawn(store_spec, "essay-1", RESTART_WORKER_MESSAGES="400")
    try:
        await _read_messages(worker_a, 2)  # running, holding the lease
        async with open_store(url, **options) as store:
            worker_b = DurableTeam(
                essay_team, store=store, thread_id="essay-1", lease_wait=timedelta(0)
            )
            with pytest.raises(ThreadBusyError, match="another worker") as busy:
                await worker_b.run(task=TASK)
            holder = busy.value.holder
            assert holder is not None
            assert str(worker_a.pid) in holder.split("/")
            assert not owner_is_dead(holder)
    finally:
        await _kill(worker_a)


def _other_machine() -> str:
    """An owner id as a worker on another machine would make: another boot id."""
    parts = owner_id().split("/")
    parts[0], parts[1] = "other-host", str(uuid.uuid4())
    return "/".join(parts)


async def test_a_lease_of_another_machine_is_waited_out(
    store: BaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    ttl = timedelta(seconds=3)  # short, to keep the test fast; the default is 15 s
    holder = _other_machine()
    assert not owner_is_dead(holder)
    held = await store.acquire_lease("t", holder, ttl=ttl)
    team = DurableTeam(round_robin_max, store=store, thread_id="t", lease_ttl=ttl)
    with caplog.at_level(logging.INFO, logger="autogen_persist"):
        result = await team.run(task=SCENARIO_TASK)
    assert result.stop_reason is not None
    waits = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(waits) == 1
    assert holder in waits[0].getMessage()
    assert f"until {held.expires_at.year}-" in waits[0].getMessage()  # and its expiry
    assert not [r for r in caplog.records if "took over" in r.getMessage()]


async def test_a_worker_whose_lease_was_taken_over_cannot_write(store: BaseStore) -> None:
    seen: list[Envelope] = []

    async def usurp_after_the_second(envelope: Envelope) -> None:
        seen.append(envelope)
        if len(seen) == 2:
            await store.acquire_lease(
                "t", "usurper", ttl=timedelta(minutes=1), take_over=team.worker_id
            )

    team = DurableTeam(
        round_robin_max, store=store, thread_id="t", on_checkpoint=usurp_after_the_second
    )
    with pytest.raises(LeaseLostError):
        await team.run(task=SCENARIO_TASK)
    head = await store.get("t")
    assert head.checkpoint_id == seen[-1].checkpoint_id  # nothing after the take-over
    assert len(await store.list_checkpoints("t")) == 2
    for log, version in head.logs.items():  # no append either
        assert await store.read_log("t", log) == await store.read_log("t", log, at=head), (
            log,
            version,
        )
    with pytest.raises(ThreadBusyError, match="usurper"):
        await DurableTeam(round_robin_max, store=store, thread_id="t", lease_wait=timedelta(0)).run(
            task=SCENARIO_TASK
        )


def test_the_default_wait_is_the_ttl_plus_one_heartbeat() -> None:
    assert timedelta(seconds=15) == DEFAULT_LEASE_TTL
    assert default_lease_wait(DEFAULT_LEASE_TTL) == timedelta(seconds=20)
    assert default_lease_wait(timedelta(seconds=3)) == timedelta(seconds=4)
    for options in (
        inspect.signature(durable).parameters,
        inspect.signature(DurableTeam).parameters,
        inspect.signature(DurableAgent).parameters,
    ):
        assert options["lease_ttl"].default == DEFAULT_LEASE_TTL
        assert options["lease_wait"].default is None  # None: the TTL plus one heartbeat
