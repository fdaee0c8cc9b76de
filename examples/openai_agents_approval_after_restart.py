"""Human-in-the-loop across a restart: a tool call waits for approval, a new process approves.

Run it with `uv run examples/openai_agents_approval_after_restart.py`: offline, with the
SDK's `ScriptedModel`; with OPENAI_API_KEY set it talks to the real model. The first process
asks the agent to delete a file; the tool needs approval, so the run stops and
`durable` saves its `RunState` (with the agent's fingerprint) in the session's
history and the process exits. A second process (started with `approve`) loads the pending
run, approves the call and completes it on the same session.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from typing import Any

import httpx
from agents import Agent, Model, Runner, function_tool, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

from agent_persist import open_store
from openai_agents_persist import StoreSession, durable


def build_model(*offline_steps: Any) -> Model:
    """The real OpenAI model when OPENAI_API_KEY is set, else a scripted one."""
    if os.environ.get("OPENAI_API_KEY"):
        from agents import OpenAIResponsesModel
        from openai import AsyncOpenAI

        client = AsyncOpenAI(http_client=httpx.AsyncClient())
        return OpenAIResponsesModel(os.environ.get("OPENAI_MODEL", "gpt-4.1-mini"), client)
    set_tracing_disabled(True)
    return ScriptedModel(offline_steps)


@function_tool(needs_approval=True)
def delete_file(path: str) -> str:
    """Delete a file. A human must approve every call."""
    return f"deleted {path}"


def approve(item: Any) -> bool:
    print(f"approving {item.name}({item.arguments})")
    return True


async def step(url: str, phase: str) -> str:
    if phase == "ask":
        model = build_model([function_call("delete_file", {"path": "old.log"}, call_id="c1")])
    else:
        model = build_model([assistant_message("old.log is deleted.")])
    agent = Agent(name="ops", instructions="Use your tools.", tools=[delete_file], model=model)
    async with open_store(url) as store:

        @durable(store=store, agent=agent, approve=approve)
        async def chat(session: StoreSession, user_input: Any) -> Any:
            return await Runner.run(agent, user_input, session=session)

        if phase == "ask":
            result = await chat("ticket-7", "Please delete old.log")
            return f"waiting for approval of {[i.name for i in result.interruptions]}"
        result = await chat("ticket-7")
        return f"done: {result.final_output}"


async def main(url: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = url or os.environ.get("AGENT_PERSIST_URL") or f"sqlite:///{tmp}/agents.db"
        print(await step(url, "ask"))
        # The first process is gone; a new one approves (it could be days later).
        child = await asyncio.create_subprocess_exec(sys.executable, __file__, "approve", url)
        if await child.wait() != 0:
            raise SystemExit("the approving process failed")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "approve":
        print(asyncio.run(step(sys.argv[2], "approve")))
    else:
        asyncio.run(main())
