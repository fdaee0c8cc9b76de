"""Fixtures for the openai-agents adapter: one isolated backend per test, on every store.

``backend`` is parametrised over memory, SQLite, PostgreSQL and Redis. Each test gets its own
space (a SQLite file, a PostgreSQL schema ``ap_test_<hex>``, a Redis prefix
``aptest:<hex>``, a named memory space) that is dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agents import set_tracing_disabled
from oa_support import BACKENDS, DURABLE, Backend, make_backend

set_tracing_disabled(True)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Every store, isolated for this test."""
    yield from make_backend(request.param, request, tmp_path)


@pytest.fixture(params=DURABLE)
def durable_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The stores that outlive a process (for the restart tests)."""
    yield from make_backend(request.param, request, tmp_path)
