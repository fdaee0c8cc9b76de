"""A 2-agent AutoGen team run to 1,000 turns: what a durable checkpoint costs per turn.

For each store it runs a RoundRobinGroupChat of two AssistantAgents (deterministic model
double) to 1,000 turns as a DurableTeam with the call journal on (the default), and in the
same run, after every turn, does the naive pattern too: ``json.dump(await
team.save_state())`` to a file. It prints, at turns 10, 100 and 1,000, over the 10 turns up
to it in each of ``--repeat`` runs (30 samples by default: a database commit's fsync makes
single samples noisy), the median of:

- bytes *written* per checkpoint: the checkpoint plus the turn's journal appends (an agent
  makes one model call per turn: one journal entry);
- bytes *retained* per checkpoint: what stays stored once the checkpoint emptied the journal
  (the checkpoint alone). After every checkpoint the benchmark checks that the journal is
  empty (``log_length``) and that the backend keeps none of its items (memory: the log's
  items; SQLite and PostgreSQL: item rows; Redis: the log's hashes and lists);
- the same team's bytes per checkpoint with ``journal=False`` (a pass of its own on the
  memory store: bytes do not depend on the store), and retained / journal-off;
- milliseconds of one checkpoint (capture + store write, which also clears the journal);

next to the naive pattern's, and the totals after 1,000 turns. On PostgreSQL it also times one
bare commit (a one-row insert) in every turn cycle, before the checkpoint on even turns and
after it on odd ones, so the two are measured in the same conditions, and once more in a tight
loop of 200 commits after the run (warmer caches: a smaller reference); the checkpoint is
compared with both over the last 100 turns.
Targets: ours at turn 1,000 within 1.5x of turn 10; total at least 20x below the naive one;
retained within 1.1x of the journal-off bytes.

    uv run python benchmarks/bench_autogen_team.py [--stores memory,sqlite,postgres,redis]
                                                   [--turns 1000] [--repeat 3]

The naive pattern is measured in a pass of its own first (the same team, the same turns),
so its 450 KB dumps do not slow the allocator under our timings. Bytes are the canonical
JSON of the payload plus the log items appended (what the store encodes), and of each
journal entry appended, not the backend's own overhead. PostgreSQL and Redis come from
AGENT_PERSIST_POSTGRES_URL / AGENT_PERSIST_REDIS_URL; an unreachable one is left out.
"""

# pyright: reportPrivateUsage=false

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import ChatAgent, Team
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat

import autogen_persist.team as team_module
from agent_persist import DriftPolicy, Registry, canonical_json, default_registry, open_store
from agent_persist._journal import Journal
from agent_persist.journal import JOURNAL_LOG
from agent_persist.stores.base import BaseStore
from autogen_persist import DurableTeam
from autogen_persist._plugin import KIND_TEAM, ensure_registered
from autogen_persist.testing import HashChatCompletionClient

MARKS = (10, 100, 1000)
RESUME_SAMPLES = 15
COMMIT_SAMPLES = 200
POSTGRES_URL = os.environ.get(
    "AGENT_PERSIST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AGENT_PERSIST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Samples:
    ours_ms: list[float] = field(default_factory=list[float])
    ours_bytes: list[int] = field(default_factory=list[int])
    naive_ms: list[float] = field(default_factory=list[float])
    naive_bytes: list[int] = field(default_factory=list[int])
    journal_bytes: list[int] = field(default_factory=list[int])
    """Bytes of the journal entries appended since the previous checkpoint, per checkpoint."""
    journal_appends: list[int] = field(default_factory=list[int])
    off_bytes: list[int] = field(default_factory=list[int])
    """Bytes per checkpoint of the same team with ``journal=False``."""
    left_items: int = 0
    """The most journal items ``log_length`` reported after a checkpoint."""
    left_stored: int = 0
    """The most journal items the backend's own structures held after a checkpoint."""
    pending_bytes: int = 0
    pending_appends: int = 0
    written: tuple[Any, dict[str, list[Any]]] = (None, {})
    """The last checkpoint's payload and appends, counted once it is timed."""
    commit_ms: list[float] = field(default_factory=list[float])
    """PostgreSQL: one bare commit timed in each turn cycle, next to the checkpoint."""


def build_team(turns: int, system: str = "You are {}.") -> RoundRobinGroupChat:
    agents: list[ChatAgent | Team] = [
        AssistantAgent(
            n, model_client=HashChatCompletionClient(name=n), system_message=system.format(n)
        )
        for n in ("writer", "critic")
    ]
    return RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(turns + 1))


