"""A worker running the README's ``@durable`` code with default options, for restart tests.

    python autogen_restart_worker.py URL OPTIONS_JSON THREAD_ID

It prints ``STARTED <epoch>`` first thing and ``IMPORTED <epoch>`` once its imports are done,
then ``Console``'s output of the run, each ``autogen_persist`` log record as
``LOG <LEVEL> <epoch> <message>``, and ``FINISHED <message count> <stop reason>`` at the end.
The model replies take a moment (``PACE`` seconds, like a real model), so a parent can kill
it mid-run; ``RESTART_WORKER_MESSAGES`` sets the run's length (20 messages).
"""

from __future__ import annotations

import time

STARTED = time.time()

import asyncio  # noqa: E402 - the start time is taken before the imports on purpose
import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

from autogen_agentchat.agents import AssistantAgent  # noqa: E402
from autogen_agentchat.conditions import MaxMessageTermination  # noqa: E402
from autogen_agentchat.teams import RoundRobinGroupChat  # noqa: E402
from autogen_agentchat.ui import Console  # noqa: E402
from autogen_core.models import CreateResult, LLMMessage  # noqa: E402

from agent_persist import open_store  # noqa: E402
from autogen_persist import durable  # noqa: E402
from autogen_persist.testing import HashChatCompletionClient  # noqa: E402

for _backend in ("sql", "redis"):  # imported now: the measured restart is not import time
    importlib.import_module(f"agent_persist.stores.{_backend}")

TASK = "Write an essay."
MESSAGES = int(os.environ.get("RESTART_WORKER_MESSAGES", "20"))
"""The run's length: the task and the replies."""
PACE = 0.15
"""Seconds each model reply takes."""


class PacedClient(HashChatCompletionClient):
    """The deterministic test model, answering after ``PACE`` seconds as a real one would."""

    async def create(self, messages: Sequence[LLMMessage], **options: Any) -> CreateResult:
        """The reply this prompt always gets, after ``PACE`` seconds."""
        await asyncio.sleep(PACE)
        return await super().create(messages, **options)


def essay_team(*, paced: bool = True) -> RoundRobinGroupChat:
    """The README's team: a writer and a critic taking turns (the same replies unpaced)."""
    client = PacedClient if paced else HashChatCompletionClient
    writer = AssistantAgent("writer", model_client=client(name="writer"))
    critic = AssistantAgent("critic", model_client=client(name="critic"))
    return RoundRobinGroupChat(
        [writer, critic], termination_condition=MaxMessageTermination(MESSAGES)
    )


class _Report(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        print(f"LOG {record.levelname} {record.created} {record.getMessage()}", flush=True)


async def main(url: str, options: str, thread_id: str) -> None:
    print(f"STARTED {STARTED}", flush=True)
    print(f"IMPORTED {time.time()}", flush=True)
    logger = logging.getLogger("autogen_persist")
    logger.addHandler(_Report())
    logger.setLevel(logging.DEBUG)
    isolation = json.loads(options)
    store = open_store(url, **isolation) if isolation else url  # a private schema / prefix

    # The README's code, default options:
    @durable(store=store)
    def build_team() -> RoundRobinGroupChat:
        return essay_team()

    team = build_team(thread_id=thread_id)
    result = await Console(team.run_stream(task=TASK))

    if not isinstance(store, str):
        await store.close()
    print(f"FINISHED {len(result.messages)} {result.stop_reason}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
