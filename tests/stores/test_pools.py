"""Pools that wait instead of failing: many conversations in flight on a few connections.

Every store opened from a URL keeps a bounded pool per event loop (``pool_size``); an
operation that finds every connection busy waits up to ``pool_timeout`` for one, and past
it gets ``StoreUnavailableError`` naming the pool's limits. These tests run against the
real servers; connections are counted by the server (``pg_stat_activity``, ``CLIENT
LIST``) through a name no other test uses.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from agent_persist import open_store
from agent_persist.errors import InvalidStoreURLError, StoreUnavailableError
from agent_persist.stores.base import BaseStore
from agent_persist.testing.conformance import envelope

CONVERSATIONS = 128
TURNS = 3


async def converse(store: BaseStore, thread_id: str) -> int:
    """One conversation: a few turns, each a put after the last one (a chain of heads)."""
    head = await store.put(envelope(thread_id), appends={"transcript": ["hello"]})
    for turn in range(1, TURNS):
        head = await store.put(envelope(thread_id, parent=head), appends={"transcript": [turn]})
    return head.step


async def many_conversations(store: BaseStore) -> None:
    """128 conversations at once; every turn must succeed (gather raises on the first)."""
    steps = await asyncio.gather(*(converse(store, f"c{i}") for i in range(CONVERSATIONS)))
    assert steps == [TURNS - 1] * CONVERSATIONS
    assert await store.read_log("c77", "transcript") == ["hello", 1, 2]


# -- PostgreSQL ------------------------------------------------------------------------


def pg(url: str, **query: str) -> str:
    return str(sa.make_url(url).update_query_dict(query).render_as_string(hide_password=False))


async def full_collections_in_setup(store: BaseStore) -> int:
    """How many full (generation 2) garbage collections ``store.setup()`` ran."""
    full: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    gc.callbacks.append(seen)
    try:
        await store.setup()
    finally:
        gc.callbacks.remove(seen)
    return len(full)


async def backends_named(postgres_url: str, name: str) -> int:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(sa.make_url(postgres_url).set(drivername="postgresql+asyncpg"))
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n"),
                {"n": name},
            )
            return int(found.scalar_one())
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_postgres_serves_128_conversations_on_4_connections(
    postgres_url: str, postgres_schema: str
) -> None:
    name = f"ap-pools-{uuid.uuid4().hex[:12]}"
    store = open_store(pg(postgres_url, application_name=name), schema=postgres_schema, pool_size=4)
    opened: list[object] = []
    event.listen(store.engine.sync_engine, "connect", lambda *_: opened.append(1))  # type: ignore[union-attr]
    async with store:
        await many_conversations(store)
        assert await backends_named(postgres_url, name) <= 4
    assert 1 <= len(opened) <= 4  # over the whole burst: no connection opened and closed again


@pytest.mark.postgres
@pytest.mark.needs_extras
@pytest.mark.parametrize("warm", [False, True])
async def test_postgres_warm_pool_opens_the_pool_at_setup_and_leaves_no_trace(
    postgres_url: str, postgres_schema: str, warm: bool
) -> None:
    from agent_persist.stores.sql._schema import PREFIX

    name = f"ap-pools-{uuid.uuid4().hex[:12]}"
    url = pg(postgres_url, application_name=name)
    store = open_store(url, schema=postgres_schema, pool_size=4, warm_pool=warm)
    assert await full_collections_in_setup(store) >= warm  # the startup garbage
    async with store:
        assert await backends_named(postgres_url, name) == (4 if warm else 1)
        assert await store.list_threads() == []
        async with store.engine.connect() as conn:  # type: ignore[union-attr]
            for table in ("threads", "checkpoints", "log_items"):
                found = await conn.execute(
                    sa.text(f'SELECT count(*) FROM "{postgres_schema}"."{PREFIX}{table}"')
                )
                assert found.scalar_one() == 0, table
        head = await store.put(envelope("t"), appends={"transcript": ["hello"]})
        assert (await store.get("t")).checkpoint_id == head.checkpoint_id
        assert await store.read_log("t", "transcript") == ["hello"]


@pytest.mark.needs_extras
def test_warm_pool_is_a_bool(postgres_url: str) -> None:
    with pytest.raises(TypeError, match="warm_pool must be a bool, got str"):
        open_store(postgres_url, warm_pool="yes")


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_postgres_pool_timeout_is_store_unavailable(
    postgres_url: str, postgres_schema: str
) -> None:
    store = open_store(postgres_url, schema=postgres_schema, pool_size=1, pool_timeout=0.2)
    async with store:
        head = await store.put(envelope("t"))
        async with store.engine.connect() as held:  # type: ignore[union-attr]
            await held.execute(sa.text("SELECT 1"))
            with pytest.raises(StoreUnavailableError) as caught:
                await store.put(envelope("t", parent=head))
        message = str(caught.value)
        assert "pool_size=1, max_overflow=0, pool_timeout=0.2 s" in message
        assert "no pooled connection came free" in message
        assert (await store.put(envelope("t", parent=head))).step == 1  # usable again


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_the_postgres_pool_defaults_to_10_connections_without_overflow(
    postgres_url: str,
) -> None:
    store = open_store(postgres_url)
    pool: Any = store.engine.pool  # type: ignore[union-attr]
    assert (pool.size(), pool._max_overflow, pool._timeout) == (10, 0, 30.0)
    await store.close()


async def raw_connection(store: BaseStore) -> Any:
    """The asyncpg connection and SQLAlchemy's adapter of it, for one pooled connection."""
    async with store.engine.connect() as conn:  # type: ignore[union-attr]
        raw = await conn.get_raw_connection()
        adapter: Any = raw.dbapi_connection
        names = await conn.execute(
            sa.text("SELECT name FROM pg_prepared_statements WHERE name LIKE '\\_\\_agent%'")
        )
        return adapter, [row[0] for row in names]


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_statement_cache_size_0_turns_every_statement_cache_off(
    postgres_url: str, postgres_schema: str
) -> None:
    async with open_store(postgres_url, schema=postgres_schema) as plain:
        await plain.put(envelope("t"))
        adapter, names = await raw_connection(plain)
        assert adapter._prepared_statement_cache is not None
        assert adapter.driver_connection._stmt_cache.get_max_size() == 100
        assert names == []
    url = pg(postgres_url, statement_cache_size="0")
    async with open_store(url, schema=postgres_schema) as pooled:
        head = await pooled.put(envelope("t2"), appends={"log": ["a"]})
        await pooled.put(envelope("t2", parent=head), appends={"log": ["b"]})
        assert await pooled.read_log("t2", "log") == ["a", "b"]
        assert await pooled.log_length("t2", "log") == 2  # a single-statement read
        assert {t.thread_id for t in await pooled.list_threads()} == {"t", "t2"}
        adapter, names = await raw_connection(pooled)
        assert adapter._prepared_statement_cache is None
        assert adapter.driver_connection._stmt_cache.get_max_size() == 0
        assert len(names) == 1  # the query itself, under a unique name
        assert names[0].startswith("__agent_persist_")