ACTIVE: dict[str, Any] = {}
"""The samples, naive file and store (name, folder) being measured."""


async def stored_journal_items(store: BaseStore, thread_id: str) -> int:
    """The journal items the backend's own structures hold, live or stamped removed.

    As the store tests count them (tests/stores/backends.py ``journal_turns``).
    """
    name, folder = ACTIVE["store"]
    backend: Any = cast("Any", store)
    if name == "memory":
        log = backend._threads[thread_id].logs.get(JOURNAL_LOG)
        return 0 if log is None else len(log.items)
    rows = (
        "SELECT count(*) FROM {s}agent_persist_log_items i "
        "JOIN {s}agent_persist_logs l ON i.log_pk = l.pk "
        "JOIN {s}agent_persist_threads t ON l.thread_pk = t.pk "
        "WHERE l.name = {log} AND t.thread_id = {thread}"
    )
    if name == "sqlite":
        with sqlite3.connect(os.path.join(folder, "bench.db")) as raw:
            query = rows.format(s="", log="?", thread="?")
            return int(raw.execute(query, (JOURNAL_LOG, thread_id)).fetchone()[0])
    if name == "postgres":
        from sqlalchemy import text

        query = rows.format(s=f'"{backend.schema}".', log=":log", thread=":thread")
        engine: Any = backend.engine
        async with engine.connect() as conn:
            found = await conn.execute(text(query), {"log": JOURNAL_LOG, "thread": thread_id})
            return int(found.scalar_one())
    client: Any = backend._client
    log = backend._keys.log(thread_id, JOURNAL_LOG)
    hashes: list[int] = [await client.hlen(log + suffix) for suffix in (":i", ":r")]
    lists: list[int] = [await client.llen(log + suffix) for suffix in (":o", ":q", ":d")]
    return sum(hashes) + sum(lists)


def written_bytes(samples: Samples) -> int:
    """Bytes of the last checkpoint's payload and appended log items, as canonical JSON."""
    payload, appends = samples.written
    return len(canonical_json(payload)) + sum(
        len(canonical_json(item)) for items in appends.values() for item in items
    )


def instrument() -> None:
    """Time every checkpoint, count its bytes and the turn's journal appends, check the
    journal is emptied, and do the naive json.dump after each turn."""
    checkpoint = team_module._LiveTeam.checkpoint
    write = team_module.write_checkpoint  # pyright: ignore[reportPrivateImportUsage]
    append = Journal._append

    async def counting_append(self: Journal, entry: dict[str, Any]) -> None:
        samples: Samples = ACTIVE["samples"]
        samples.pending_bytes += len(canonical_json(entry))
        samples.pending_appends += 1
        await append(self, entry)

    async def counting_write(*args: Any, **kwargs: Any) -> Any:
        if not ACTIVE["naive"]:  # counted after the timing, not in it
            ACTIVE["samples"].written = (kwargs["payload"], kwargs["appends"])
        return await write(*args, **kwargs)

    async def timed_checkpoint(self: Any, lease: Any, *, metadata: Any) -> Any:
        samples: Samples = ACTIVE["samples"]
        if ACTIVE["off"]:
            stored = await checkpoint(self, lease, metadata=metadata)
            samples.off_bytes.append(written_bytes(samples))
            return stored
        if not ACTIVE["naive"]:
            # On PostgreSQL a bare commit is timed in every turn cycle too, before the
            # checkpoint on even turns and after it on odd ones, so both are measured in the
            # same conditions (a tight loop of commits alone runs on warmer caches).
            commit_first = len(samples.ours_ms) % 2 == 0
            if ACTIVE["commits"] and commit_first:
                samples.commit_ms.append(await one_commit(self.store))
            started = time.perf_counter()
            stored = await checkpoint(self, lease, metadata=metadata)
            samples.ours_ms.append((time.perf_counter() - started) * 1000)
            if ACTIVE["commits"] and not commit_first:
                samples.commit_ms.append(await one_commit(self.store))
            samples.ours_bytes.append(written_bytes(samples))
            samples.journal_bytes.append(samples.pending_bytes)
            samples.journal_appends.append(samples.pending_appends)
            samples.pending_bytes = samples.pending_appends = 0
            left = await self.store.log_length(self.thread_id, JOURNAL_LOG)
            samples.left_items = max(samples.left_items, left)
            held = await stored_journal_items(self.store, self.thread_id)
            samples.left_stored = max(samples.left_stored, held)
            return stored
        stored = await checkpoint(self, lease, metadata=metadata)
        path: str = ACTIVE["path"]
        started = time.perf_counter()
        with open(path, "w") as file:  # noqa: ASYNC230 - the naive pattern, as users write it
            json.dump(await self.team.save_state(), file)
        samples.naive_ms.append((time.perf_counter() - started) * 1000)
        samples.naive_bytes.append(os.path.getsize(path))  # noqa: ASYNC240
        return stored

    Journal._append = counting_append  # type: ignore[method-assign]
    team_module.write_checkpoint = counting_write  # type: ignore[assignment]
    team_module._LiveTeam.checkpoint = timed_checkpoint  # type: ignore[method-assign]


