"""What a crash costs in repaid model calls and re-run tools, with the call journal off and on.

For each scenario of tests/autogen/journal_scenarios.py (a reflecting tool agent, a round
robin with tools, parallel tool calls, a selector group chat, a swarm) and each store, it
runs the scenario once uninterrupted (N model calls, T tool runs), then for every k kills a
forked worker with SIGKILL inside model call k (and, separately, inside tool run k),
resumes the thread in this process with a fresh worker and counts, inside the model double
and the tool bodies, the calls completed by both workers beyond the uninterrupted run's:
what the crash made us pay twice. It also checks that the resumed run ends exactly like the
uninterrupted one.

    uv run python benchmarks/bench_journal_kills.py [--stores sqlite,postgres,redis]
                                                    [--scenarios selector,tool_agent]

Columns: repaid model calls and repaid tool runs are completions beyond the uninterrupted
run's; the tool a kill interrupted never completed, so running it again is not a repaid run
but the "killed tool re-run" column. Tool kills with the journal on use
``tool_policies={...: "rerun"}``; ``off`` is ``journal=False``, the behaviour before the
journal (when DurableTeam does not take ``journal=`` yet, only the off rows are printed).
PostgreSQL and Redis come from AGENT_PERSIST_POSTGRES_URL / AGENT_PERSIST_REDIS_URL; an
unreachable one is left out.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "autogen"))

import journal_scenarios as js
from _harness import POSTGRES_URL, REDIS_URL
from kill_support import Case, Policy, Reference, Zygote, kill_and_resume, reference

from agent_persist import open_store
from agent_persist.stores.base import BaseStore


@dataclass
class Row:
    """One scenario on one store with the journal off or on."""

    kills: int = 0
    repaid_model: int = 0
    repaid_tools: int = 0
    killed_tool_reruns: int = 0
    wrong: int = 0
    failed: int = 0


def _spec(name: str, folder: str) -> tuple[str, dict[str, Any]]:
    run = uuid.uuid4().hex[:12]
    return {
        "sqlite": (f"sqlite:///{folder}/kills-{run}.db", {}),
        "postgres": (POSTGRES_URL, {"schema": f"ap_bench_{run}"}),
        "redis": (REDIS_URL, {"prefix": f"apbench:{run}"}),
    }[name]


async def _drop(name: str, store: BaseStore) -> None:
    for thread in await store.list_threads():
        await store.delete_thread(thread.thread_id)
    if name == "postgres":
        from sqlalchemy import text

        engine: Any = store.engine  # type: ignore[attr-defined]
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE'))  # type: ignore[attr-defined]


def _tally(row: Row, case: Case, ref: Reference) -> None:
    row.kills += 1
    row.repaid_model += case.repaid_model(ref)
    killed = case.killed_tool
    runs, expected = case.tool_runs(), Counter(ref.counts.tools)
    if killed is not None:  # it never completed in the child: one completion is its re-run
        row.killed_tool_reruns += runs[killed] - expected[killed] + 1
    row.repaid_tools += (runs - expected).total()
    row.wrong += not case.same_as(ref)


async def _measure(
    zygote: Zygote,
    scenario: js.Scenario,
    spec: tuple[str, dict[str, Any]],
    store: BaseStore,
    folder: Path,
    *,
    journal: bool,
) -> tuple[Row, Row, Reference]:
    tag = f"{scenario.name}-{'on' if journal else 'off'}"
    ref = await reference(scenario, store, f"{tag}-ref", folder, journal=journal)
    policy: Policy = "rerun" if journal else "default"
    rows = (Row(), Row())
    plan = ((rows[0], "model", ref.counts.model), (rows[1], "tool", ref.counts.tool))
    for row, kind, total in plan:
        for k in range(1, total + 1):
            try:
                case = await kill_and_resume(
                    zygote,
                    scenario,
                    spec,
                    store,
                    f"{tag}-{kind}-{k}",
                    folder,
                    kill=(kind, k),  # type: ignore[arg-type]
                    journal=journal,
                    policy=policy,
                )
            except Exception as exc:  # a finding, not a reason to stop measuring
                print(f"  {tag} kill in {kind} {k}: {type(exc).__name__}: {exc}", flush=True)
                row.failed += 1
                continue
            _tally(row, case, ref)
    return rows[0], rows[1], ref


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgres,redis")
    parser.add_argument("--scenarios", default=",".join(js.SCENARIOS))
    args = parser.parse_args()
    modes = [False, True] if js.JOURNAL_WIRED else [False]
    print(
        "| scenario | store | journal | N model / T tools | model kills: repaid model, "
        "repaid tools | tool kills: repaid model, repaid tools, killed tool re-run | "
        "wrong results | failed | seconds |"
    )
    print("| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder, Zygote() as zygote:
        for store_name in args.stores.split(","):
            spec = _spec(store_name, folder)
            store = open_store(spec[0], **spec[1])
            try:
                await store.setup()
            except Exception as exc:
                print(f"{store_name}: unavailable ({type(exc).__name__}: {exc}); left out")
                await store.close()
                continue
            try:
                for name in args.scenarios.split(","):
                    for journal in modes:
                        started = time.perf_counter()
                        model, tool, ref = await _measure(
                            zygote, js.SCENARIOS[name], spec, store, Path(folder), journal=journal
                        )
                        print(
                            f"| {name} | {store_name} | {'on' if journal else 'off'} | "
                            f"{ref.counts.model} / {ref.counts.tool} | "
                            f"{model.kills} kills: {model.repaid_model}, {model.repaid_tools} | "
                            f"{tool.kills} kills: {tool.repaid_model}, {tool.repaid_tools}, "
                            f"{tool.killed_tool_reruns} | {model.wrong + tool.wrong} | "
                            f"{model.failed + tool.failed} | "
                            f"{time.perf_counter() - started:.1f} |",
                            flush=True,
                        )
            finally:
                await _drop(store_name, store)
                await store.close()


if __name__ == "__main__":
    asyncio.run(main())