def test_statement_cache_size_must_be_a_count() -> None:
    pytest.importorskip("asyncpg")
    with pytest.raises(InvalidStoreURLError, match="'statement_cache_size' is 'off'"):
        open_store("postgresql://u@db/app?statement_cache_size=off")


# -- Redis -----------------------------------------------------------------------------


async def clients_named(redis_url: str, name: str) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        listed: list[dict[str, Any]] = await client.client_list()
        return sum(1 for entry in listed if entry.get("name") == name)
    finally:
        await client.aclose()


@pytest.mark.redis
@pytest.mark.needs_extras
async def test_redis_serves_128_conversations_on_4_connections(
    redis_url: str, redis_prefix: str
) -> None:
    name = f"ap-pools-{uuid.uuid4().hex[:12]}"
    store = open_store(f"{redis_url}?client_name={name}", prefix=redis_prefix, pool_size=4)
    async with store:
        await many_conversations(store)
        assert 1 <= await clients_named(redis_url, name) <= 4


@pytest.mark.redis
@pytest.mark.needs_extras
@pytest.mark.parametrize("warm", [False, True])
async def test_redis_warm_pool_opens_the_pool_at_setup(
    redis_url: str, redis_prefix: str, warm: bool
) -> None:
    name = f"ap-warm-{uuid.uuid4().hex[:12]}"
    store = open_store(
        f"{redis_url}?client_name={name}", prefix=redis_prefix, pool_size=4, warm_pool=warm
    )
    assert await full_collections_in_setup(store) >= warm  # the startup garbage
    async with store:
        assert await clients_named(redis_url, name) == (4 if warm else 1)
        head = await store.put(envelope("t"), appends={"transcript": ["hello"]})
        assert (await store.get("t")).checkpoint_id == head.checkpoint_id
        assert await store.read_log("t", "transcript") == ["hello"]
    with pytest.raises(TypeError, match="warm_pool must be a bool"):
        open_store(redis_url, prefix=redis_prefix, warm_pool=1)