async def open_bench_store(name: str, folder: str) -> BaseStore | None:
    run = uuid.uuid4().hex[:12]
    urls: dict[str, tuple[str, dict[str, str]]] = {
        "memory": ("memory://", {}),
        "sqlite": (f"sqlite:///{folder}/bench.db", {}),
        "postgres": (POSTGRES_URL, {"schema": f"ap_bench_{run}"}),
        "redis": (REDIS_URL, {"prefix": f"apbench:{run}"}),
    }
    url, options = urls[name]
    store = open_store(url, **options)
    try:
        await store.setup()
    except Exception as exc:
        print(f"{name}: unavailable ({type(exc).__name__}: {exc}); left out")
        await store.close()
        return None
    return store


async def drop(name: str, store: BaseStore) -> None:
    for thread in await store.list_threads():
        await store.delete_thread(thread.thread_id)
    if name == "postgres":
        from sqlalchemy import text

        backend: Any = cast("Any", store)
        async with backend.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{backend.schema}" CASCADE'))
    await store.close()


def window(runs: list[list[float]] | list[list[int]], turn: int, turns: int = 10) -> float:
    """The median over the ``turns`` turns up to ``turn`` of every run."""
    return statistics.median(v for values in runs for v in values[max(0, turn - turns) : turn])


async def run_team(store: BaseStore, turns: int, *, journal: bool = True) -> str:
    thread_id = uuid.uuid4().hex
    team = DurableTeam(lambda: build_team(turns), store=store, thread_id=thread_id, journal=journal)
    await team.run(task="Discuss durable state for agents, one point per turn.")
    return thread_id


def drift_registry() -> Registry:
    """The installed kinds plus a fingerprint-change handler that changes one small field."""
    registry = Registry()
    registry.include(ensure_registered(default_registry()))

    @registry.on_fingerprint_change(KIND_TEAM)
    def mark_last_message(payload: Any, change: Any) -> Any:
        manager = payload["team"]["agent_states"]["RoundRobinGroupChatManager"]
        last = manager["message_thread"][-1]
        last["metadata"] = {**last["metadata"], "reviewed": "after drift"}
        return payload

    return registry


