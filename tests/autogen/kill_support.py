"""Kill a forked worker inside a model call or tool run, resume here, and count what was repaid.

    with Zygote() as zygote:
        ref = await reference(scenario, store, "ref", tmp, journal=False)
        case = await kill_and_resume(zygote, scenario, spec, store, "t-1", tmp,
                                     kill=("model", 3), journal=False)
        case.repaid_model(ref), case.same_as(ref)

Shared by test_call_journal_kills.py and benchmarks/bench_journal_kills.py.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import journal_scenarios as js
from autogen_agentchat.base import TaskResult
from journal_scenarios import Counts, Kind, Scenario
from support import normalize, same_result

from agent_persist.errors import ToolOutcomeUnknownError
from agent_persist.journal import ToolCall
from agent_persist.stores import CheckpointStore

ZYGOTE = Path(__file__).parent / "kill_zygote.py"

Policy = Literal["default", "rerun", "resolve", "raise_rerun", "reconcile"]
"""How the resuming worker treats a tool a crash left unfinished.

``default``: default options; ``rerun`` / ``reconcile``: that policy for every tool;
``resolve``: default, then ``resolve_tool_call`` with the tool's result for each
``ToolOutcomeUnknownError``; ``raise_rerun``: default, then a new worker with ``"rerun"``.
"""

TOOL_POLICIES: tuple[Policy, ...] = ("rerun", "resolve", "raise_rerun", "reconcile")


class Zygote:
    """The kill_zygote.py process: forks a child per kill and reports how it ended."""

    def __init__(self, *, timeout: float = 120.0) -> None:
        self._timeout = timeout
        self._process = subprocess.Popen(  # noqa: S603 - our own zygote script
            [sys.executable, "-W", "error", str(ZYGOTE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._read()
        self.threads: int = ready["threads"]
        """The zygote's threads when it was ready to fork (1: only the main thread)."""
        if not ready.get("ready"):
            self.close()
            raise RuntimeError(f"the zygote would fork with threads: {ready}")

    def _read(self) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], self._timeout)
        if not readable:
            raise RuntimeError(f"the zygote did not answer within {self._timeout} s")
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote exited (status {self._process.wait()})")
        return json.loads(line)

    def run(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Fork a child for ``request`` (see kill_zygote.py) and wait for it to end."""
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        return self._read()

    def close(self) -> None:
        """Stop the zygote (it ends when its stdin closes)."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> Zygote:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Reference:
    """An uninterrupted run: what it paid, its last result and its final state."""

    counts: Counts
    result: TaskResult
    state: Any


async def reference(
    scenario: Scenario, store: CheckpointStore, thread_id: str, tmp: Path, *, journal: bool
) -> Reference:
    """Run the scenario to its end here, uninterrupted, counting."""
    path = tmp / f"{thread_id}.counts"
    path.unlink(missing_ok=True)
    js.configure(path)
    try:
        durable = scenario.durable(store, thread_id, **js.journal_options(journal))
        result = await js.finish(scenario, durable)
        state = normalize(await durable.state())
    finally:
        js.configure(None)
    return Reference(Counts.read(path), result, state)


def _arguments(arguments: Any) -> dict[str, Any]:
    return json.loads(arguments) if isinstance(arguments, str) else dict(arguments)


def tool_result(name: str, arguments: Any) -> Any:
    """What the tool returns for these arguments, without running it."""
    return js.TOOL_RESULTS[name](**_arguments(arguments))


def reconcile(call: ToolCall) -> Any:
    """A reconcile function: the result, worked out without running the tool."""
    return tool_result(call.name, call.arguments)


def _policies(policy: Policy) -> dict[str, Any] | None:
    if policy == "rerun":
        return dict.fromkeys(js.TOOL_RESULTS, "rerun")
    if policy == "reconcile":
        return dict.fromkeys(js.TOOL_RESULTS, reconcile)
    return None


@dataclass
class Case:
    """One kill: what the killed child and the resuming worker completed, and the outcome."""

    kill: tuple[Kind, int]
    child: Counts
    resumed: Counts
    result: TaskResult
    state: Any
    unknown: list[ToolOutcomeUnknownError] = field(default_factory=list[ToolOutcomeUnknownError])
    """The errors the resume raised before it finished (one per unfinished tool call)."""

    @property
    def total(self) -> Counts:
        """Completed across both workers."""
        return self.child + self.resumed

    @property
    def killed_tool(self) -> str | None:
        """The tool run the child died in (``name arguments``), for a tool kill."""
        kind, k = self.kill
        return self.child.started_tools[k - 1] if kind == "tool" else None

    def repaid_model(self, ref: Reference) -> int:
        """Model calls completed beyond an uninterrupted run's."""
        return self.total.model - ref.counts.model

    def rerun_tools(self, ref: Reference) -> int:
        """Tool runs completed beyond an uninterrupted run's."""
        return self.total.tool - ref.counts.tool

    def tool_runs(self) -> Counter[str]:
        """Completed tool runs by call, across both workers."""
        return Counter(self.total.tools)

    def same_as(self, ref: Reference) -> bool:
        """The same last result and final state as the uninterrupted run."""
        return same_result(self.result, ref.result) and self.state == ref.state


async def kill_and_resume(
    zygote: Zygote,
    scenario: Scenario,
    spec: tuple[str, dict[str, Any]],
    store: CheckpointStore,
    thread_id: str,
    tmp: Path,
    *,
    kill: tuple[Kind, int],
    journal: bool,
    policy: Policy = "default",
) -> Case:
    """Kill a forked worker inside call ``kill``, then resume the thread here to its end.

    Raises:
        ToolOutcomeUnknownError: The resume raised it and ``policy`` does not settle it.
        RuntimeError: The child was not killed (it finished or failed).
    """
    url, options = spec
    child_path, resumed_path = tmp / f"{thread_id}.child", tmp / f"{thread_id}.resumed"
    child_path.unlink(missing_ok=True)
    resumed_path.unlink(missing_ok=True)
    answer = zygote.run(
        {
            "scenario": scenario.name,
            "url": url,
            "options": options,
            "thread_id": thread_id,
            "counts": str(child_path),
            "kill": list(kill),
            "journal": journal,
        }
    )
    if answer.get("signal") != 9:
        raise RuntimeError(f"the child was not killed inside {kill}: {answer}")
    js.configure(resumed_path)
    try:
        result, durable, unknown = await _resume(scenario, store, thread_id, journal, policy)
        state = normalize(await durable.state())
    finally:
        js.configure(None)
    return Case(kill, Counts.read(child_path), Counts.read(resumed_path), result, state, unknown)


async def _resume(
    scenario: Scenario, store: CheckpointStore, thread_id: str, journal: bool, policy: Policy
) -> tuple[TaskResult, Any, list[ToolOutcomeUnknownError]]:
    durable: Any = scenario.durable(
        store, thread_id, **js.journal_options(journal, _policies(policy))
    )
    unknown: list[ToolOutcomeUnknownError] = []
    reruns: dict[str, Any] = {}
    for _ in range(8):
        try:
            return await js.finish(scenario, durable), durable, unknown
        except ToolOutcomeUnknownError as error:
            unknown.append(error)
            if policy == "resolve":
                value = tool_result(error.tool, error.arguments)
                await durable.resolve_tool_call(error.idempotency_key, result=value)
            elif policy == "raise_rerun":  # a new worker, told to rerun the tools named so far
                reruns[error.tool] = "rerun"
                durable = scenario.durable(store, thread_id, **js.journal_options(journal, reruns))
            else:
                raise
    raise RuntimeError(f"the resume kept raising: {unknown}")