@pytest.mark.redis
@pytest.mark.needs_extras
async def test_redis_pool_timeout_is_store_unavailable(redis_url: str, redis_prefix: str) -> None:
    store = open_store(redis_url, prefix=redis_prefix, pool_size=1, pool_timeout=0.2)
    async with store:
        head = await store.put(envelope("t"))
        pool: Any = store._client.connection_pool  # type: ignore[attr-defined]
        held = await pool.get_connection()
        try:
            with pytest.raises(StoreUnavailableError) as caught:
                await store.put(envelope("t", parent=head))
        finally:
            await pool.release(held)
        message = str(caught.value)
        assert "pool_size=1, pool_timeout=0.2 s" in message
        assert "no pooled connection came free" in message
        assert (await store.put(envelope("t", parent=head))).step == 1  # usable again


@pytest.mark.redis
@pytest.mark.needs_extras
async def test_a_callers_client_that_does_not_wait_is_named(
    redis_url: str, redis_prefix: str
) -> None:
    from redis.asyncio import ConnectionPool, Redis

    from agent_persist.stores.redis import RedisStore

    client = Redis.from_pool(ConnectionPool.from_url(redis_url, max_connections=1))
    store = RedisStore(client, prefix=redis_prefix)
    try:
        await store.setup()
        held = await client.connection_pool.get_connection()
        try:
            with pytest.raises(StoreUnavailableError, match="max_connections=1, a pool that"):
                await store.put(envelope("t"))
        finally:
            await client.connection_pool.release(held)
    finally:
        await store.close()
        await client.aclose()


@pytest.mark.needs_extras
async def test_the_redis_pool_defaults_to_16_connections_that_wait_30_s() -> None:
    from agent_persist.stores.redis import RedisStore

    store = RedisStore("redis://127.0.0.1:6379/0")
    pool: Any = store._client.connection_pool  # type: ignore[attr-defined]
    assert (pool.max_connections, pool.timeout) == (16, 30.0)
    await store.close()


@pytest.mark.needs_extras
@pytest.mark.parametrize("parameter", ["max_connections=5", "timeout=3"])
def test_a_redis_url_does_not_size_the_pool(parameter: str) -> None:
    with pytest.raises(InvalidStoreURLError, match="pool_size= and pool_timeout="):
        open_store(f"redis://127.0.0.1:6379/0?{parameter}")


# -- the options, checked before anything is opened -------------------------------------

STORES: dict[str, Callable[..., BaseStore]] = {
    "sqlite": lambda **options: open_store("sqlite:///:memory:", **options),
    "postgres": lambda **options: open_store("postgresql://u@127.0.0.1:1/db", **options),
    "redis": lambda **options: open_store("redis://127.0.0.1:1/0", **options),
}