async def resume_ms(
    store: BaseStore, thread_id: str, turns: int, folder: str
) -> tuple[float, float, float]:
    """Median ms to load the thread into a fresh team on the open store, and the naive way.

    Ours: the durable team's load (read, verify the logs, migrate, ``load_state``) into a
    freshly built team. Naive: ``json.load`` of ``save_state()``'s file + ``load_state``
    into a freshly built team. Building the team is outside both timings. One untimed load
    first (it writes the naive file; the store's first read of the logs hashes them whole),
    then the two alternate sample by sample, so a burst of load on the shared machine
    slows both alike.

    Drifted: the same load into a team whose system messages changed, under
    ``DriftPolicy.MIGRATE`` with one fingerprint-change handler that edits one small field
    (:func:`drift_registry`): the path through ``Registry.upgrade`` and its migrations.
    """
    registry = ensure_registered(default_registry())
    drifted = drift_registry()

    async def ours(drift: bool = False) -> tuple[float, Any]:
        team = build_team(turns, "You are {}; be brief.") if drift else build_team(turns)
        started = time.perf_counter()
        live = team_module._LiveTeam(team, store, thread_id, DriftPolicy.MIGRATE)
        await live.load(drifted if drift else registry)
        return (time.perf_counter() - started) * 1000, team

    async def naive() -> float:
        team = build_team(turns)
        started = time.perf_counter()
        with open(path) as file:  # noqa: ASYNC230 - the naive pattern, as users write it
            await team.load_state(json.load(file))
        return (time.perf_counter() - started) * 1000

    _, loaded = await ours()
    path = os.path.join(folder, "resume.json")
    with open(path, "w") as file:  # noqa: ASYNC230 - the naive pattern, as users write it
        json.dump(await loaded.save_state(), file)
    ours_ms: list[float] = []
    naive_ms: list[float] = []
    drift_ms: list[float] = []
    for _ in range(RESUME_SAMPLES):
        ours_ms.append((await ours())[0])
        naive_ms.append(await naive())
        drift_ms.append((await ours(drift=True))[0])
    return statistics.median(ours_ms), statistics.median(naive_ms), statistics.median(drift_ms)


def commit_table(store: BaseStore) -> str:
    backend: Any = cast("Any", store)
    return f'"{backend.schema}".bench_commit'


async def one_commit(store: BaseStore) -> float:
    """Ms of one bare commit (a one-row insert) on the PostgreSQL store's engine."""
    from sqlalchemy import text

    engine: Any = cast("Any", store).engine
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text(f"INSERT INTO {commit_table(store)} VALUES (1)"))  # noqa: S608
    return (time.perf_counter() - started) * 1000


async def tight_commits_ms(store: BaseStore) -> float:
    """Median ms of a bare commit in a tight loop of them (warmer than in a turn cycle)."""
    return statistics.median([await one_commit(store) for _ in range(COMMIT_SAMPLES)])


async def naive(turns: int, folder: str) -> Samples:
    """The naive pattern's bytes and times, after each of the same turns."""
    samples = Samples()
    path = os.path.join(folder, "naive.json")
    ACTIVE.update(samples=samples, naive=True, off=False, commits=False, path=path)
    async with open_store("memory://") as store:
        await run_team(store, turns)
    return samples


async def journal_off(turns: int) -> list[int]:
    """Bytes per checkpoint of the same team and turns with ``journal=False``."""
    samples = Samples()
    ACTIVE.update(samples=samples, naive=False, off=True, commits=False)
    async with open_store("memory://") as store:
        await run_team(store, turns, journal=False)
    return samples.off_bytes


