"""SIGKILL a worker inside every model call and every tool run; count what the resume repays.

For each scenario of journal_scenarios.py and each persistent store: an uninterrupted run
pays N model calls and T tool runs. Then, for every k, a child forked from the zygote
(kill_zygote.py: imports done once, no threads) dies by SIGKILL inside model call k, or
inside the body of tool run k, and a fresh worker here (default options, so it takes the
dead child's lease over at once) resumes the thread to its end. The calls are counted inside
the model double and the tool bodies, so a call counts when it really ran.

- Journal off (today's behaviour): the resumed run ends exactly like the uninterrupted
  one, and the kills do repay completed calls (what the journal is for; it also proves
  the counting can see a repaid call).
- Journal on: nothing completed is paid again. A tool killed mid-run follows its policy:
  ``"rerun"`` runs it exactly once more, the default raises ``ToolOutcomeUnknownError``
  (then ``resolve_tool_call`` or a ``"rerun"`` worker finishes the thread), a reconcile
  function settles it without running it.

Memory stores do not outlive a process: the in-process tests cover them. To keep the run
short (about a minute), k is sampled: model kills at every k on SQLite, tool kills at every
k on SQLite for ``rerun`` and ``resolve`` and every second k for the other two policies
(which take the same journal paths), every fourth k on PostgreSQL and Redis (the first and
last for those two); the journal-off test runs on SQLite only, at every fourth k.
benchmarks/bench_journal_kills.py kills at every k on every store.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import journal_scenarios as js
import pytest
from journal_scenarios import Kind
from kill_support import (
    TOOL_POLICIES,
    Case,
    Policy,
    Reference,
    Zygote,
    kill_and_resume,
    reference,
)

from agent_persist import open_store
from agent_persist.errors import AgentPersistError
from agent_persist.stores import BaseStore
from conftest import StoreSpec

pytestmark = pytest.mark.sweep

WIRED = pytest.mark.skipif(
    not js.JOURNAL_WIRED, reason="DurableTeam/DurableAgent do not take journal= yet"
)
TOOL_SCENARIOS = ["parallel_tools", "round_robin_tools", "swarm", "tool_agent"]


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    """One zygote for the module: every kill is a fork of it."""
    with Zygote() as started:
        yield started


def _points(spec: StoreSpec, total: int, *, sqlite: int = 1, network: int = 4) -> list[int]:
    """Every ``sqlite``-th k on SQLite, every ``network``-th on the others, and the last."""
    stride = sqlite if spec[0].startswith("sqlite") else network
    return sorted({*range(1, total + 1, stride), total} - {0})


def _describe(case: Case, ref: Reference) -> str:
    kind, k = case.kill
    return (
        f"kill in {kind} {k}: child completed {case.child.model} model calls and "
        f"{case.child.tool} tool runs, the resume {case.resumed.model} and "
        f"{case.resumed.tool} (uninterrupted: {ref.counts.model} and {ref.counts.tool}); "
        f"killed tool {case.killed_tool}; {len(case.unknown)} ToolOutcomeUnknownError"
    )


async def test_the_zygote_forks_from_one_thread_and_tells_a_kill_from_a_finish(
    zygote: Zygote, tmp_path: Path
) -> None:
    assert zygote.threads == 1
    url = f"sqlite:///{tmp_path / 'finish.db'}"
    request: dict[str, object] = {"scenario": "swarm", "url": url, "options": {}}
    request["counts"] = str(tmp_path / "c")
    finished = zygote.run({**request, "thread_id": "a", "kill": ["model", 1000], "journal": False})
    assert finished["exit"] == 0, "a kill point past the run's calls: the child finishes"
    killed = zygote.run({**request, "thread_id": "b", "kill": ["model", 2], "journal": False})
    assert killed["signal"] == signal.SIGKILL
    async with open_store(url) as store:
        with pytest.raises(RuntimeError, match="not killed"):
            await kill_and_resume(
                zygote, js.SCENARIOS["swarm"], (url, {}), store, "c", tmp_path,
                kill=("tool", 1000), journal=False,
            )  # fmt: skip


@pytest.mark.parametrize("name", sorted(js.SCENARIOS))
async def test_journal_off_resumes_exactly_and_repays_completed_calls(
    zygote: Zygote, tmp_path: Path, name: str
) -> None:
    scenario = js.SCENARIOS[name]
    store_spec: StoreSpec = (f"sqlite:///{tmp_path / 'off.db'}", {})
    async with open_store(store_spec[0]) as store:
        await _journal_off(zygote, store_spec, store, tmp_path, scenario)


async def _journal_off(
    zygote: Zygote, store_spec: StoreSpec, store: BaseStore, tmp_path: Path, scenario: js.Scenario
) -> None:
    ref = await reference(scenario, store, "reference", tmp_path, journal=False)
    assert ref.counts.model >= 10, "a scenario of at least 10 model calls"
    repaid = 0
    plan: list[tuple[Kind, int]] = [("model", ref.counts.model), ("tool", ref.counts.tool)]
    for kind, total in plan:
        for k in _points(store_spec, total, sqlite=4):
            case = await kill_and_resume(
                zygote,
                scenario,
                store_spec,
                store,
                f"{kind}-{k}",
                tmp_path,
                kill=(kind, k),
                journal=False,
            )
            assert case.same_as(ref), f"the resumed run differs: {_describe(case, ref)}"
            if kind == "model":  # it died inside call k: k - 1 complete, in order
                assert case.child.model == k - 1, _describe(case, ref)
            else:  # parallel tool calls may still be running in other threads
                assert case.child.tool <= k - 1, _describe(case, ref)
                assert len(case.child.started_tools) >= k, _describe(case, ref)
            assert case.repaid_model(ref) >= 0, _describe(case, ref)
            assert case.rerun_tools(ref) >= 0, _describe(case, ref)
            repaid += case.repaid_model(ref) + case.rerun_tools(ref)
    assert repaid > 0, "without the journal some kill repays a completed call"


@WIRED
@pytest.mark.parametrize("name", sorted(js.SCENARIOS))
async def test_model_kills_repay_nothing_with_the_journal(
    zygote: Zygote, store_spec: StoreSpec, store: BaseStore, tmp_path: Path, name: str
) -> None:
    scenario = js.SCENARIOS[name]
    ref = await reference(scenario, store, "reference", tmp_path, journal=True)
    plain = await reference(scenario, store, "plain", tmp_path, journal=False)
    assert ref.counts.model == plain.counts.model, "the journal changes no call of a run"
    assert Counter(ref.counts.tools) == Counter(plain.counts.tools)
    assert ref.state == plain.state
    for k in _points(store_spec, ref.counts.model):
        case = await kill_and_resume(
            zygote,
            scenario,
            store_spec,
            store,
            f"model-{k}",
            tmp_path,
            kill=("model", k),
            journal=True,
        )
        assert case.same_as(ref), f"the resumed run differs: {_describe(case, ref)}"
        assert case.repaid_model(ref) == 0, _describe(case, ref)
        assert case.tool_runs() == Counter(ref.counts.tools), _describe(case, ref)
        assert not case.unknown


@WIRED
@pytest.mark.parametrize("name", TOOL_SCENARIOS)
async def test_tool_kills_follow_the_tool_policy(
    zygote: Zygote, store_spec: StoreSpec, store: BaseStore, tmp_path: Path, name: str
) -> None:
    """Every policy in one test (one store setup and reference); every failing case listed."""
    scenario = js.SCENARIOS[name]
    ref = await reference(scenario, store, "reference", tmp_path, journal=True)
    assert ref.counts.tool >= 2, "the scenario runs tools"
    failures: list[str] = []
    for policy in TOOL_POLICIES:
        sparse = policy in ("raise_rerun", "reconcile")  # the same paths as resolve and rerun
        points = _points(store_spec, ref.counts.tool, sqlite=2, network=99) if sparse else None
        for k in points or _points(store_spec, ref.counts.tool):
            try:
                case = await kill_and_resume(
                    zygote,
                    scenario,
                    store_spec,
                    store,
                    f"{policy}-tool-{k}",
                    tmp_path,
                    kill=("tool", k),
                    journal=True,
                    policy=policy,
                )
                _check_tool_kill(case, ref, name, policy)
            except (AssertionError, AgentPersistError) as failure:
                failures.append(f"{policy}, kill in tool {k}: {type(failure).__name__}: {failure}")
    assert not failures, "\n".join(failures)


def _check_tool_kill(case: Case, ref: Reference, name: str, policy: Policy) -> None:
    about = _describe(case, ref)
    killed = case.killed_tool
    assert killed is not None
    assert case.same_as(ref), f"the resumed run differs: {about}"
    assert case.repaid_model(ref) == 0, about
    if policy in ("resolve", "raise_rerun"):
        assert case.unknown, f"the default policy raises ToolOutcomeUnknownError: {about}"
        named = {f"{e.tool} {_label(e.arguments)}" for e in case.unknown}
        assert killed in named, f"{named} do not name the killed call: {about}"
    else:
        assert not case.unknown, about
    expected = Counter(ref.counts.tools)
    if policy in ("resolve", "reconcile"):
        expected[killed] -= 1  # settled without running again
    runs = case.tool_runs()
    extra, missing = runs - expected, expected - runs
    if name == "parallel_tools":
        # The other calls of the killed one's batch may have been running too: unknown to
        # the journal, so the policy applies to them as well (run again, or settled
        # without completing), at most the batch's other calls.
        assert all(label in case.child.tools for label in extra), f"{about}; {extra}"
        assert all(label not in case.child.tools for label in missing), f"{about}; {missing}"
        assert (extra + missing).total() <= js.PARALLEL_TOOLS - 1, f"{about}; {runs}"
    else:
        assert not missing, f"{about}; never completed: {missing}"
        assert not extra, f"{about}; ran again: {extra}"


def _label(arguments: object) -> str:
    """The arguments as the tool bodies write them in the counts file."""
    import json

    value = json.loads(arguments) if isinstance(arguments, str) else arguments
    return json.dumps(value, sort_keys=True)
