"""The SQL store on SQLite: the conformance suite, plus what only this store has.

The store-specific tests cover the table versions and concurrent ``setup()``, URL parsing,
rows damaged by raw SQL, in-memory databases, caller-owned engines, the cost of a put, and a
randomised comparison with the memory store (the reference semantics). ``differential`` is
reused by ``test_postgres.py``.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from backends import JOURNAL, journal_turns

from agent_persist._json import JSON
from agent_persist.envelope import Envelope
from agent_persist.errors import (
    CodecError,
    ConflictError,
    CorruptCheckpointError,
    InvalidStoreURLError,
    StoreSchemaError,
    StoreUnavailableError,
)
from agent_persist.stores.base import BaseStore, ThreadInfo
from agent_persist.stores.memory import MemoryStore
from agent_persist.stores.sql import SQLStore
from agent_persist.stores.sql._schema import DDL_STEPS, SCHEMA_VERSION, build_tables
from agent_persist.testing import StoreConformance, StoreFactory, Tamper
from agent_persist.testing.conformance import envelope

CHECKPOINTS = "agent_persist_checkpoints"
THREADS = "agent_persist_threads"
ITEMS = "agent_persist_log_items"
LOGS = "agent_persist_logs"
VERSIONS = "agent_persist_schema_version"


def raw_sql(db_path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement with the standard library, outside the store."""
    raw = sqlite3.connect(db_path)
    try:
        with raw:
            return raw.execute(sql, params).fetchall()
    finally:
        raw.close()


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def db_path(self, tmp_path: Path) -> Path:
        return tmp_path / "store.db"

    @pytest.fixture
    async def store_factory(self, db_path: Path) -> AsyncIterator[StoreFactory]:
        stores: list[SQLStore] = []

        async def make(**options: Any) -> BaseStore:
            store = SQLStore(f"sqlite:///{db_path}", **options)
            stores.append(store)
            await store.setup()
            return store

        yield make
        for store in stores:
            await store.close()

    @pytest.fixture
    def tamper(self, db_path: Path) -> Tamper:
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
                    raw_sql(
                        db_path,
                        f"UPDATE {CHECKPOINTS} SET {column} = ? WHERE checkpoint_id = ? AND "
                        f"thread_pk = (SELECT pk FROM {THREADS} WHERE namespace = ? "
                        "AND thread_id = ?)",
                        value,
                        checkpoint_id,
                        store.namespace,
                        thread_id,
                    )

        return overwrite


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLStore]:
    store = SQLStore(f"sqlite:///{tmp_path / 'store.db'}")
    await store.setup()
    yield store
    await store.close()


JOURNAL_ROWS = (
    f"SELECT count(*) FROM {ITEMS} JOIN {LOGS} ON {ITEMS}.log_pk = {LOGS}.pk "
    f"JOIN {THREADS} ON {LOGS}.thread_pk = {THREADS}.pk "
    f"WHERE {LOGS}.name = ? AND {THREADS}.thread_id = ?"
)
"""The item rows of one thread's journal, live or stamped removed."""


async def test_put_clear_logs_deletes_the_journal_rows(
    sqlite_store: SQLStore, tmp_path: Path
) -> None:
    def rows(thread_id: str) -> Callable[[], Awaitable[int]]:
        async def count() -> int:
            return int(raw_sql(tmp_path / "store.db", JOURNAL_ROWS, JOURNAL, thread_id)[0][0])

        return count

    assert await journal_turns(sqlite_store, "t", rows("t")) == [0] * 12
    kept = await journal_turns(sqlite_store, "u", rows("u"), clear_in_put=False)
    assert kept == [3 * (turn + 1) for turn in range(12)]


# -- table versions --------------------------------------------------------------------------


