"""Teams before and after a configuration change, and frozen migration fixtures.

Each fixture under ``tests/fixtures/autogen/`` is the materialized payload of a thread
stopped mid-run by the "before" team (``<name>.before.json``) and what the built-in
migration makes of it (``<name>.after.json``). They are generated once by
``REGENERATE_FIXTURES=1 uv run pytest tests/autogen/test_autogen_migrations.py`` and then frozen: a
change in a migration's output shows as a diff of the after file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import Team
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core.model_context import UnboundedChatCompletionContext
from autogen_core.models import LLMMessage
from autogen_core.tools import FunctionTool
from support import abort_after

from agent_persist import Registry, Status, fingerprint
from agent_persist.stores import BaseStore
from autogen_persist import KIND_TEAM, DurableTeam
from autogen_persist._checkpoints import write_checkpoint
from autogen_persist._layout import team_layout
from autogen_persist._logs import read_logs
from autogen_persist._plugin import register
from autogen_persist.drift import drift_config
from autogen_persist.testing import HashChatCompletionClient

FIXTURES = Path(__file__).parent.parent / "fixtures" / "autogen"
REGENERATE = os.environ.get("REGENERATE_FIXTURES") == "1"
TASK = "Write a haiku about autumn."


def lookup(city: str) -> str:
    """Look up a city."""
    return f"{city}: sunny"


def lookup_customer(customer: str) -> str:
    """Find a customer's account."""
    return f"{customer}: gold tier"


def find_customer(customer: str) -> str:
    """Find a customer's account."""
    return f"{customer}: gold tier"


def agent(
    name: str,
    *,
    system: str | None = None,
    tool: str | None = None,
    initial: Sequence[LLMMessage] | None = None,
    tool_every: int = 0,
    function: Callable[..., Any] | None = None,
) -> AssistantAgent:
    """An assistant on the prompt-hash model, named after itself in its model.

    ``tool`` names a ``FunctionTool`` of :func:`lookup`; ``function`` is given as is, so
    AutoGen names the tool after the Python function (its docstring the description).
    """
    tools: list[Any] = (
        [] if tool is None else [FunctionTool(lookup, description="Look up.", name=tool)]
    )
    if function is not None:
        tools.append(function)
    return AssistantAgent(
        name,
        model_client=HashChatCompletionClient(name=name, tool_every=tool_every),
        system_message=system or f"You are {name}.",
        tools=tools,
        model_context=UnboundedChatCompletionContext(initial_messages=list(initial or [])),
    )


def round_robin(*agents: AssistantAgent, limit: int = 12) -> Team:
    return RoundRobinGroupChat(list(agents), termination_condition=MaxMessageTermination(limit))


def customer_desk(function: Callable[[str], str]) -> Team:
    """A writer whose tool is ``function`` itself (AutoGen names the tool after it)."""
    return round_robin(agent("writer", function=function, tool_every=1), agent("critic"))


def selector(*agents: AssistantAgent, limit: int = 12) -> Team:
    return SelectorGroupChat(
        list(agents),
        model_client=HashChatCompletionClient(choices=[a.name for a in agents]),
        termination_condition=MaxMessageTermination(limit),
    )


def new_registry() -> Registry:
    registry = Registry()
    register(registry)
    return registry


async def stop_after(store: BaseStore, factory: Callable[[], Team], checkpoints: int) -> None:
    """Run ``factory``'s team on thread ``t`` and stop the worker after some checkpoints."""
    team = DurableTeam(factory, store=store, thread_id="t", on_checkpoint=abort_after(checkpoints))
    try:
        await team.run(task=TASK)
    except BaseException as exc:  # the Abort that stands for a dead worker
        if type(exc).__name__ != "Abort":
            raise


async def materialized(store: BaseStore, thread_id: str = "t") -> dict[str, Any]:
    """The thread head's payload with its logs inline (as migrations see it)."""
    head = await store.get(thread_id)
    full, _ = await read_logs(store, head, head.payload)
    return full


async def put_fixture(store: BaseStore, factory: Callable[[], Team], payload: Any) -> None:
    """Store ``payload`` (inline lists) as thread ``t``'s head, written by ``factory``'s team."""
    team = factory()
    config = drift_config(team, team_layout(team))  # pyright: ignore[reportArgumentType]
    await write_checkpoint(
        store,
        None,
        thread_id="t",
        kind=KIND_TEAM,
        payload=payload,
        appends={},
        fingerprint=fingerprint(config["component"]),
        config=config,
        status=Status.RUNNING,
    )


def fixture(name: str, fresh: Any) -> Any:
    """The frozen fixture ``name`` (written from ``fresh`` only when regenerating)."""
    path = FIXTURES / f"{name}.json"
    if REGENERATE:
        FIXTURES.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fresh, indent=1, sort_keys=True) + "\n")
    if not path.exists():
        pytest.fail(f"missing fixture {path}: run with REGENERATE_FIXTURES=1 and review it")
    return json.loads(path.read_text())
