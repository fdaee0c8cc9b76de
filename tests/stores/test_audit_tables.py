"""The audit projection: ``append_audit`` on every store, and the SQL stores' audit tables.

The tables are read with plain SQL around the store (``sqlite3``, asyncpg), as a BI tool
would, and the README's example queries are run on them.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from backends import BACKENDS, Backend, open_backend

from agent_persist.errors import ConflictError, InvalidPayloadError, LeaseLostError, StoreError
from agent_persist.stores.sql import AuditBackfill, SQLStore
from agent_persist.stores.sql import _audit as sql_audit
from agent_persist.stores.sql._schema import DDL_STEPS, SCHEMA_VERSION, build_tables

ROOT = Path(__file__).resolve().parents[2]
NASTY = ["t'%_\"; DROP TABLE x; --", "%", "_", "t\\%", "ünï ☃ 'quoted'"]
"""Thread ids full of quotes and wildcards: bound parameters, never SQL."""

DAY = 1_795_953_600.0  # 2026-11-29T12:00:00Z: noon, so the day is the same in any time zone


def events(at: float = DAY) -> list[dict[str, Any]]:
    return [
        {"event": "session", "user": "ann", "at": at},
        {"event": "message", "role": "user", "content": "1+2?", "at": at},
        {"event": "llm", "model": "m", "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.5,
         "at": at + 1},
        {"event": "tool_call", "call_id": "c1", "name": "add", "input": '{"a":1}',
         "output": "3", "duration_ms": 12.5, "at": at + 2},
        {"event": "message", "role": "assistant", "content": "3", "model": "m",
         "input_tokens": 20, "output_tokens": 7, "cost_usd": 1.25, "at": at + 3},
    ]  # fmt: skip


Query = Callable[[str], Awaitable[list[tuple[Any, ...]]]]


async def forget_rows(store: SQLStore) -> None:
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


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async for opened in open_backend(request.param, request, tmp_path):
        yield opened


SQL_BACKENDS = [b for b in BACKENDS if getattr(b, "values", (b,))[0] in ("sqlite", "postgres")]


@pytest.fixture(params=SQL_BACKENDS)
async def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async for opened in open_backend(request.param, request, tmp_path):
        yield opened


@pytest.fixture
def query(sql_backend: Backend, request: pytest.FixtureRequest, tmp_path: Path) -> Query:
    """Run SQL on the SQL backend's database as an outside tool would."""
    if sql_backend.name == "sqlite":

        async def on_sqlite(sql: str) -> list[tuple[Any, ...]]:
            connection = sqlite3.connect(tmp_path / "store.db")
            try:
                return [tuple(row) for row in connection.execute(sql)]
            finally:
                connection.close()

        return on_sqlite
    if sql_backend.name == "postgres":
        from sqlalchemy.ext.asyncio import create_async_engine

        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("postgres_schema")

        async def on_postgres(sql: str) -> list[tuple[Any, ...]]:
            engine = create_async_engine(sa.make_url(url).set(drivername="postgresql+asyncpg"))
            try:
                async with engine.begin() as conn:
                    await conn.execute(sa.text(f'SET LOCAL search_path TO "{schema}"'))
                    return [tuple(row) for row in (await conn.execute(sa.text(sql))).all()]
            finally:
                await engine.dispose()

        return on_postgres
    raise AssertionError(sql_backend.name)


async def test_every_store_keeps_the_events_as_log_items(backend: Backend) -> None:
    store = backend.store
    for thread_id in NASTY:
        await store.append_audit(thread_id, events())
    await store.append_audit("plain", [{"event": "message", "role": "user", "content": None}])
    for thread_id in NASTY:
        assert await store.read_log(thread_id, "audit") == events()
    [stamped] = await store.read_log("plain", "audit")
    assert isinstance(stamped, dict)
    assert isinstance(stamped["at"], float)