async def bench(
    name: str, turns: int, repeat: int, folder: str, baseline: Samples, extra: list[str]
) -> list[str] | None:
    runs: list[Samples] = []
    resumes: list[tuple[float, float, float]] = []
    tight: list[float] = []
    for _ in range(repeat):
        store = await open_bench_store(name, folder)
        if store is None:
            return None
        samples = Samples(naive_ms=baseline.naive_ms, naive_bytes=baseline.naive_bytes)
        ACTIVE.update(samples=samples, naive=False, off=False, store=(name, folder), commits=False)
        try:
            if name == "postgres":
                from sqlalchemy import text

                async with cast("Any", store).engine.begin() as conn:
                    await conn.execute(text(f"CREATE TABLE {commit_table(store)} (n integer)"))
                ACTIVE.update(commits=True)
            thread_id = await run_team(store, turns)
            ACTIVE.update(naive=True, commits=False, path=os.path.join(folder, "unused.json"))
            resumes.append(await resume_ms(store, thread_id, turns, folder))
            if name == "postgres":
                tight.append(await tight_commits_ms(store))
        finally:
            await drop(name, store)
        runs.append(samples)
    ours_resume = statistics.median(r[0] for r in resumes)
    naive_resume = statistics.median(r[1] for r in resumes)
    extra.append(
        f"| {name} | resume at turn {turns} | {ours_resume:.1f} ms | json.load + load_state "
        f"{naive_resume:.1f} ms | x{ours_resume / naive_resume:.2f} |"
    )
    drift_resume = statistics.median(r[2] for r in resumes)
    extra.append(
        f"| {name} | resume at turn {turns} after a drift (one handler) | {drift_resume:.1f} ms "
        f"| plain resume {ours_resume:.1f} ms | x{drift_resume / ours_resume:.2f} |"
    )
    if tight:  # over the last 100 turns: a checkpoint costs the same at any length
        mark = min(MARKS[-1], turns)
        span = f"turns {max(1, mark - 99)}-{mark}"
        checkpoint = window([r.ours_ms for r in runs], mark, 100)
        commit = window([r.commit_ms for r in runs], mark, 100)
        loop = statistics.median(tight)
        extra.append(
            f"| {name} | checkpoint, {span} | {checkpoint:.2f} ms | one bare commit in the "
            f"same turn cycles {commit:.2f} ms | x{checkpoint / commit:.2f} |"
        )
        extra.append(
            f"| {name} | checkpoint, {span} | {checkpoint:.2f} ms | one bare commit in a "
            f"tight loop {loop:.2f} ms | x{checkpoint / loop:.2f} |"
        )
    appends = [a for r in runs for a in r.journal_appends]
    extra.append(
        f"| {name} | journal after each of {len(runs[0].ours_ms)} checkpoints "
        f"({repeat} run{'s' if repeat > 1 else ''}) | {max(r.left_items for r in runs)} items, "
        f"{max(r.left_stored for r in runs)} stored | {sum(appends):,} appends, "
        f"{min(appends)}-{max(appends)} per turn | - |"
    )
    ms, retained = [r.ours_ms for r in runs], [r.ours_bytes for r in runs]
    written = [
        [kept + journal for kept, journal in zip(r.ours_bytes, r.journal_bytes, strict=True)]
        for r in runs
    ]
    naive_ms, naive_bytes = [baseline.naive_ms], [baseline.naive_bytes]
    off = [baseline.off_bytes]
    rows: list[str] = []
    for mark in (m for m in MARKS if m <= turns):
        kept, without = window(retained, mark), window(off, mark)
        rows.append(
            f"| {name} | {mark} | {window(written, mark):,.0f} | {kept:,.0f} | "
            f"{without:,.0f} | {kept / without:.3f}x | {window(ms, mark):.2f} | "
            f"{window(naive_bytes, mark):,.0f} | {window(naive_ms, mark):.2f} |"
        )
    ours, naive = sum(runs[0].ours_bytes), sum(baseline.naive_bytes)
    total_written, total_off = sum(written[0]), sum(baseline.off_bytes)
    first, last = min(MARKS[0], turns), min(MARKS[-1], turns)
    rows.append(
        f"| {name} | total ({len(runs[0].ours_ms)} checkpoints) | {total_written:,} | "
        f"{ours:,} | {total_off:,} | {ours / total_off:.3f}x | "
        f"x{window(ms, last) / window(ms, first):.2f} time, "
        f"x{window(retained, last) / window(retained, first):.2f} bytes "
        f"(turn {last} vs {first}) | {naive:,} | naive/retained = {naive / ours:.1f}x |"
    )
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stores", default="memory,sqlite,postgres,redis")
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per store, pooled")
    args = parser.parse_args()
    instrument()
    print(
        "| store | turn | ours: bytes written (with journal) | ours: bytes retained | "
        "journal off: bytes | retained / off | ours: median ms | "
        "naive json.dump: bytes | naive: median ms |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    extra: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        baseline = await naive(args.turns, folder)
        baseline.off_bytes = await journal_off(args.turns)
        for name in args.stores.split(","):
            rows = await bench(name, args.turns, args.repeat, folder, baseline, extra)
            for row in rows or []:
                print(row, flush=True)
    print()
    print("| store | what | ours | reference | ours/reference |")
    print("| --- | --- | ---: | ---: | ---: |")
    for row in extra:
        print(row)


if __name__ == "__main__":
    asyncio.run(main())