REFUSED: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"pool_size": 0}, ValueError, "pool_size must be at least 1, got 0"),
    ({"pool_size": -3}, ValueError, "pool_size must be at least 1"),
    ({"pool_size": True}, TypeError, "pool_size must be an int, got bool"),
    ({"pool_size": 2.0}, TypeError, "pool_size must be an int, got float"),
    ({"pool_size": "4"}, TypeError, "pool_size must be an int, got str"),
    ({"pool_size": 2**31}, ValueError, "pool_size must be at most"),
    ({"pool_timeout": 0}, ValueError, "pool_timeout must be a positive number"),
    ({"pool_timeout": -1.5}, ValueError, "pool_timeout must be a positive number"),
    ({"pool_timeout": math.nan}, ValueError, "pool_timeout must be a positive number"),
    ({"pool_timeout": math.inf}, ValueError, "pool_timeout must be a positive number"),
    ({"pool_timeout": timedelta(0)}, ValueError, "pool_timeout must be a positive number"),
    ({"pool_timeout": timedelta(days=40_000)}, ValueError, "pool_timeout must be at most"),
    ({"pool_timeout": True}, TypeError, "pool_timeout must be seconds"),
    ({"pool_timeout": "5"}, TypeError, "pool_timeout must be seconds"),
    ({"pool_timeout": None}, TypeError, "pool_timeout must be seconds"),
]


