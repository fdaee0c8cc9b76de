"""Any event loop, any thread: the SDK's run_sync and threaded scenarios on every store.

The SDK's own ``SQLAlchemySession`` and ``RedisSession`` fail these on PostgreSQL and Redis
(a loop-bound pool used from another loop; asyncpg even crashed the interpreter), and so did
our stores before they held one pool per loop (SQLite hung on an ``asyncio.Lock`` bound to
the first loop). Here each scenario of :mod:`loop_scenarios` runs in this process, in a
thread joined with a timeout, checking that no connection is left to the garbage collector;
and all of them once more in a subprocess, from its main thread, so that a crash fails a
test instead of killing pytest.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from loop_scenarios import SCENARIOS, run_threads
from oa_support import Backend

SCRIPT = Path(__file__).with_name("loop_scenarios.py")
PROBE_TIMEOUT = 600


@contextmanager
def nothing_left_to_the_collector() -> Iterator[None]:
    """Fail if an unclosed connection (or anything else) is found by the garbage collector."""
    found: list[str] = []
    previous = sys.unraisablehook

    def record(unraisable: Any) -> None:
        found.append(f"{unraisable.exc_type.__name__}: {unraisable.exc_value}")

    sys.unraisablehook = record
    try:
        yield
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert not found, found


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario(backend: Backend, scenario: str) -> None:
    """In a thread of its own, joined with a timeout: a hang fails the test."""
    run: Callable[[Callable[[], Any]], None] = SCENARIOS[scenario]
    with nothing_left_to_the_collector():
        run_threads(lambda: run(backend.open))


def test_every_scenario_in_a_process_of_its_own(backend: Backend) -> None:
    """A segmentation fault (as asyncpg gave the SDK's session) fails here, not pytest."""
    done = subprocess.run(  # noqa: S603 - our own script and arguments
        [sys.executable, str(SCRIPT), *backend.cli_args],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
    assert done.stdout.strip() == "ok"
