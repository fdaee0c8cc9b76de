"""Helpers shared by the adapter's tests: isolated backends on every store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent_persist import BaseStore, open_store

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.needs_extras]),
    pytest.param("redis", marks=[pytest.mark.redis, pytest.mark.needs_extras]),
]
DURABLE = BACKENDS[1:]


@dataclass
class Backend:
    """Where one test's data lives: ``open()`` gives a new store on it (the test closes it)."""

    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict[str, Any])

    def open(self, **options: Any) -> BaseStore:
        return open_store(self.url, **{**self.options, **options})

    @property
    def cli_args(self) -> list[str]:
        """The URL and options as arguments for a subprocess (``--url`` ``--option k=v``)."""
        args = ["--url", self.url]
        for key, value in self.options.items():
            args += ["--option", f"{key}={value}"]
        return args


def make_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Build the isolated backend ``name`` and drop it afterwards."""
    hex_id = uuid.uuid4().hex
    if name == "memory":
        yield Backend(name, f"memory://oa-test-{hex_id}")
    elif name == "sqlite":
        yield Backend(name, f"sqlite:///{tmp_path / 'agents.db'}")
    elif name == "postgres":
        url = request.getfixturevalue("postgres_url")
        yield Backend(name, url, {"schema": request.getfixturevalue("postgres_schema")})
    else:
        url = request.getfixturevalue("redis_url")
        yield Backend(name, url, {"prefix": request.getfixturevalue("redis_prefix")})
