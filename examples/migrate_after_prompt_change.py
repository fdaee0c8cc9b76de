"""Change the prompts and the team, keep the conversation: AutoGen drift migrations.

Run it with `uv run python examples/migrate_after_prompt_change.py`: no API key, no server,
SQLite in a temporary directory. Version 1 of a team (a "writer" and a "critic") starts an
essay and the worker stops mid-run. Version 2 ships: the writer is renamed "author" and gets
a new system prompt, and an "editor" joins. Loading the old checkpoint with the new team
would fail in AutoGen (`Agent state for author not found`); declaring the changes lets the
default `migrate` drift policy carry the state across, and fresh objects of version 2
finish the run. The script prints what changed and checks the migrated state.

Offline the agents use a deterministic model double (each reply is a hash of the prompt);
with OPENAI_API_KEY set they use gpt-4o-mini.
"""

from __future__ import annotations

import asyncio
import os
import tempfile

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core.models import ChatCompletionClient

from agent_persist import Envelope
from autogen_persist import DurableTeam, migrations

TASK = "Write a short essay on why checkpoints matter."


def model(name: str) -> ChatCompletionClient:
    """gpt-4o-mini with a key, else the deterministic double."""
    if os.environ.get("OPENAI_API_KEY"):
        from autogen_ext.models.openai import OpenAIChatCompletionClient

        return OpenAIChatCompletionClient(model="gpt-4o-mini")
    from autogen_persist.testing import HashChatCompletionClient

    return HashChatCompletionClient(name=name)


def team_v1() -> RoundRobinGroupChat:
    writer = AssistantAgent("writer", model_client=model("writer"), system_message="Draft.")
    critic = AssistantAgent("critic", model_client=model("critic"), system_message="Critique.")
    return RoundRobinGroupChat([writer, critic], termination_condition=MaxMessageTermination(9))


def team_v2() -> RoundRobinGroupChat:
    author = AssistantAgent(
        "author", model_client=model("author"), system_message="Draft in plain English."
    )
    editor = AssistantAgent("editor", model_client=model("editor"), system_message="Tighten.")
    critic = AssistantAgent("critic", model_client=model("critic"), system_message="Critique.")
    return RoundRobinGroupChat(
        [author, editor, critic], termination_condition=MaxMessageTermination(9)
    )


class WorkerStopped(BaseException):
    """Stands for the version-1 worker being replaced after its third turn."""


def stop_after_turn_3(checkpoint: Envelope) -> None:
    if checkpoint.step == 2:
        raise WorkerStopped


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/agents.db"
        v1 = DurableTeam(team_v1, store=store, thread_id="essay", on_checkpoint=stop_after_turn_3)
        try:
            await v1.run(task=TASK)
        except WorkerStopped:
            print("version 1 stopped after 3 turns (writer, critic, writer)")

        # declare what changed (in the default registry; registry= takes another)
        migrations.rename_participant("writer", "author")
        migrations.add_participant("editor", prime=True)  # it reads the thread so far

        checkpoints: list[Envelope] = []
        v2 = DurableTeam(
            team_v2,
            store=store,
            thread_id="essay",
            on_checkpoint=checkpoints.append,
        )
        result = await v2.run()  # no task: continue the unfinished run, with fresh objects
        state = await v2.state()

    print("version 2 resumed the run; loading it migrated:")
    for line in checkpoints[0].metadata["drift"]["changes"]:
        print(f"  - {line}")
    manager = state["agent_states"]["RoundRobinGroupChatManager"]
    speakers = [m["source"] for m in manager["message_thread"]]
    print("speakers:", " -> ".join(speakers))
    print("stop reason:", result.stop_reason)
    if "writer" in speakers or not {"author", "editor", "critic"} <= set(speakers):
        raise SystemExit("the thread should hold the new names only")
    if set(state["agent_states"]) != {"author", "editor", "critic", "RoundRobinGroupChatManager"}:
        raise SystemExit("the team state should be keyed by the new participants")
    print("ok: the conversation survived the new prompts and participants")


if __name__ == "__main__":
    asyncio.run(main())
