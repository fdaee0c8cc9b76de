"""Worker A runs an AutoGen team and is killed with SIGKILL mid-run; worker B finishes it.

Run it with `uv run examples/autogen_resume_after_crash.py`: no API key, no server. The
script starts worker A (a separate process) on a SQLite store, kills it with SIGKILL after
its fifth checkpoint, then starts worker B at once, a new process that builds fresh agents
and a fresh team with the same factory and resumes the thread. Neither needs a lease setting:
A's lease is left behind by the crash, and B, seeing that its holder is a process of this
machine that no longer runs, takes it over at once (a worker that died on another machine
is waited out instead, for at most the lease's 15 s TTL plus one 5 s heartbeat). The script
checks B's final transcript against a run that was never interrupted.

Set AGENT_PERSIST_URL to try another store, e.g. redis://127.0.0.1:6379/0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
import time

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import SelectorGroupChat

from agent_persist import Envelope
from autogen_persist import DurableTeam
from autogen_persist.testing import HashChatCompletionClient

TASK = "Design a durable job queue."
NAMES = ["architect", "engineer", "reviewer"]


def build_team() -> SelectorGroupChat:
    agents = [
        AssistantAgent(
            n, model_client=HashChatCompletionClient(name=n), system_message=f"You are the {n}."
        )
        for n in NAMES
    ]
    selector = HashChatCompletionClient(name="selector", choices=NAMES)
    return SelectorGroupChat(
        agents,
        model_client=selector,
        termination_condition=MaxMessageTermination(13),
        allow_repeated_speaker=True,
    )


async def worker(url: str, thread_id: str) -> None:
    """One worker process: run (or resume) the thread, print each checkpoint and the result."""

    persist_log = logging.getLogger("autogen_persist")  # shows B taking A's lease over
    persist_log.addHandler(logging.StreamHandler(sys.stdout))
    persist_log.setLevel(logging.INFO)

    def report(checkpoint: Envelope) -> None:
        print(f"checkpoint step={checkpoint.step} status={checkpoint.status.value}", flush=True)

    team = DurableTeam(build_team, store=url, thread_id=thread_id, on_checkpoint=report)
    result = await team.run(task=TASK)
    print("RESULT " + json.dumps([m.dump()["content"] for m in result.messages]), flush=True)


async def spawn(url: str, thread_id: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--worker", url, thread_id, stdout=asyncio.subprocess.PIPE
    )


async def main(url: str) -> None:
    worker_a = await spawn(url, "job")
    if worker_a.stdout is None:
        raise SystemExit("worker A has no stdout pipe")
    for _ in range(5):
        print("worker A:", (await worker_a.stdout.readline()).decode().strip())
    worker_a.send_signal(signal.SIGKILL)
    await worker_a.wait()
    print(f"worker A killed (exit {worker_a.returncode}); starting worker B")

    started = time.monotonic()
    worker_b = await spawn(url, "job")
    output, _ = await worker_b.communicate()
    print(f"worker B ran for {time.monotonic() - started:.1f} s, start-up included")
    lines = output.decode().splitlines()
    for line in lines[:-1]:
        print("worker B:", line)
    resumed = json.loads(lines[-1].removeprefix("RESULT "))

    reference = await DurableTeam(build_team, store=url, thread_id="reference").run(task=TASK)
    if resumed != [m.dump()["content"] for m in reference.messages]:
        raise SystemExit("worker B's transcript differs from an uninterrupted run")
    print(f"worker B finished the task: {len(resumed)} messages, equal to an uninterrupted run")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        asyncio.run(worker(sys.argv[2], sys.argv[3]))
    else:
        with tempfile.TemporaryDirectory() as directory:
            asyncio.run(main(os.environ.get("AGENT_PERSIST_URL", f"sqlite:///{directory}/jobs.db")))