async def test_setup_records_every_step_once_even_when_concurrent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    stores = [SQLStore(url) for _ in range(6)]
    try:
        await asyncio.gather(*(store.setup() for store in stores))
        await stores[0].setup()
        await SQLStore(url).close()  # a store that never ran setup closes cleanly
    finally:
        for store in stores:
            await store.close()
    rows = raw_sql(tmp_path / "fresh.db", f"SELECT version, summary FROM {VERSIONS}")
    assert rows == [(step.version, step.summary) for step in DDL_STEPS]
    assert rows[-1][0] == SCHEMA_VERSION


async def test_migrated_tables_match_the_current_definition(sqlite_store: SQLStore) -> None:
    """A DDL step built from a stale definition would show up here as a missing column."""
    db = sqlite_store.engine
    assert isinstance(db, sa.Engine)
    expected = build_tables(None)
    inspector = await asyncio.to_thread(sa.inspect, db)
    for table in expected.metadata.sorted_tables:
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        assert columns == {column.name for column in table.columns}, table.name
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        assert indexes >= {index.name for index in table.indexes}, table.name


async def test_schema_from_the_future_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    async with SQLStore(f"sqlite:///{path}") as store:
        await store.put(envelope("t"))
    raw_sql(path, f"INSERT INTO {VERSIONS} VALUES (?, 'from a newer release', 0)", 999)
    store = SQLStore(f"sqlite:///{path}")
    try:
        with pytest.raises(StoreSchemaError, match="999"):
            await store.get("t")
    finally:
        await store.close()
    assert raw_sql(path, f"SELECT count(*) FROM {CHECKPOINTS}") == [(1,)]


async def test_auto_setup_runs_once_before_the_first_operation(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'auto.db'}")
    try:
        await asyncio.gather(*(store.append(f"t{i}", "log", [i]) for i in range(5)))
        assert await store.read_log("t3", "log") == [3]
    finally:
        await store.close()
    manual = SQLStore(f"sqlite:///{tmp_path / 'manual.db'}", auto_setup=False)
    try:
        with pytest.raises(StoreUnavailableError, match="no such table"):
            await manual.get("t")
    finally:
        await manual.close()


# -- URLs and engines ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("sqlite:///relative.db", "sqlite"),
        ("sqlite+pysqlite:///relative.db", "sqlite"),
        ("sqlite:///:memory:", "sqlite"),
        ("sqlite://", "sqlite"),
    ],
)
async def test_sqlite_urls(url: str, backend: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLStore.from_url(url, namespace="n")
    try:
        assert store.backend == backend
        assert store.namespace == "n"
        await store.put(envelope("t"))
        assert (await store.get("t")).thread_id == "t"
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "mysql://user@host/db",
        "postgresql+psycopg://user@host/db",
        "sqlite+aiosqlite:///x.db",
        "redis://localhost:6379/0",
        "memory://",
        "not a url",
        "",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidStoreURLError):
        SQLStore(url)


def test_bad_url_message_masks_the_password() -> None:
    with pytest.raises(InvalidStoreURLError) as raised:
        SQLStore("mysql://user:hunter2@host/db")
    assert "hunter2" not in str(raised.value)
    assert "***" in str(raised.value)


def test_schema_is_a_postgres_option(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        SQLStore(f"sqlite:///{tmp_path / 'x.db'}", schema="s")
    with pytest.raises(InvalidStoreURLError):
        SQLStore(object())  # type: ignore[arg-type]


async def test_a_caller_owned_engine_stays_open(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'own.db'}")
    try:
        store = SQLStore(engine)
        await store.put(envelope("t"), appends={"log": ["a"]})
        await store.close()
        with engine.connect() as conn:  # still usable: close() did not dispose it
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {ITEMS}").scalar() == 1
        again = SQLStore(engine)
        assert await again.read_log("t", "log") == ["a"]
        await again.close()
    finally:
        engine.dispose()


async def test_a_store_is_usable_again_after_close(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'again.db'}")
    async with store:
        await store.append("t", "log", ["a"])
    async with store:  # close() stopped its workers; the next call starts new ones
        await store.append("t", "log", ["b"])
        assert await store.read_log("t", "log") == ["a", "b"]


async def test_stores_sharing_a_small_caller_pool_do_not_starve(tmp_path: Path) -> None:
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'shared.db'}", pool_size=1, max_overflow=0, pool_timeout=5
    )
    try:
        first, second = SQLStore(engine, namespace="a"), SQLStore(engine, namespace="b")
        for store in (first, second):
            await asyncio.gather(*(store.append(f"t{i}", "log", [i]) for i in range(8)))
        assert await second.read_log("t3", "log") == [3]
        with engine.connect() as conn:  # the caller still gets a connection
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {ITEMS}").scalar() == 16
        await first.close()
        await second.close()
    finally:
        engine.dispose()