@pytest.mark.needs_extras
@pytest.mark.parametrize("backend", sorted(STORES))
@pytest.mark.parametrize(("options", "error", "message"), REFUSED)
def test_pool_options_are_checked(
    backend: str, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        STORES[backend](**options)


@pytest.mark.needs_extras
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (-1, ValueError, "max_overflow must be non-negative, got -1"),
        (False, TypeError, "max_overflow must be an int, got bool"),
    ],
)
def test_max_overflow_is_checked(
    backend: str, value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        STORES[backend](max_overflow=value)


@pytest.mark.needs_extras
@pytest.mark.parametrize("backend", sorted(STORES))
@pytest.mark.parametrize(
    "options",
    [
        {"pool_size": 1},
        {"pool_size": None},
        {"pool_timeout": 0.5},
        {"pool_timeout": 3},
        {"pool_timeout": timedelta(seconds=2)},
    ],
)
def test_good_pool_options_open_the_store(backend: str, options: dict[str, Any]) -> None:
    store = STORES[backend](**options)
    assert isinstance(store, BaseStore)
    asyncio.run(store.close())


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_postgres_waits_past_pool_timeout_inside_the_store(
    postgres_url: str, postgres_schema: str
) -> None:
    """The store's only connection is stuck behind a lock: the next operation times out."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from agent_persist.stores.sql._schema import PREFIX

    name = f"ap-pools-{uuid.uuid4().hex[:12]}"
    url = pg(postgres_url, application_name=name)
    store = open_store(url, schema=postgres_schema, pool_size=1, pool_timeout=0.2)
    outside = create_async_engine(sa.make_url(postgres_url).set(drivername="postgresql+asyncpg"))
    async with store:
        head = await store.put(envelope("t"))
        async with outside.connect() as locker:
            await locker.execute(
                sa.text(f'LOCK TABLE "{postgres_schema}"."{PREFIX}threads" IN EXCLUSIVE MODE')
            )
            stuck = asyncio.ensure_future(store.put(envelope("t", parent=head)))
            # the server says when the put waits on the lock: no event to await instead
            while not stuck.done() and await waiting_on_a_lock(locker, name) == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            with pytest.raises(StoreUnavailableError, match="pool_size=1, max_overflow=0"):
                await store.get("t")
            await locker.rollback()
        assert (await stuck).step == 1
    await outside.dispose()


async def waiting_on_a_lock(conn: Any, name: str) -> int:
    found = await conn.execute(
        sa.text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND application_name = :n"
        ),
        {"n": name},
    )
    return int(found.scalar_one())


async def test_the_gate_serves_waiters_in_arrival_order() -> None:
    from agent_persist.stores._gate import FairGate

    gate = FairGate(1, timeout=None, timed_out=TimeoutError)
    served: list[int] = []

    async def use(n: int) -> None:
        async with gate:
            served.append(n)
            await asyncio.sleep(0)

    await gate.acquire()
    waiters = [asyncio.ensure_future(use(n)) for n in range(5)]
    await asyncio.sleep(0)  # all five are queued
    gate.release()
    late = asyncio.ensure_future(use(99))  # comes after the release: must not pass them
    await asyncio.gather(*waiters, late)
    assert served == [0, 1, 2, 3, 4, 99]


async def test_the_gate_times_out_with_the_callers_error() -> None:
    from agent_persist.stores._gate import FairGate

    gate = FairGate(1, timeout=0.05, timed_out=lambda: LookupError("full"))
    await gate.acquire()
    with pytest.raises(LookupError, match="full"):
        await gate.acquire()
    gate.release()
    await gate.acquire()  # the timed-out waiter left no slot taken


# -- behind PgBouncer in transaction mode ----------------------------------------------


@pytest.fixture
def pgbouncer(postgres_url: str) -> Iterator[str]:
    """A PgBouncer of this test's own in transaction mode, in front of the test server.

    Skipped where ``pgbouncer`` is not installed. Its pool is smaller than the store's, so
    clients really share server connections.
    """
    import shutil
    import socket
    import subprocess
    import time

    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    )
    if binary is None:
        if os.environ.get("CI"):  # .ci/run installs it: a missing one is a failure there
            pytest.fail("pgbouncer is not installed (apt-get install pgbouncer)")
        pytest.skip("pgbouncer is not installed")
    server = sa.make_url(postgres_url)
    # Not under pytest's private temporary folder: PgBouncer may run as another user.
    scratch = tempfile.TemporaryDirectory(prefix="ap-pgbouncer-")
    folder = Path(scratch.name)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    user = server.username or "postgres"
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n{server.database} = host={server.host or '127.0.0.1'} "
        f"port={server.port or 5432} dbname={server.database} user={user}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\npool_mode = transaction\n"
        f"default_pool_size = 3\nmax_client_conn = 200\nunix_socket_dir =\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    folder.chmod(0o777)
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        command[1:1] = ["-u", "nobody"]
    quiet = subprocess.DEVNULL
    process = subprocess.Popen(command, stdout=quiet, stderr=quiet)  # noqa: S603
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = folder / "pgbouncer.log"
                    said = log.read_text()[-300:] if log.exists() else "no log"
                    pytest.skip(f"pgbouncer did not start: {said}")
                time.sleep(0.05)
        yield str(server.set(host="127.0.0.1", port=port).render_as_string(hide_password=False))
    finally:
        process.terminate()
        process.wait(timeout=10)
        scratch.cleanup()


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_statement_cache_size_0_works_behind_pgbouncer_in_transaction_mode(
    pgbouncer: str, postgres_schema: str
) -> None:
    async def turns(store: BaseStore, thread_id: str) -> int:
        head = await store.put(envelope(thread_id), appends={"log": ["a"]})
        for turn in range(3):
            head = await store.put(envelope(thread_id, parent=head), appends={"log": [turn]})
            assert await store.log_length(thread_id, "log") == turn + 2  # outside a snapshot
            assert (await store.get(thread_id)).step == turn + 1
        return head.step

    url = pg(pgbouncer, statement_cache_size="0")
    async with open_store(url, schema=postgres_schema, pool_size=8) as store:
        steps = await asyncio.gather(*(turns(store, f"t{i}") for i in range(24)))
        assert steps == [3] * 24
