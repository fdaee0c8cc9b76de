"""What the OpenTelemetry hooks cost per store call: absent, disabled, idle, configured.

Prints the median microseconds of one ``put`` (a chain of small checkpoints built
beforehand, each with one appended log item) and one ``get`` of the head, on the memory
store (where the overhead shows most) and on a SQLite file, in four modes:

* ``absent``: ``opentelemetry`` cannot be imported (an import blocker, in a process of its
  own): the shipped no-op.
* ``disabled``: installed, ``telemetry.configure(enabled=False)``: the same no-op path.
* ``idle``: installed, no SDK set up (the API's no-op global providers); what an AutoGen
  user gets by default, since autogen-core depends on ``opentelemetry-api``.
* ``sdk``: an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` to an exporter that
  drops spans, and a ``MeterProvider`` with an in-memory reader.

The three installed modes alternate in one process, in an order that rotates every round,
so machine noise (and the garbage the ``sdk`` rounds leave) falls on all of them alike;
``absent`` runs the same rounds in its own process.

    uv run python benchmarks/bench_telemetry.py [--ops 1000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

INSTALLED = ("disabled", "idle", "sdk")
STORES = ("memory", "sqlite")


class _Refuse:
    """An import blocker: ``opentelemetry`` looks not installed."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(name, name=name)


def _modes() -> dict[str, Callable[[], None]]:
    """How to switch to each installed mode, in this process."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult as Result

    from agent_persist import telemetry

    class Drop(SpanExporter):
        def export(self, spans: Any) -> Result:
            return Result.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return {
        "disabled": lambda: telemetry.configure(enabled=False),
        "idle": lambda: telemetry.configure(),
        "sdk": lambda: telemetry.configure(
            tracer_provider=tracer_provider, meter_provider=meter_provider
        ),
    }


async def _round(url: str, thread: str, ops: int) -> tuple[float, float]:
    """Microseconds per put and per get of one round."""
    from agent_persist import Envelope, Producer, open_store

    chain = [
        Envelope.create(
            kind="bench",
            schema_version=1,
            thread_id=thread,
            payload={"turn": 0},
            producer=Producer(package="bench"),
        )
    ]
    for turn in range(1, ops):
        chain.append(chain[-1].next(payload={"turn": turn}))
    async with open_store(url) as store:
        started = time.perf_counter()
        for envelope in chain:
            await store.put(envelope, appends={"transcript": [envelope.step]})
        put_us = (time.perf_counter() - started) / ops * 1e6
        started = time.perf_counter()
        for _ in range(ops):
            await store.get(thread)
        get_us = (time.perf_counter() - started) / ops * 1e6
    return put_us, get_us


def _run(modes: dict[str, Callable[[], None]], ops: int, rounds: int, folder: str) -> Any:
    """Per mode, store and call: the median over rounds (round 0 warms up, uncounted)."""
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {
        mode: {store: [] for store in STORES} for mode in modes
    }
    names = list(modes)
    for round_ in range(rounds + 1):
        for index in range(len(names)):  # the order rotates: no mode always follows another
            mode = names[(index + round_) % len(names)]
            modes[mode]()
            for store in STORES:
                url = "memory://" if store == "memory" else f"sqlite:///{folder}/{mode}.db"
                count = ops if store == "memory" else max(ops // 4, 1)
                result = asyncio.run(_round(url, f"{mode}-{round_}", count))
                if round_:
                    samples[mode][store].append(result)
    return {
        mode: {
            store: {
                "put": statistics.median(p for p, _ in results),
                "get": statistics.median(g for _, g in results),
            }
            for store, results in by_store.items()
        }
        for mode, by_store in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--absent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.absent:
        sys.meta_path.insert(0, _Refuse())
        results = _run({"absent": lambda: None}, args.ops, args.rounds, args.folder)
        imported = any(name.split(".")[0] == "opentelemetry" for name in sys.modules)
        print(json.dumps({"results": results, "imported": imported}))
        return
    with tempfile.TemporaryDirectory() as folder:
        argv = [sys.executable, __file__, "--absent", "--folder", folder]
        argv += ["--ops", str(args.ops), "--rounds", str(args.rounds)]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)  # noqa: S603
        absent = json.loads(done.stdout.strip().splitlines()[-1])
        rows = {
            "absent": absent["results"]["absent"],
            **_run(_modes(), args.ops, args.rounds, folder),
        }
    base = rows["absent"]
    print(
        f"median us per call over {args.rounds} rounds of {args.ops} calls (SQLite: "
        f"{max(args.ops // 4, 1)}); in brackets, the difference with absent "
        f"(opentelemetry imported when absent: {absent['imported']})"
    )
    header = [f"{store} {op}" for store in STORES for op in ("put", "get")]
    print(f"{'mode':<9}" + "".join(f"{h:>18}" for h in header))
    for mode, row in rows.items():
        cells = [
            f"{row[store][op]:7.1f} ({row[store][op] - base[store][op]:+6.1f})"
            for store in STORES
            for op in ("put", "get")
        ]
        print(f"{mode:<9}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
