"""AutoGen quickstart: make a team durable with one decorator; run it again and it resumes.

Run it with `uv run examples/autogen_quickstart.py`: no API key, no server. The team is
plain AutoGen; `@durable` makes every `run()` / `run_stream()` checkpoint to SQLite after
every agent turn. Running the same code again for the same thread resumes from the latest
checkpoint: here the first run is cut short after turn 4 (as if the process died), the
second finishes it, and the script checks the transcript equals an uninterrupted run's.

Offline the agents use a deterministic model double (each reply is a hash of the whole
prompt); with OPENAI_API_KEY set they use gpt-4o-mini. Set AGENT_PERSIST_URL to try another
store, e.g. postgresql://postgres@127.0.0.1/test.
"""

from __future__ import annotations

import asyncio
import os
import tempfile

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_agentchat.ui import Console
from autogen_core.models import ChatCompletionClient

from agent_persist import Envelope
from autogen_persist import durable
from autogen_persist.testing import HashChatCompletionClient

TASK = "Write a four-line poem about checkpoints."


def model(name: str) -> ChatCompletionClient:
    """gpt-4o-mini with a key, else the deterministic double."""
    if os.environ.get("OPENAI_API_KEY"):
        from autogen_ext.models.openai import OpenAIChatCompletionClient

        return OpenAIChatCompletionClient(model="gpt-4o-mini")
    return HashChatCompletionClient(name=name)


def build_team() -> RoundRobinGroupChat:
    """Ordinary AutoGen code: called again whenever fresh objects are needed."""
    poet = AssistantAgent("poet", model_client=model("poet"), system_message="Write poems.")
    critic = AssistantAgent(
        "critic", model_client=model("critic"), system_message="Critique; say APPROVE when done."
    )
    stop = TextMentionTermination("APPROVE") | MaxMessageTermination(9)
    return RoundRobinGroupChat([poet, critic], termination_condition=stop)


class Crash(BaseException):
    """Stands for the process dying after turn 4."""


def crash_after_turn_4(checkpoint: Envelope) -> None:
    if checkpoint.step == 3:
        raise Crash


async def main(url: str) -> None:
    durable_team = durable(store=url)(build_team)
    try:  # first "process": dies after turn 4
        await durable(store=url, on_checkpoint=crash_after_turn_4)(build_team)(
            thread_id="poem"
        ).run(task=TASK)
    except Crash:
        print("worker died after turn 4; starting the same code again...")

    team = durable_team(thread_id="poem")
    result = await Console(team.run_stream(task=TASK))  # resumes at turn 5
    status = await team.status()
    if status is None:
        raise SystemExit("the thread has no checkpoint")
    print(f"status={status.status.value} stop_reason={status.stop_reason!r}")

    reference = await durable_team(thread_id="reference").run(task=TASK)
    if not os.environ.get("OPENAI_API_KEY"):  # a real model is not deterministic
        same = [m.dump()["content"] for m in result.messages] == [
            m.dump()["content"] for m in reference.messages
        ]
        if not same:
            raise SystemExit("the resumed transcript differs from an uninterrupted run")
        print("resumed transcript == uninterrupted transcript")
    again = await team.run(task=TASK)  # finished: returned as is, nobody talks
    if again.stop_reason != result.stop_reason:
        raise SystemExit("a finished run must be returned as it finished")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(os.environ.get("AGENT_PERSIST_URL", f"sqlite:///{directory}/team.db")))
