"""Scenarios of the call-journal kill tests: a model double and tools that count, and die on cue.

Shared by the test process, the kill zygote (kill_zygote.py) and the benchmark. Every
completed model call and tool run appends one line to the counts file (``configure``),
counted inside the model double and the tool body themselves, so whatever a journal or
wrapper around them does, a call that really ran is counted. When the kill point is
reached (the k-th model call or tool run started in this process) the process SIGKILLs
itself inside that call, before it completes.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import threading
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import ChatAgent, TaskResult, Team
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat, Swarm
from autogen_core import CancellationToken
from autogen_core.models import CreateResult, LLMMessage
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from agent_persist.stores import CheckpointStore
from autogen_persist import DurableAgent, DurableTeam
from autogen_persist.testing import HashChatCompletionClient

Kind = Literal["model", "tool"]

TASK = "Plan a three-day trip to Lisbon."
AGENT_TASKS = [f"Question {i}: what is {i} plus {i * 3}?" for i in range(8)]

JOURNAL_WIRED = "journal" in inspect.signature(DurableTeam.__init__).parameters
"""Whether DurableTeam/DurableAgent take ``journal=`` and ``tool_policies=`` yet."""


class _Counting:
    """This process's counts file, kill point, and calls started so far."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.kill: tuple[Kind, int] | None = None
        self.started: Counter[str] = Counter()
        self.lock = threading.Lock()


_STATE = _Counting()


def configure(counts: Path | None, kill: tuple[Kind, int] | None = None) -> None:
    """Count completed calls into ``counts`` from now on; die inside call ``kill`` if given."""
    with _STATE.lock:
        _STATE.path, _STATE.kill = counts, kill
        _STATE.started.clear()


def _start(kind: Kind, label: str) -> None:
    """A call of ``kind`` starts: noted (to name the killed call), and the kill point."""
    with _STATE.lock:  # the start lines in the order of the count (tools run in threads)
        _STATE.started[kind] += 1
        reached = _STATE.kill == (kind, _STATE.started[kind])
        _write(f"start-{kind} {label}")
    if reached:
        os.kill(os.getpid(), signal.SIGKILL)


def _done(kind: Kind, label: str) -> None:
    """A call of ``kind`` completed: one line in the counts file."""
    _write(f"{kind} {label}")


def _write(text: str) -> None:
    path = _STATE.path
    if path is None:
        return
    line = f"{text}\n".encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line)  # one write: in the kernel before the next kill
    finally:
        os.close(descriptor)


@dataclass(frozen=True, slots=True)
class Counts:
    """Completed model calls and tool runs, read from a counts file."""

    model: int = 0
    tool: int = 0
    tools: tuple[str, ...] = ()
    """Each completed tool run, as ``name arguments``."""
    started_tools: tuple[str, ...] = ()
    """Each tool run started, in order (the last one of a child killed in a tool is it)."""

    @classmethod
    def read(cls, path: Path) -> Counts:
        """The counts in ``path`` (none if it does not exist)."""
        lines = path.read_text().splitlines() if path.exists() else []
        tools = tuple(line[5:] for line in lines if line.startswith("tool "))
        started = tuple(line[11:] for line in lines if line.startswith("start-tool "))
        model = sum(line.startswith("model ") for line in lines)
        return cls(model=model, tool=len(tools), tools=tools, started_tools=started)

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.model + other.model,
            self.tool + other.tool,
            self.tools + other.tools,
            self.started_tools + other.started_tools,
        )


