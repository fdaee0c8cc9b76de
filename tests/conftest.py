"""Shared fixtures: the real PostgreSQL and Redis servers, or a skip (a failure under CI)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get(
    "AGENT_PERSIST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AGENT_PERSIST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _require_server(name: str, url: str) -> str:
    """Return ``url`` if its server accepts TCP connections; else skip, or fail under CI."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    try:
        with socket.create_connection((host, port or 0), timeout=2):
            return url
    except OSError as exc:
        reason = f"{name} at {host}:{port} is unreachable ({exc}); set the URL or start it"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}. CI requires every service test to run.", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server's URL (``AGENT_PERSIST_POSTGRES_URL``)."""
    return _require_server("PostgreSQL", POSTGRES_URL)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server's URL (``AGENT_PERSIST_REDIS_URL``)."""
    return _require_server("Redis", REDIS_URL)
