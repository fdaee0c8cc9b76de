"""A process the restart tests start, kill with SIGKILL, and start again.

    python restart_worker.py turns   --url URL [--option k=v] --session S --turns N
    python restart_worker.py ask     --url URL [--option k=v] --session S
    python restart_worker.py approve --url URL [--option k=v] --session S
    python restart_worker.py journal --url URL [--option k=v] --session S --log F [--pause-at K]

``turns`` continues a conversation from its last per-turn checkpoint, printing ``saved K``
after each turn and then waiting for a line on stdin (the parent kills it there). The model
derives every reply from a hash of the whole input, so a lost or duplicated item changes
every later reply. ``ask`` stops for a tool approval and exits; ``approve`` approves it.
``journal`` runs (or finishes) a durable run of :mod:`journal_doubles`' agent, appending
``model`` or ``tool`` to the log file for each completed model call and tool run; with
``--pause-at K`` it prints ``at K`` when the K-th event starts and blocks there (the parent
kills it).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from typing import Any

from agents import Agent, ModelResponse, Runner, function_tool, set_tracing_disabled
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import Usage
from journal_doubles import Counter, make_agent

from agent_persist import BaseStore, open_store
from openai_agents_persist import StoreSession
from openai_agents_persist.decorator import durable

set_tracing_disabled(True)


def hashed_reply(call: ModelCall) -> ModelResponse:
    """A reply that depends on every item the model was sent."""
    digest = hashlib.sha256(json.dumps(call.input, sort_keys=True).encode()).hexdigest()[:12]
    usage = Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15)
    return ModelResponse(
        output=[assistant_message(f"reply {digest}")], usage=usage, response_id=None
    )


def echo_agent(turns: int) -> Agent[Any]:
    model = ScriptedModel([ModelStep.respond(hashed_reply) for _ in range(turns)])
    return Agent(name="echo", instructions="answer", model=model)


async def run_turns(session: StoreSession, agent: Agent[Any], turns: int, wait: bool) -> None:
    """Run turns from the last checkpoint's turn on, checkpointing each one."""
    last = await session.last_checkpoint()
    done = 0 if last is None else int(last.state["turn"])
    for turn in range(done + 1, turns + 1):
        context = {"turn": turn, "budget": 100 - turn}
        await Runner.run(agent, f"question {turn}", session=session, context=context)
        print(f"saved {turn}", flush=True)
        if wait:
            sys.stdin.readline()


@function_tool(needs_approval=True)
def delete_file(path: str) -> str:
    """Delete a file (needs a human's approval)."""
    return f"deleted {path}"


def ops_agent(*steps: Any) -> Agent[Any]:
    return Agent(
        name="ops", instructions="be careful", tools=[delete_file], model=ScriptedModel(steps)
    )


async def approval(store: BaseStore, session_id: str, step: str) -> None:
    if step == "ask":
        agent = ops_agent([function_call("delete_file", {"path": "a.txt"}, call_id="c1")])
    else:
        agent = ops_agent([assistant_message("a.txt is gone")])

    @durable(store=store, agent=agent, approve=lambda item: item.name == "delete_file")
    async def chat(session: StoreSession, user_input: Any) -> Any:
        return await Runner.run(agent, user_input, session=session)

    result = await chat(session_id, "delete a.txt" if step == "ask" else None)
    print(
        json.dumps(
            {"pending": [i.name for i in result.interruptions], "final": result.final_output}
        )
    )


async def journaled(store: BaseStore, session_id: str, log: str, pause_at: int | None) -> None:
    def attempt(number: int, what: str) -> None:
        if number == pause_at:
            print(f"at {number} {what}", flush=True)
            sys.stdin.readline()  # blocks the whole process: the parent kills it here

    def done(what: str) -> None:
        with open(log, "a") as file:
            file.write(what + "\n")

    agent = make_agent(Counter(on_attempt=attempt, on_done=done))

    @durable(store=store, agent=agent, tool_policies={"step": "rerun"})
    async def chat(session: StoreSession, user_input: Any) -> Any:
        return await Runner.run(agent, user_input, session=session)

    result = await chat(session_id, "go")
    print(json.dumps({"final": result.final_output}))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["turns", "ask", "approve", "journal"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--option", action="append", default=[])
    parser.add_argument("--session", required=True)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--log")
    parser.add_argument("--pause-at", type=int)
    args = parser.parse_args()
    options = dict(option.split("=", 1) for option in args.option)
    async with open_store(args.url, **options) as store:
        if args.mode == "turns":
            session = StoreSession(args.session, store=store, state=lambda ctx: ctx and ctx.context)
            await run_turns(session, echo_agent(args.turns), args.turns, args.wait)
        elif args.mode == "journal":
            await journaled(store, args.session, args.log, args.pause_at)
        else:
            await approval(store, args.session, args.mode)


if __name__ == "__main__":
    asyncio.run(main())