async def test_a_failed_transaction_leaves_the_worker_clean(tmp_path: Path) -> None:
    async with SQLStore(f"sqlite:///{tmp_path / 'clean.db'}") as store:
        head = await store.put(envelope("t"))
        for _ in range(6):  # more failures than workers: each must roll back
            with pytest.raises(ConflictError):
                await store.put(envelope("t"), appends={"log": ["lost"]})
        await store.put(head.next(payload={"n": 2}), appends={"log": ["kept"]})
        assert await store.read_log("t", "log") == ["kept"]


async def test_an_in_memory_engine_needs_a_static_pool() -> None:
    engine = sa.create_engine("sqlite://")
    try:
        with pytest.raises(InvalidStoreURLError, match="StaticPool"):
            SQLStore(engine)
    finally:
        engine.dispose()
    shared = sa.create_engine(
        "sqlite://", poolclass=sa.StaticPool, connect_args={"check_same_thread": False}
    )
    try:
        async with SQLStore(shared) as store:
            await store.append("t", "log", [1])
            assert await store.read_log("t", "log") == [1]
    finally:
        shared.dispose()


async def test_in_memory_database_serialises_concurrent_transactions() -> None:
    async with SQLStore("sqlite:///:memory:") as store:
        head = await store.put(envelope("t"))
        await asyncio.gather(*(store.append("t", "log", [i]) for i in range(30)))
        assert sorted(await store.read_log("t", "log")) == list(range(30))  # type: ignore[type-var]
        assert (await store.get("t")) == head
    async with SQLStore("sqlite:///:memory:") as other:  # a private database each time
        assert await other.list_threads() == []


async def test_unopenable_file_is_unavailable(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    try:
        with pytest.raises(StoreUnavailableError, match="missing-dir"):
            await store.setup()
    finally:
        await store.close()


async def kilobyte_ids(store: BaseStore) -> None:
    """Ids of 1,024 characters outside ASCII (3 KB of UTF-8) as thread, log and checkpoint."""
    rng = random.Random(7)  # noqa: S311 - reproducible text, not secrets
    ids = ["".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(1024)) for _ in range(3)]
    thread, log, checkpoint = ids
    first = await store.put(envelope(thread), appends={log: ["item"]})
    second = await store.put(envelope(thread, parent=first).replace(checkpoint_id=checkpoint))
    assert (await store.get(thread, checkpoint)) == second
    assert await store.read_log(thread, log, at=first) == ["item"]
    assert [c.checkpoint_id for c in await store.list_checkpoints(thread, before=checkpoint)] == [
        first.checkpoint_id
    ]
    lease = await store.acquire_lease(thread, log, ttl=timedelta(seconds=5))
    await store.release_lease(lease)
    assert await store.delete_thread(thread)


async def test_kilobyte_ids_of_any_character(sqlite_store: SQLStore) -> None:
    await kilobyte_ids(sqlite_store)


# -- damaged rows ----------------------------------------------------------------------------


