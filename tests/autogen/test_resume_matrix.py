"""Kill a worker after every turn k and resume in a fresh one: the run must equal an unbroken one.

For each team type of the issue (and a single agent with tools across runs), on SQLite,
PostgreSQL and Redis: worker A runs the task and dies right after checkpoint k (an
in-process abort that drops every object); worker B builds everything anew from the factory
and the store and finishes. B's final ``TaskResult``, every agent's model context and the
manager state (``state()``), and the termination state must equal those of a run that was
never interrupted. The model's replies hash the whole prompt, so any lost or duplicated
message changes every later reply. A real SIGKILL of a subprocess is in test_sigkill.py.
"""

from __future__ import annotations

import pytest
from scenarios import AGENT_TASKS, TASK, TEAMS, tool_agent
from support import Abort, abort_after, normalize, same_result

from agent_persist import Status
from agent_persist.stores import BaseStore
from autogen_persist import DurableAgent, DurableTeam

pytestmark = pytest.mark.sweep


async def _termination_state(store: BaseStore, thread_id: str) -> object:
    """The saved termination state, without the timeout's elapsed seconds (wall time)."""
    state = (await store.get(thread_id)).payload["termination"]
    return normalize(state, volatile=frozenset({"elapsed_seconds"}))


UNORDERED = {"graph_fan_out"}
"""Teams whose agents run in parallel: their messages arrive in the order their model calls
finish. With the call journal on, each call ends with a store write, so that order follows
the store's latency (as it follows a real model's): two uninterrupted runs differ. They are
compared with the journal off, where the hash double answers at once; the journal's own
tests cover parallel calls."""


@pytest.mark.parametrize("name", sorted(TEAMS))
async def test_team_resumes_exactly_after_a_kill_at_every_turn(store: BaseStore, name: str) -> None:
    options = {"journal": False} if name in UNORDERED else {}
    factory = TEAMS[name]
    checkpoints: list[object] = []
    reference = DurableTeam(
        factory, store=store, thread_id="reference", on_checkpoint=checkpoints.append, **options
    )
    expected = await reference.run(task=TASK)
    expected_state = normalize(await reference.state())
    expected_termination = await _termination_state(store, "reference")
    assert len(checkpoints) >= 10, "a run of at least 10 turns"

    for k in range(1, len(checkpoints) + 1):
        thread = f"killed-after-{k}"
        worker_a = DurableTeam(
            factory, store=store, thread_id=thread, on_checkpoint=abort_after(k), **options
        )
        with pytest.raises(Abort):
            await worker_a.run(task=TASK)
        del worker_a
        before = len(await store.list_checkpoints(thread))

        worker_b = DurableTeam(factory, store=store, thread_id=thread, **options)
        result = await worker_b.run(task=TASK)

        assert same_result(result, expected), f"transcript differs after a kill at turn {k}"
        assert normalize(await worker_b.state()) == expected_state, f"state differs (k={k})"
        assert await _termination_state(store, thread) == expected_termination
        status = await worker_b.status()
        assert status is not None
        assert status.status is Status.DONE
        assert status.stop_reason == expected.stop_reason
        written = len(await store.list_checkpoints(thread)) - before
        assert written == len(checkpoints) - k, "exactly the remaining turns were run"


async def _run_agent_tasks(agent: DurableAgent) -> list[object]:
    status = await agent.status()
    done = 0 if status is None or status.run is None else status.run.index + 1
    return [await agent.run(task=task) for task in AGENT_TASKS[done:]]


async def test_agent_with_tools_resumes_exactly_after_a_kill_at_every_run(
    store: BaseStore,
) -> None:
    reference = DurableAgent(tool_agent, store=store, thread_id="reference")
    expected = await _run_agent_tasks(reference)
    expected_state = normalize(await reference.state())
    assert len(expected) >= 10
    assert any(
        type(m).__name__ == "ToolCallExecutionEvent" for r in expected for m in r.messages
    ), "the runs call tools"

    for k in range(1, len(expected) + 1):
        thread = f"killed-after-{k}"
        worker_a = DurableAgent(
            tool_agent, store=store, thread_id=thread, on_checkpoint=abort_after(k)
        )
        with pytest.raises(Abort):
            await _run_agent_tasks(worker_a)

        worker_b = DurableAgent(tool_agent, store=store, thread_id=thread)
        replayed = await worker_b.run(task=AGENT_TASKS[k - 1])  # the run that finished last
        assert same_result(replayed, expected[k - 1])
        results = await _run_agent_tasks(worker_b)
        assert len(results) == len(expected) - k
        for got, want in zip(results, expected[k:], strict=True):
            assert same_result(got, want), f"run differs after a kill at run {k}"
        assert normalize(await worker_b.state()) == expected_state
