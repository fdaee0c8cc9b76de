"""PostgreSQL ``put``: one call of the server-side function against the statements one by one.

An AutoGen-shaped checkpoint (the thread's lease held, the journal cleared, one transcript
item and one journal entry appended) is written alternately by two stores on the same
schema: one as the store does it (the function, in autocommit: one round trip), one with
the function turned off (the multi-statement transaction every release before made: 11
round trips). Alternating sample by sample, both see the same machine load; the table gives
the median and p90 ms of each, and of one bare commit (``BEGIN``, a one-row insert,
``COMMIT``: 3 round trips) measured in between. The round trips are counted on the wire by
``tests/faults/test_postgres_round_trips.py``.

    uv run python benchmarks/bench_put_round_trips.py [--samples 400]
"""

# pyright: reportPrivateUsage=false

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from _harness import POSTGRES_URL, drop_schema, fresh_name

from agent_persist.envelope import Envelope
from agent_persist.stores.sql import SQLStore
from agent_persist.testing.conformance import envelope


class Writer:
    """One store writing its own thread of checkpoints, under a lease."""

    def __init__(self, store: SQLStore, thread: str) -> None:
        self.store, self.thread = store, thread
        self.head: Envelope | None = None
        self.turn = 0
        self.lease: Any = None

    async def start(self) -> None:
        self.lease = await self.store.acquire_lease(self.thread, "bench", ttl=timedelta(hours=1))
        await self.put()

    async def put(self) -> float:
        self.turn += 1
        started = time.perf_counter()
        self.head = await self.store.put(
            envelope(self.thread, parent=self.head, payload={"turn": self.turn}),
            appends={"transcript": [{"turn": self.turn}], "journal": [{"call": self.turn}]},
            lease=self.lease,
            clear_logs=["journal"],
        )
        return (time.perf_counter() - started) * 1000


async def bare_commit(engine: Any, table: str, n: int) -> float:
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"INSERT INTO {table} VALUES (:n)"), {"n": n})  # noqa: S608
    return (time.perf_counter() - started) * 1000


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


async def main(samples: int) -> None:
    schema = fresh_name("bench_trips", "postgresql")
    fast = SQLStore(POSTGRES_URL, schema=schema, pool_size=1)
    slow = SQLStore(POSTGRES_URL, schema=schema, pool_size=1)
    slow._scope.sql.put_call = None  # the multi-statement transaction, as before
    try:
        await fast.setup()
        engine: Any = fast.engine
        table = f'"{schema}".bench_commit'
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"CREATE TABLE {table} (n integer)"))
        writers = {"function, autocommit (1 round trip)": Writer(fast, "fast")}
        writers["statements, one transaction (11 round trips)"] = Writer(slow, "slow")
        for writer in writers.values():
            await writer.start()
        times: dict[str, list[float]] = {name: [] for name in writers}
        commits: list[float] = []
        for n in range(samples):
            for name, writer in writers.items():
                times[name].append(await writer.put())
            commits.append(await bare_commit(engine, table, n))
    finally:
        await fast.close()
        await slow.close()
        await drop_schema(schema)
    print(f"PostgreSQL put, {samples} samples each, alternating (AutoGen-shaped checkpoint)\n")
    print("| put | median ms | p90 ms | median / bare commit |")
    print("| --- | ---: | ---: | ---: |")
    commit = statistics.median(commits)
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {_p90(values):.2f} | x{median / commit:.2f} |")
    bare = f"{commit:.2f} | {_p90(commits):.2f}"
    print(f"| one bare commit (BEGIN, INSERT, COMMIT) | {bare} | x1.00 |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    asyncio.run(main(parser.parse_args().samples))