BAD_EVENTS: list[tuple[Any, type[Exception], str]] = [
    ("not a list", TypeError, "events must be a sequence"),
    ([1], TypeError, r"events\[5\] must be a dict"),
    ([{"event": "nope"}], ValueError, r"'event' must be one of"),
    ([{"role": "user"}], ValueError, r"'event' must be one of"),
    ([{"event": "tool_call"}], ValueError, "needs a 'name'"),
    ([{"event": "tool_call", "name": ""}], ValueError, "'name' must be a str"),
    ([{"event": "tool_call", "name": "x" * 257}], ValueError, "'name' must be a str"),
    ([{"event": "message", "role": 3}], ValueError, "'role' must be a str"),
    ([{"event": "llm", "input_tokens": -1}], ValueError, "'input_tokens' must be an int"),
    ([{"event": "llm", "input_tokens": True}], ValueError, "'input_tokens' must be an int"),
    ([{"event": "llm", "output_tokens": 2**63}], ValueError, "'output_tokens' must be an int"),
    ([{"event": "llm", "cost_usd": float("nan")}], ValueError, "'cost_usd' must be a finite"),
    ([{"event": "tool_call", "name": "t", "duration_ms": "1"}], ValueError, "'duration_ms'"),
    ([{"event": "session", "at": -1}], ValueError, "'at' must be a finite"),
    ([{"event": "session", "user": "u", "x": object()}], InvalidPayloadError, "not plain JSON"),
]


@pytest.mark.parametrize(("bad", "error", "match"), BAD_EVENTS)
async def test_bad_events_are_refused_alike_and_write_nothing(
    backend: Backend, bad: Any, error: type[Exception], match: str
) -> None:
    store = backend.store
    await store.append_audit("t'%", events())
    before = await backend.raw_state()
    given: Any = [*events(), *cast("list[Any]", bad)] if isinstance(bad, list) else bad
    with pytest.raises(error, match=match):
        await store.append_audit("t'%", given)
    assert await backend.raw_state() == before


async def test_the_report_rows_are_in_the_tables_in_clear_columns(
    sql_backend: Backend, query: Query
) -> None:
    store = sql_backend.store
    for thread_id in NASTY:
        await store.append_audit(thread_id, events())
    await store.append_audit(
        "nul", [{"event": "tool_call", "name": "n\x00", "input": {"a": [1]}, "output": "o\x00"}]
    )
    messages = await query(
        "SELECT thread_id, seq, role, model, content, input_tokens, output_tokens, cost_usd, "
        "created_at FROM agent_persist_audit_messages ORDER BY thread_id, seq"
    )
    expected = [
        (t, 2, "user", None, "1+2?", 0, 0, 0.0, DAY) for t in NASTY
    ]  # one row per message or model call, the model call as an assistant row without text
    assert sorted(row for row in messages if row[1] == 2) == sorted(expected)
    assert sorted({(row[0], row[1:]) for row in messages if row[0] == NASTY[0]}) == [
        (NASTY[0], (2, "user", None, "1+2?", 0, 0, 0.0, DAY)),
        (NASTY[0], (3, "assistant", "m", None, 10, 5, 0.5, DAY + 1)),
        (NASTY[0], (5, "assistant", "m", "3", 20, 7, 1.25, DAY + 3)),
    ]
    calls = await query(
        "SELECT thread_id, call_id, name, input, output, duration_ms, created_at "
        "FROM agent_persist_audit_tool_calls ORDER BY thread_id"
    )
    [stamped] = [row[6] for row in calls if row[0] == "nul"]
    assert sorted(calls) == sorted(
        [(t, "c1", "add", '{"a":1}', "3", 12.5, DAY + 2) for t in NASTY]
        + [("nul", None, "n\ufffd", '{"a": [1]}', "o\ufffd", None, stamped)]
    )
    sessions = await query(
        "SELECT thread_id, user_id, first_at, last_at FROM agent_persist_audit_sessions "
        "WHERE user_id IS NOT NULL ORDER BY thread_id"
    )
    assert sorted(sessions) == sorted((t, "ann", DAY, DAY + 3) for t in NASTY)
    await store.append_audit(NASTY[0], [{"event": "message", "role": "user", "at": DAY - 5}])
    await store.append_audit(NASTY[0], [{"event": "session", "user": "bob", "at": DAY + 9}])
    widened = await query(
        "SELECT user_id, first_at, last_at FROM agent_persist_audit_sessions "
        f"WHERE thread_id = '{NASTY[0].replace(chr(39), chr(39) * 2)}'"
    )
    assert widened == [("bob", DAY - 5, DAY + 9)]


