"""The SQL store on PostgreSQL: the conformance suite, plus what only this backend has.

Every test gets its own schema (``ap_test_<hex>``), dropped with CASCADE afterwards. Tests
that need the server take the ``postgres_url`` fixture, which skips (or fails under CI) when
it is down; the dependency and URL tests need no server.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from backends import JOURNAL, journal_turns
from test_sqlite import differential, kilobyte_ids  # shared with the SQLite tests

from agent_persist.errors import (
    CodecError,
    CorruptCheckpointError,
    MissingDependencyError,
    StoreSchemaError,
    StoreUnavailableError,
)
from agent_persist.stores.base import BaseStore
from agent_persist.stores.sql import SQLStore
from agent_persist.stores.sql._schema import DDL_STEPS, build_tables
from agent_persist.testing import StoreConformance, StoreFactory, Tamper
from agent_persist.testing.conformance import envelope


async def raw_sql(url: str, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Run one statement on a connection of its own, outside any store."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(sa.make_url(url).set(drivername="postgresql+asyncpg"))
    try:
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(sql), params or {})
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.fixture
async def pg_schema(postgres_url: str) -> AsyncIterator[str]:
    """A fresh schema name for one test; the schema is dropped with everything in it."""
    name = f"ap_test_{uuid.uuid4().hex}"
    yield name
    await raw_sql(postgres_url, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.mark.postgres
@pytest.mark.needs_extras
class TestPostgresStore(StoreConformance):
    @pytest.fixture
    async def store_factory(self, postgres_url: str, pg_schema: str) -> AsyncIterator[StoreFactory]:
        stores: list[SQLStore] = []

        async def make(**options: Any) -> BaseStore:
            store = SQLStore(postgres_url, schema=pg_schema, **options)
            stores.append(store)
            await store.setup()
            return store

        yield make
        for store in stores:
            await store.close()

    @pytest.fixture
    def tamper(self, postgres_url: str, pg_schema: str) -> Tamper:
        async def overwrite(
            store: BaseStore,
            thread_id: str,
            checkpoint_id: str,
            *,
            header: str | None = None,
            payload: bytes | None = None,
        ) -> None:
            for column, value in (("header", header), ("payload", payload)):
                if value is not None:
                    await raw_sql(
                        postgres_url,
                        f'UPDATE "{pg_schema}".agent_persist_checkpoints SET {column} = :v '
                        "WHERE checkpoint_id = :c AND thread_pk = (SELECT pk FROM "
                        f'"{pg_schema}".agent_persist_threads '
                        "WHERE namespace = :n AND thread_id = :t)",
                        {"v": value, "c": checkpoint_id, "n": store.namespace, "t": thread_id},
                    )

        return overwrite


# -- needs the server ------------------------------------------------------------------------


@pytest.mark.parametrize("url_form", ["postgresql", "postgres", "postgresql+asyncpg"])
@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_concurrent_setup_creates_the_schema_once(
    postgres_url: str, pg_schema: str, url_form: str
) -> None:
    url = sa.make_url(postgres_url).set(drivername=url_form).render_as_string(hide_password=False)
    stores = [SQLStore(url, schema=pg_schema) for _ in range(6)]
    try:
        await asyncio.gather(*(store.setup() for store in stores))
        await stores[0].put(envelope("t"))
        assert [t.thread_id for t in await stores[-1].list_threads()] == ["t"]
    finally:
        for store in stores:
            await store.close()
    rows = await raw_sql(
        postgres_url, f'SELECT version, summary FROM "{pg_schema}".agent_persist_schema_version'
    )
    assert [tuple(row) for row in rows] == [(step.version, step.summary) for step in DDL_STEPS]
    tables = await raw_sql(
        postgres_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = :s",
        {"s": pg_schema},
    )
    expected = {table.name for table in build_tables(pg_schema).metadata.sorted_tables}
    assert {row[0] for row in tables} == expected | {"agent_persist_schema_version"}


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_schema_from_the_future_is_refused(postgres_url: str, pg_schema: str) -> None:
    async with SQLStore(postgres_url, schema=pg_schema) as store:
        await store.put(envelope("t"))
    await raw_sql(
        postgres_url,
        f"INSERT INTO \"{pg_schema}\".agent_persist_schema_version VALUES (999, 'newer', 0)",
    )
    store = SQLStore(postgres_url, schema=pg_schema)
    try:
        with pytest.raises(StoreSchemaError, match="999"):
            await store.setup()
    finally:
        await store.close()


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_rows_damaged_by_raw_sql_raise_typed_errors(
    postgres_url: str, pg_schema: str
) -> None:
    async with SQLStore(postgres_url, schema=pg_schema) as store:
        first = await store.put(envelope("t"), appends={"log": ["a", "b"]})
        items = f'"{pg_schema}".agent_persist_log_items'
        await raw_sql(postgres_url, f"UPDATE {items} SET data = :d WHERE seq = 2", {"d": b"xyz"})
        with pytest.raises(CodecError, match=r"thread 't': log 'log' item 2"):
            await store.read_log("t", "log")
        with pytest.raises(CodecError):
            await store.pop("t", "log")  # the damaged item stays where it was
        assert await store.log_length("t", "log") == 2
        checkpoints = f'"{pg_schema}".agent_persist_checkpoints'
        await raw_sql(postgres_url, f"UPDATE {checkpoints} SET logs = 'nonsense'")
        with pytest.raises(CorruptCheckpointError, match=first.checkpoint_id):
            await store.get("t")


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_kilobyte_ids_fit_the_index_limit(postgres_url: str, pg_schema: str) -> None:
    """3 KB of UTF-8 per id would break a 2.7 KB btree entry; the tables index digests."""
    async with SQLStore(postgres_url, schema=pg_schema, namespace="n" * 1024) as store:
        await kilobyte_ids(store)


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_metadata_filters_keep_json_types_apart(postgres_url: str, pg_schema: str) -> None:
    async with SQLStore(postgres_url, schema=pg_schema) as store:
        for name, value in [("int", 1), ("float", 1.5), ("bool", True), ("str", "1")]:
            await store.put(envelope(name, metadata={"v": value, "list": [1, 2]}))
        found = {
            repr(value): sorted(
                t.thread_id for t in await store.list_threads(metadata={"v": value})
            )
            for value in (1, 1.0, True, "1", 1.5, None)
        }
        assert found == {
            "1": ["int"],
            "1.0": ["int"],
            "True": ["bool"],
            "'1'": ["str"],
            "1.5": ["float"],
            "None": [],
        }
        assert await store.list_threads(metadata={"list": 1}) == []


@pytest.mark.postgres
@pytest.mark.needs_extras
@pytest.mark.parametrize("seed", range(3))
async def test_matches_the_memory_store(postgres_url: str, pg_schema: str, seed: int) -> None:
    async def make(**options: Any) -> BaseStore:
        return SQLStore(postgres_url, schema=pg_schema, **options)

    await differential(make, seed, steps=150)


# -- needs no server -------------------------------------------------------------------------


@pytest.mark.needs_extras
async def test_unreachable_server_names_the_url_without_the_password() -> None:
    store = SQLStore("postgresql://agent:hunter2@127.0.0.1:1/db", connect_timeout=2)
    try:
        with pytest.raises(StoreUnavailableError) as raised:
            await store.get("t")
    finally:
        await store.close()
    message = str(raised.value)
    assert "postgresql+asyncpg://agent:***@127.0.0.1:1/db" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("module", ["asyncpg", "greenlet"])
async def test_postgres_without_the_extra_says_how_to_install_it(
    module: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import asyncpg -> ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "agent-persist\[postgres\]"'):
        SQLStore("postgresql://user@localhost/db")
    with pytest.raises(ImportError, match=module):  # also an ImportError, naming the module
        SQLStore.from_url("postgres://user@localhost/db")
    async with SQLStore(f"sqlite:///{tmp_path / 'x.db'}") as store:  # SQLite needs no extra
        await store.put(envelope("t"))


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_a_put_is_one_statement(postgres_url: str, pg_schema: str) -> None:
    """Several logs' new items (one log new, one appended to, one empty) go in one round trip."""
    async with SQLStore(postgres_url, schema=pg_schema) as store:
        first = await store.put(envelope("t"), appends={"a": [1, 2], "b": ["x"]})
        engine: Any = store.engine
        statements: list[str] = []
        through_sqlalchemy: list[str] = []

        def record(query: Any) -> None:
            statements.append(query.query)

        def watch(connection: Any, *_: Any) -> None:  # every connection the pool hands out
            connection.driver_connection.add_query_logger(record)

        def record_sqlalchemy(*args: Any) -> None:
            through_sqlalchemy.append(str(args[2]))

        sa.event.listen(engine.sync_engine.pool, "checkout", watch)
        sa.event.listen(engine.sync_engine, "before_cursor_execute", record_sqlalchemy)
        try:
            second = await store.put(
                envelope("t", parent=first),
                appends={"a": [3, {"four": 4}], "b": [], "c": ["new", "log", "here"]},
            )
        finally:
            sa.event.remove(engine.sync_engine.pool, "checkout", watch)
            sa.event.remove(engine.sync_engine, "before_cursor_execute", record_sqlalchemy)
        await asyncio.sleep(0)  # asyncpg calls query loggers soon after, not at once
        assert len(statements) == 1, statements  # the put function's call (see _server_put)
        assert "agent_persist_put_2(" in statements[0]
        assert through_sqlalchemy == []  # sent on the driver, in autocommit
        assert await store.read_log("t", "a", at=second) == [1, 2, 3, {"four": 4}]
        assert await store.read_log("t", "b", at=second) == ["x"]
        assert await store.read_log("t", "c", at=second) == ["new", "log", "here"]
        assert await store.read_log("t", "a", at=first) == [1, 2]
        assert await store.read_log("t", "c", at=first) == []
        assert second.logs == {"a": 4, "b": 1, "c": 3}


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_read_logs_reads_every_log_in_one_statement(
    postgres_url: str, pg_schema: str
) -> None:
    """A checkpoint's logs, sliced, popped and appended to since, come back in one round trip."""
    async with SQLStore(postgres_url, schema=pg_schema) as store:
        first = await store.put(envelope("t"), appends={"a": [1, 2, 3], "b": ["x"], "c": [0]})
        await store.pop("t", "a")
        await store.append("t", "b", ["later"])
        engine: Any = store.engine
        statements: list[str] = []

        def record(*args: Any) -> None:
            statements.append(str(args[2]))

        sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            found = await store.read_logs(
                "t", {"a": (1, None), "b": (0, 5), "c": (0, None), "d": (0, None)}, at=first
            )
        finally:
            sa.event.remove(engine.sync_engine, "before_cursor_execute", record)
        assert found == {"a": [2, 3], "b": ["x"], "c": [0], "d": []}
        assert len(statements) == 1


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_put_clear_logs_deletes_the_journal_rows(postgres_url: str, pg_schema: str) -> None:
    query = (
        f'SELECT count(*) FROM "{pg_schema}".agent_persist_log_items i '
        f'JOIN "{pg_schema}".agent_persist_logs l ON i.log_pk = l.pk '
        f'JOIN "{pg_schema}".agent_persist_threads t ON l.thread_pk = t.pk '
        "WHERE l.name = :log AND t.thread_id = :thread"
    )

    def rows(thread_id: str) -> Callable[[], Awaitable[int]]:
        async def count() -> int:
            found = await raw_sql(postgres_url, query, {"log": JOURNAL, "thread": thread_id})
            return int(found[0][0])

        return count

    async with SQLStore(postgres_url, schema=pg_schema) as store:
        assert await journal_turns(store, "t", rows("t")) == [0] * 12
        kept = await journal_turns(store, "u", rows("u"), clear_in_put=False)
        assert kept == [3 * (turn + 1) for turn in range(12)]
