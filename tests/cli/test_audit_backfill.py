"""``agent-persist audit backfill``: the SQL audit tables filled from existing audit logs."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from cli_support import Backend, arun, invoke

from agent_persist.stores import open_store
from agent_persist.stores.base import BaseStore
from agent_persist.stores.sql import SQLStore
from agent_persist.stores.sql._schema import build_tables

THREADS = ["s'1%", "s_2", 'q"3']

EVENTS: list[dict[str, Any]] = [
    {"event": "message", "role": "user", "content": "hi", "at": 1.0},
    {"event": "tool_call", "name": "add", "input": "{}", "output": "3", "duration_ms": 2.0},
    {"event": "message", "role": "assistant", "content": "3", "input_tokens": 9, "at": 3.0},
]


async def _forget_rows(store: SQLStore) -> None:
    """Empty the audit tables, as a database whose items predate them would be."""
    tables = build_tables(store.schema)
    doomed = [tables.audit_messages, tables.audit_tool_calls, tables.audit_sessions]
    engine = store.engine
    if isinstance(engine, sa.Engine):
        with engine.begin() as conn:
            for table in doomed:
                conn.execute(table.delete())
        return
    async with engine.begin() as conn:
        for table in doomed:
            await conn.execute(table.delete())


def _seed(backend: Backend, *, junk: bool = False) -> None:
    async def work(store: BaseStore) -> None:
        for thread_id in THREADS:
            await store.append(thread_id, "audit", EVENTS)
        if junk:
            await store.append(THREADS[0], "audit", ["not an event"])
        if isinstance(store, SQLStore):  # as a release without the tables left them
            await _forget_rows(store)

    arun(backend.with_store(work))


def _counts(result_output: str) -> dict[str, Any]:
    found = json.loads(result_output)
    return {key: found[key] for key in ("threads", "sessions", "messages", "tool_calls", "skipped")}


def test_backfill_counts_fills_then_adds_nothing(backend: Backend) -> None:
    if backend.name == "redis":
        _seed(backend)
        refused = backend.invoke("audit", "backfill")
        assert refused.exit_code == 2
        assert "a redis store has no audit tables" in refused.stderr
        assert "Traceback" not in refused.output + refused.stderr
        return
    _seed(backend)
    dry = backend.invoke("audit", "backfill", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout == (
        "dry run: would add 6 messages, 3 tool calls and 3 sessions in 3 threads "
        "(nothing written)\n"
    )
    done = backend.invoke("audit", "backfill", "--json")
    assert done.exit_code == 0, done.stderr
    assert _counts(done.stdout) == {
        "threads": 3,
        "sessions": 3,
        "messages": 6,
        "tool_calls": 3,
        "skipped": 0,
    }
    again = backend.invoke("audit", "backfill")
    assert again.stdout == "added 0 messages, 0 tool calls and 0 sessions in 3 threads\n"
    one = backend.invoke("audit", "backfill", "--thread", THREADS[0], "--json")
    assert json.loads(one.stdout)["thread"] == THREADS[0]
    assert _counts(one.stdout)["threads"] == 1


def test_backfill_reports_skipped_items_and_missing_threads(sqlite: Backend) -> None:
    backend = sqlite
    _seed(backend, junk=True)
    result = backend.invoke("audit", "backfill", "--thread", THREADS[0])
    assert result.exit_code == 1
    assert result.stdout == (
        "added 2 messages, 1 tool call and 1 session in 1 thread; skipped 1 item\n"
    )
    assert "1 audit item could not be read as audit events" in result.stderr
    missing = backend.invoke("audit", "backfill", "--thread", "nobody's %")
    assert missing.exit_code == 1
    assert "no audit log in thread nobody's %" in missing.stderr
    too_long = backend.invoke("audit", "backfill", "--thread", "x" * 5000)
    assert too_long.exit_code == 2
    assert too_long.stderr.startswith("agent-persist: --thread: thread_id")
    for result in (missing, too_long):
        assert "Traceback" not in result.output + result.stderr


def test_backfill_refuses_a_memory_store() -> None:
    result = invoke("audit", "backfill", "--url", "memory://")
    assert result.exit_code == 2
    assert result.stderr == (
        "agent-persist: audit backfill: a memory store has no audit tables (only the SQL "
        "stores do); its audit report is read through the API, nothing to backfill\n"
    )


@pytest.mark.needs_extras  # agent-persist[crypto], imported lazily
def test_backfill_of_an_encrypted_store_needs_keys_env_and_seals_content(sqlite: Backend) -> None:
    from agent_persist.crypto import Encryption, KeyRing

    key = os.urandom(32)
    url = sqlite.args[1]

    async def seed() -> None:
        encryption = Encryption(KeyRing({"k": key}, primary="k"))
        async with open_store(url, encryption=encryption) as store:
            assert isinstance(store, SQLStore)
            await store.append_audit("s", EVENTS)
            await _forget_rows(store)

    arun(seed())
    blind = sqlite.invoke("audit", "backfill", "--json")
    assert blind.exit_code == 1
    assert _counts(blind.stdout)["skipped"] == 3
    env: dict[str, str | None] = {"AGENT_PERSIST_KEY_k": base64.b64encode(key).decode()}
    done = sqlite.invoke("audit", "backfill", "--json", "--keys-env", "AGENT_PERSIST_", env=env)
    assert done.exit_code == 0, done.output
    assert _counts(done.stdout) == {
        "threads": 1,
        "sessions": 0,
        "messages": 2,
        "tool_calls": 1,
        "skipped": 0,
    }
    path = url.removeprefix("sqlite:///")
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT role, content FROM agent_persist_audit_messages ORDER BY seq"
        ).fetchall()
    finally:
        connection.close()
    assert [role for role, _ in rows] == ["user", "assistant"]
    assert all(content.startswith("aes256gcm:") for _, content in rows)