async def test_a_refused_write_leaves_no_item_and_no_row(
    sql_backend: Backend, query: Query, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sql_backend.store
    await store.append_audit("t", events())
    lease = await store.acquire_lease("t", "worker", ttl=timedelta(seconds=30))
    other = await sql_backend.make()
    await other.release_lease(lease)
    await other.acquire_lease("t", "thief", ttl=timedelta(seconds=30))
    with_lease = await sql_backend.raw_state()
    with pytest.raises(LeaseLostError):
        await store.append_audit("t", events(), lease=lease)
    assert await sql_backend.raw_state() == with_lease

    def broken(*args: Any, **kwargs: Any) -> AuditBackfill:
        raise RuntimeError("the projection failed after the log append")

    monkeypatch.setattr(sql_audit, "_project", broken)
    with pytest.raises(StoreError, match="projection failed"):
        await store.append_audit("t", events())
    with pytest.raises(StoreError, match="projection failed"):
        await store.append_audit("new thread", events())
    assert await sql_backend.raw_state() == with_lease
    assert len(await store.read_log("t", "audit")) == len(events())
    assert await query("SELECT count(*) FROM agent_persist_audit_messages") == [(3,)]


async def test_backfill_fills_the_tables_once_and_skips_what_is_not_an_event(
    sql_backend: Backend, query: Query
) -> None:
    store = sql_backend.store
    assert isinstance(store, SQLStore)
    for thread_id in NASTY:
        await store.append(thread_id, "audit", events())  # a plain append is projected too
    await store.append(NASTY[0], "audit", ["a string", {"event": "tool_call"}])  # not events
    await store.append("no audit", "transcript", [1])
    assert await query("SELECT count(*) FROM agent_persist_audit_messages") == [(15,)]
    await forget_rows(store)  # as a release without the tables left them
    before = await sql_backend.raw_state()
    seen: list[tuple[int, int]] = []
    dry = await store.backfill_audit(dry_run=True, progress=lambda d, t: seen.append((d, t)))
    assert dry == AuditBackfill(threads=5, sessions=5, messages=15, tool_calls=5, skipped=2)
    assert seen == [(0, 5), *((n, 5) for n in range(1, 6))]
    assert await sql_backend.raw_state() == before
    assert await store.backfill_audit() == dry
    again = await store.backfill_audit()
    assert again == AuditBackfill(threads=5, skipped=2)
    assert await store.backfill_audit(NASTY[1]) == AuditBackfill(threads=1)
    assert await store.backfill_audit("nobody") == AuditBackfill()
    assert await query("SELECT count(*) FROM agent_persist_audit_messages") == [(15,)]
    assert await query("SELECT count(*), sum(duration_ms) FROM agent_persist_audit_tool_calls") == [
        (5, 62.5)
    ]
    # the rows are those a live append_audit writes
    await store.append_audit("live", events())
    columns = "role, model, content, input_tokens, output_tokens, cost_usd, created_at, seq"
    rows = f"SELECT {columns} FROM agent_persist_audit_messages WHERE thread_id = "
    assert await query(rows + "'live' ORDER BY seq") == await query(rows + "'%' ORDER BY seq")
    with pytest.raises(ValueError, match="thread_id"):
        await store.backfill_audit("x" * 100_000)


async def test_deleting_or_expiring_a_thread_deletes_its_rows(
    sql_backend: Backend, query: Query
) -> None:
    store = sql_backend.store
    await store.append_audit("gone", events())
    await store.append_audit("kept", events())
    await store.pop("kept", "audit")
    await store.clear_log("kept", "audit")  # the rows record what happened: they stay
    assert await store.delete_thread("gone")
    for table in ("messages", "tool_calls", "sessions"):
        assert await query(f"SELECT DISTINCT thread_id FROM agent_persist_audit_{table}") == [
            ("kept",)
        ]
    short = await sql_backend.make(ttl=timedelta(seconds=1))
    await store.append_audit("old", [{"event": "session", "user": "u"}])
    await asyncio.sleep(1.1)  # both threads are now older than the TTL
    assert await short.purge_expired() == 2
    assert await query("SELECT count(*) FROM agent_persist_audit_sessions") == [(0,)]
    assert await query("SELECT count(*) FROM agent_persist_audit_messages") == [(0,)]


def _readme_sql(dialect: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- audit-sql: ([a-z ]+) -->\n```sql\n(.*?)```", text, re.S)
    return [sql for dialects, sql in blocks if dialect in dialects.split()]


async def test_the_readme_queries_run(sql_backend: Backend, query: Query) -> None:
    store = await sql_backend.make(namespace="audit")
    await store.append_audit("s1", events())
    await store.append_audit("s2", events(DAY + 86_400))
    await store.append_audit("s2", [{"event": "tool_call", "name": "slow", "duration_ms": 900}])
    sqls = _readme_sql("postgresql" if sql_backend.name == "postgres" else "sqlite")
    assert len(sqls) == 3
    per_day, slowest, per_user = [await query(sql) for sql in sqls]
    assert [(str(day), cost, i, o) for day, cost, i, o in per_day] == [
        ("2026-11-29", 1.75, 30, 12),
        ("2026-11-30", 1.75, 30, 12),
    ]
    assert [row[:2] for row in slowest] == [("slow", 1), ("add", 2)]
    assert slowest[1][2:] == (12.5, 12.5)
    assert per_user == [("ann", 2, 3.5)]


async def test_a_version_1_database_is_upgraded_with_the_audit_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        DDL_STEPS[0].apply(conn, None)
        conn.execute(
            sa.text("CREATE TABLE agent_persist_schema_version (version INTEGER PRIMARY KEY, "
                    "summary TEXT NOT NULL, applied_at FLOAT NOT NULL)")
        )  # fmt: skip
        conn.execute(sa.text("INSERT INTO agent_persist_schema_version VALUES (1, 'v1', 0)"))
    engine.dispose()
    async with SQLStore(url) as store:
        await store.append("s", "audit", events())
        assert await store.backfill_audit() == AuditBackfill(threads=1)  # already projected
    connection = sqlite3.connect(tmp_path / "old.db")
    versions = connection.execute("SELECT version FROM agent_persist_schema_version").fetchall()
    connection.close()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


async def test_a_put_fork_or_import_of_the_audit_log_is_projected(
    sql_backend: Backend, query: Query
) -> None:
    from agent_persist.testing.conformance import envelope

    store = sql_backend.store
    head = await store.put(envelope("src"), appends={"audit": events(), "other": [1]})
    await store.fork("src", "copy")
    with pytest.raises(ConflictError):  # a conflicting put (same id, other content) is refused
        await store.put(head.model_copy(update={"step": 99}), appends={"audit": events(DAY + 99)})
    rows = await query(
        "SELECT thread_id, count(*), sum(cost_usd) FROM agent_persist_audit_messages "
        "GROUP BY thread_id ORDER BY thread_id"
    )
    assert rows == [("copy", 3, 1.75), ("src", 3, 1.75)]
    assert await query("SELECT count(*) FROM agent_persist_audit_sessions") == [(2,)]
