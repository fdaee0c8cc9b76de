"""Stores for the AutoGen tests: each test gets its own SQLite file, schema or key prefix."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # scenarios.py, shared with the worker script

from agent_persist import open_store
from agent_persist.stores import BaseStore

StoreSpec = tuple[str, dict[str, Any]]
"""A store URL and the options that isolate it."""


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=[pytest.mark.postgres]),
        pytest.param("redis", id="redis", marks=[pytest.mark.redis]),
    ]
)
async def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreSpec]:
    """A persistent store (URL and isolating options), cleaned up afterwards."""
    kind = request.param
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'autogen.db'}", {}
    elif kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        yield url, {"schema": request.getfixturevalue("postgres_schema")}
    else:
        url = request.getfixturevalue("redis_url")
        yield url, {"prefix": request.getfixturevalue("redis_prefix")}


@pytest.fixture
async def store(store_spec: StoreSpec) -> AsyncIterator[BaseStore]:
    """The persistent store of ``store_spec``, open."""
    url, options = store_spec
    async with open_store(url, **options) as opened:
        yield opened


@pytest.fixture
async def memory_store() -> AsyncIterator[BaseStore]:
    """A fresh in-process store."""
    async with open_store("memory://") as opened:
        yield opened