class CountingChatCompletionClient(HashChatCompletionClient):
    """The hash double, counting each completed call and dying inside the k-th if told."""

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """The hash reply, counted once it is complete."""
        _start("model", self._config.name)
        result = await super().create(messages, tools=tools)
        _done("model", self._config.name)
        return result

    def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Streaming would not be counted: the scenarios never stream."""
        raise NotImplementedError("the kill scenarios do not stream")


def add(a: int, b: int) -> int:
    """Add two numbers."""
    label = f"add {json.dumps({'a': a, 'b': b}, sort_keys=True)}"
    _start("tool", label)
    result = a + b
    _done("tool", label)
    return result


def lookup(key: str) -> str:
    """Look a key up."""
    label = f"lookup {json.dumps({'key': key}, sort_keys=True)}"
    _start("tool", label)
    result = f"value-of-{key}"
    _done("tool", label)
    return result


TOOL_RESULTS: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b,  # pyright: ignore[reportUnknownLambdaType]
    "lookup": lambda key: f"value-of-{key}",  # pyright: ignore[reportUnknownLambdaType]
}
"""What each tool returns, without running (or counting) it: for reconcile functions."""


def _client(name: str, **options: Any) -> CountingChatCompletionClient:
    return CountingChatCompletionClient(name=name, **options)


def tool_agent() -> ChatAgent:
    """(a) One agent with tools that reflects on their results."""
    return AssistantAgent(
        "assistant",
        model_client=_client("assistant", tool_every=2),
        tools=[add, lookup],
        system_message="You answer with tools.",
        reflect_on_tool_use=True,
    )


def round_robin_tools() -> Team:
    """(b) A round robin of agents with tools, one reflecting, one summarizing."""
    return RoundRobinGroupChat(
        [
            AssistantAgent(
                "planner",
                model_client=_client("planner", tool_every=2),
                tools=[add, lookup],
                reflect_on_tool_use=True,
                system_message="You are planner.",
            ),
            AssistantAgent(
                "critic",
                model_client=_client("critic", tool_every=2),
                tools=[lookup],
                system_message="You are critic.",
            ),
        ],
        termination_condition=MaxMessageTermination(10),
    )


PARALLEL_TOOLS = 2
"""Tool calls in each tool-calling reply of the parallel scenario."""


def parallel_agent() -> ChatAgent:
    """(c) An agent whose tool-calling replies hold two calls, run concurrently."""
    return AssistantAgent(
        "parallel",
        model_client=_client("parallel", tool_every=2, parallel_tools=PARALLEL_TOOLS),
        tools=[add, lookup],
        system_message="You call tools in parallel.",
        reflect_on_tool_use=True,
    )


def selector() -> Team:
    """(d) Model-based speaker selection: the selector is a hash double with choices."""
    names = ["researcher", "analyst", "writer"]
    return SelectorGroupChat(
        [AssistantAgent(n, model_client=_client(n), system_message=f"You are {n}.") for n in names],
        model_client=_client("selector", choices=names),
        termination_condition=MaxMessageTermination(10),
        allow_repeated_speaker=False,
    )


def swarm() -> Team:
    """(e) A swarm whose agents hand off to each other and look things up."""
    names = ["triage", "billing", "support"]
    agents: list[ChatAgent] = [
        AssistantAgent(
            name,
            model_client=_client(name, tool_every=2),
            tools=[lookup],
            handoffs=[other for other in names if other != name],
            system_message=f"You are {name}.",
        )
        for name in names
    ]
    return Swarm(agents, termination_condition=MaxMessageTermination(12))


@dataclass(frozen=True, slots=True)
class Scenario:
    """A factory and how it is run: a team on one task, or an agent over several."""

    name: str
    factory: Callable[[], Any]
    team: bool

    def durable(
        self, store: CheckpointStore, thread_id: str, **options: Any
    ) -> DurableTeam | DurableAgent:
        """A fresh durable object for the thread (default options unless given)."""
        cls = DurableTeam if self.team else DurableAgent
        return cls(self.factory, store=store, thread_id=thread_id, **options)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("tool_agent", tool_agent, team=False),
        Scenario("round_robin_tools", round_robin_tools, team=True),
        Scenario("parallel_tools", parallel_agent, team=False),
        Scenario("selector", selector, team=True),
        Scenario("swarm", swarm, team=True),
    ]
}


def journal_options(journal: bool, policies: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The durable object's journal options; none before the journal is wired in."""
    if not JOURNAL_WIRED:
        if journal or policies:
            raise RuntimeError("DurableTeam/DurableAgent do not take journal= yet")
        return {}
    options: dict[str, Any] = {"journal": journal}
    if policies:
        options["tool_policies"] = dict(policies)
    return options


async def finish(scenario: Scenario, durable: DurableTeam | DurableAgent) -> TaskResult:
    """Run (or resume) the scenario to its end; the last run's result."""
    if scenario.team:
        return await durable.run(task=TASK)
    status = await durable.status()
    done = 0
    if status is not None and status.run is not None:
        done = status.run.index + (1 if status.run.done else 0)
    result: TaskResult | None = None
    for task in AGENT_TASKS[done:]:
        result = await durable.run(task=task)
    if result is None:  # every run was done already: the last one's result
        result = await durable.run(task=AGENT_TASKS[-1])
    return result