async def test_rows_damaged_by_raw_sql_raise_typed_errors(
    sqlite_store: SQLStore, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    first = await sqlite_store.put(envelope("t"), appends={"log": ["a", "b"]})
    raw_sql(db, f"UPDATE {ITEMS} SET data = ? WHERE seq = 2", b"json+rot13:xyz")
    with pytest.raises(CodecError, match=r"log 'log' item 2") as raised:
        await sqlite_store.read_log("t", "log")
    assert "'t'" in str(raised.value)
    with pytest.raises(CodecError):
        await sqlite_store.pop("t", "log")
    raw_sql(db, f"UPDATE {ITEMS} SET data = 'json:{{' WHERE seq = 2")  # text, not a blob
    with pytest.raises(CorruptCheckpointError, match="item 2"):
        await sqlite_store.tail("t", "log", 1)
    assert await sqlite_store.read_log("t", "log", stop=1) == ["a"]

    raw_sql(db, f"UPDATE {CHECKPOINTS} SET logs = '[1]'")
    with pytest.raises(CorruptCheckpointError, match="log versions"):
        await sqlite_store.get("t")
    raw_sql(db, f"UPDATE {CHECKPOINTS} SET logs = ?", '{"log": 2}')
    assert await sqlite_store.get("t") == first

    raw_sql(db, f"UPDATE {CHECKPOINTS} SET payload = 12")  # any type fits an SQLite column
    with pytest.raises(CodecError, match=first.checkpoint_id):
        await sqlite_store.get("t")

    raw_sql(db, f"UPDATE {THREADS} SET metadata = 'not json'")
    with pytest.raises(CorruptCheckpointError, match="metadata"):
        await sqlite_store.list_threads()
    raw_sql(db, f"UPDATE {THREADS} SET metadata = '{{}}', status = 'sleeping'")
    with pytest.raises(CorruptCheckpointError, match="sleeping"):
        await sqlite_store.list_threads()


# -- cost of a write -------------------------------------------------------------------------


async def test_a_put_costs_the_same_whatever_the_history(sqlite_store: SQLStore) -> None:
    """Count the statements of a put: no read of old items, no work growing with history."""
    engine = sqlite_store.engine
    assert isinstance(engine, sa.Engine)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    async def counted_put(parent: Envelope) -> tuple[Envelope, list[str]]:
        statements.clear()
        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            saved = await sqlite_store.put(
                envelope("t", parent=parent), appends={"transcript": ["new", "newer"]}
            )
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
        return saved, list(statements)

    head = await sqlite_store.put(envelope("t"), appends={"transcript": ["first"]})
    head, early = await counted_put(head)
    for _ in range(40):
        head = await sqlite_store.put(
            envelope("t", parent=head), appends={"transcript": ["x"] * 20, "other": ["y"]}
        )
    head, late = await counted_put(head)
    assert late == early
    assert not any(ITEMS in sql and sql.lstrip().upper().startswith("SELECT") for sql in late)


# -- the reference semantics -----------------------------------------------------------------

Outcome = tuple[str, Any]


def _normal(value: Any) -> Any:
    if isinstance(value, Envelope):
        return value.model_dump()
    if isinstance(value, ThreadInfo):
        return (
            value.thread_id,
            value.head_id,
            value.kind,
            value.step,
            value.status,
            value.checkpoint_count,
            value.metadata,
            value.schema_version,
        )
    if isinstance(value, list):
        return [_normal(item) for item in value]  # type: ignore[misc]
    return value


def _forked(outcome: Outcome) -> Outcome:
    if outcome[0] != "ok":
        return outcome
    copy = {k: v for k, v in outcome[1].items() if k not in {"checkpoint_id", "created_at"}}
    return ("ok", copy)


async def _outcome(call: Awaitable[Any]) -> Outcome:
    try:
        return ("ok", _normal(await call))
    except Exception as exc:  # the comparison is the point
        return ("error", type(exc).__name__)


async def differential(make: Callable[..., Awaitable[BaseStore]], seed: int, steps: int) -> None:
    """Run the same random operations on the memory store and on ``make()``'s store.

    Every result (envelopes, log contents, listings, errors) must be identical.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible operations, not secrets
    keep_last = rng.choice([None, None, 2, 4])
    stores = [MemoryStore(keep_last=keep_last), await make(keep_last=keep_last)]
    threads, logs = ["a", "b", "c"], ["x", "y"]
    seen: list[Envelope] = []
    values: list[JSON] = [1, 1.0, True, "1", None, 2, "two"]

    def appends() -> dict[str, list[JSON]]:
        return {
            log: [rng.choice(values) for _ in range(rng.randrange(3))]
            for log in rng.sample(logs, rng.randrange(len(logs) + 1))
        }

    async def both(name: str, *args: Any, **kwargs: Any) -> Outcome:
        results = [await _outcome(getattr(store, name)(*args, **kwargs)) for store in stores]
        assert results[0] == results[1], f"seed {seed}: {name}{args}{kwargs}"
        return results[0]

    for _ in range(steps):
        thread, log = rng.choice(threads), rng.choice(logs)
        op = rng.randrange(14)
        if op < 4:
            head = await _outcome(stores[0].get(thread))
            parent = None
            if head[0] == "ok" and rng.random() < 0.9:
                parent = Envelope.model_validate(head[1])
            elif seen and rng.random() < 0.5:
                parent = rng.choice(seen)
            meta: dict[str, Any] = {"k": rng.choice(values)}
            env = (
                envelope(thread, metadata=meta)
                if parent is None
                else envelope(thread, parent=parent.replace(thread_id=thread), metadata=meta)
            )
            result = await both("put", env, appends=appends())
            if result[0] == "ok":
                seen.append(Envelope.model_validate(result[1]))
        elif op == 4:
            await both("append", thread, log, [rng.choice(values)])
        elif op == 5:
            await both("pop", thread, log)
        elif op == 6:
            if rng.random() < 0.3:
                await both("clear_log", thread, log)
        elif op == 7:
            at = rng.choice(seen) if seen and rng.random() < 0.6 else None
            if at is not None:
                thread = at.thread_id
            start = rng.randrange(4)
            stop = rng.choice([None, rng.randrange(6)])
            await both("read_log", thread, log, start=start, stop=stop, at=at)
        elif op == 8:
            await both("tail", thread, log, rng.randrange(5))
            await both("log_length", thread, log)
        elif op == 9:
            before = rng.choice(seen).checkpoint_id if seen and rng.random() < 0.4 else None
            filters = {"k": rng.choice(values)} if rng.random() < 0.5 else None
            limit = rng.choice([None, 1, 3])
            await both("list_checkpoints", thread, limit=limit, before=before, metadata=filters)
        elif op == 10:
            filters = {"k": rng.choice(values)} if rng.random() < 0.5 else None
            await both("list_threads", metadata=filters)
        elif op == 11:
            ages = [None, timedelta(0), timedelta(hours=1)]
            await both(
                "prune", thread, keep_last=rng.choice([None, 0, 1, 2]), older_than=rng.choice(ages)
            )
        elif op == 12:
            if rng.random() < 0.2:
                await both("delete_thread", thread)
        else:  # a fork has a new id and time: compare the rest, then remove it
            forks = [await _outcome(store.fork(thread, "fork")) for store in stores]
            assert [_forked(result) for result in forks] == [_forked(forks[0])] * 2, seed
            await both("delete_thread", "fork")
        for checkpoint in rng.sample(seen, min(len(seen), 2)):  # old checkpoints stay exact
            await both("get", checkpoint.thread_id, checkpoint.checkpoint_id)
            await both("read_log", checkpoint.thread_id, log, at=checkpoint)
    await stores[1].close()


@pytest.mark.parametrize("seed", range(6))
async def test_matches_the_memory_store(seed: int, tmp_path: Path) -> None:
    async def make(**options: Any) -> BaseStore:
        return SQLStore(f"sqlite:///{tmp_path / 'diff.db'}", **options)

    await differential(make, seed, steps=250)
