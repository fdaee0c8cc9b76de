"""OpenAI Agents SDK quickstart: a Session that survives the process, checkpointed per turn.

Run it with `uv run examples/openai_agents_quickstart.py`: offline, with the SDK's
deterministic `ScriptedModel`. With OPENAI_API_KEY set it talks to the real model
(OPENAI_MODEL, default gpt-4.1-mini). Set AGENT_PERSIST_URL to try another store, e.g.
postgresql://postgres@127.0.0.1/test or redis://127.0.0.1:6379/0.

The first "process" asks two questions and records the application state (the current task
and the budget left) with each turn; the second opens a fresh store on the same database and
continues the same conversation, knowing both the history and the state.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

import httpx
from agents import Agent, Model, Runner, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message

from agent_persist import open_store
from openai_agents_persist import StoreSession


def build_model(*offline_replies: str) -> Model:
    """The real OpenAI model when OPENAI_API_KEY is set, else a scripted one."""
    if os.environ.get("OPENAI_API_KEY"):
        from agents import OpenAIResponsesModel
        from openai import AsyncOpenAI

        client = AsyncOpenAI(http_client=httpx.AsyncClient())
        return OpenAIResponsesModel(os.environ.get("OPENAI_MODEL", "gpt-4.1-mini"), client)
    set_tracing_disabled(True)
    return ScriptedModel([[assistant_message(reply)] for reply in offline_replies])


def task_state(wrapper: Any) -> Any:
    """What the app wants back after a restart: recorded with every turn."""
    return wrapper.context if wrapper is not None else None


async def ask(url: str, question: str, context: dict[str, Any], reply: str) -> str:
    """One "process": open the store, run one turn on the session, close everything."""
    agent = Agent(name="guide", instructions="Answer in one sentence.", model=build_model(reply))
    async with open_store(url) as store:
        session = StoreSession("user-42", store=store, state=task_state)
        result = await Runner.run(agent, question, session=session, context=context)
        return str(result.final_output)


async def main(url: str | None = None) -> list[Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = url or os.environ.get("AGENT_PERSIST_URL") or f"sqlite:///{tmp}/agents.db"
        context = {"task": "learn about sessions", "budget": 2}
        print(await ask(url, "What is a session?", context, "A session keeps the history."))
        context["budget"] -= 1
        print(await ask(url, "And what did I just ask?", context, "You asked about sessions."))

        async with open_store(url) as store:  # a later process
            session = StoreSession("user-42", store=store)
            items = await session.get_items()
            last = await session.last_checkpoint()
            if last is None:
                raise SystemExit("no per-turn checkpoint was written")
            print(f"{len(items)} items stored; state after the last turn: {last.state}")
            print(f"tokens used by the last turn: {last.turn_usage['total_tokens']}")
            await session.clear_session()
            return items


if __name__ == "__main__":
    asyncio.run(main())
