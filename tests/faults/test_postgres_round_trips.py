"""PostgreSQL round trips of a checkpoint ``put``, counted on the wire by the proxy.

A ``put`` with its lease check, cleared logs and appends to several logs is one call of the
server-side function in autocommit: one request and its reply, no ``BEGIN`` or ``COMMIT``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fault_proxy import FaultProxy

from agent_persist import canonical_json
from agent_persist.crypto import Encryption, KeyRing
from agent_persist.errors import ConflictError, LeaseLostError
from agent_persist.stores import open_store
from agent_persist.stores.sql import SQLStore
from agent_persist.testing.conformance import envelope

pytestmark = [pytest.mark.postgres, pytest.mark.needs_extras]


@pytest.fixture
async def proxied_store(
    postgres_url: str, postgres_schema: str
) -> AsyncIterator[tuple[SQLStore, FaultProxy]]:
    proxy = await FaultProxy.start(postgres_url, "postgres")
    store = SQLStore(proxy.url(postgres_url), schema=postgres_schema, pool_size=1)
    try:
        await store.setup()
        yield store, proxy
    finally:
        await store.close()
        await proxy.close()


def _is_put_call(label: bytes) -> bool:
    return label.startswith(b"EXECUTE ") and b"agent_persist_put_2(" in label


async def test_a_put_with_lease_clear_and_appends_is_one_round_trip(
    proxied_store: tuple[SQLStore, FaultProxy],
) -> None:
    store, proxy = proxied_store
    lease = await store.acquire_lease("t", "worker", ttl=timedelta(minutes=1))
    head = await store.put(envelope("t"), appends={"journal": [1], "a": ["x"]}, lease=lease)
    head = await store.put(envelope("t", parent=head), appends={"journal": [2]}, lease=lease)
    for turn in range(3):  # warm: the connection has prepared the call once
        before = len(proxy.requests)
        head = await store.put(
            envelope("t", parent=head, payload={"turn": turn}),
            appends={"a": [turn, {"n": turn}], "b": [], f"new{turn}": ["y"], "journal": [3]},
            lease=lease,
            clear_logs=["journal"],
        )
        sent = proxy.requests[before:]
        assert len(sent) == 1, sent
        assert _is_put_call(sent[0]), sent
    assert await store.read_log("t", "journal") == [3]
    assert await store.read_log("t", "a") == ["x", 0, {"n": 0}, 1, {"n": 1}, 2, {"n": 2}]
    assert (await store.get("t")).checkpoint_id == head.checkpoint_id


async def test_a_refused_put_is_refused_in_its_round_trip_and_changes_nothing(
    proxied_store: tuple[SQLStore, FaultProxy],
) -> None:
    """Lease lost and head moved: the function's refusal rolls back what it did first."""
    store, proxy = proxied_store
    lease = await store.acquire_lease("t", "worker", ttl=timedelta(minutes=1))
    first = await store.put(envelope("t"), appends={"journal": [1, 2]}, lease=lease)
    second = await store.put(envelope("t", parent=first), lease=lease)
    await store.release_lease(lease)
    with pytest.raises(LeaseLostError, match="'worker'"):
        await store.put(envelope("t", parent=second), appends={"journal": [3]}, lease=lease)
    before = len(proxy.requests)
    with pytest.raises(ConflictError, match=f"but the head is {second.checkpoint_id!r}"):
        await store.put(
            envelope("t", parent=first), appends={"journal": [4]}, clear_logs=["journal"]
        )
    assert _is_put_call(proxy.requests[before])
    assert await store.read_log("t", "journal") == [1, 2]
    assert [e.checkpoint_id for e in await store.list_checkpoints("t")] == [
        second.checkpoint_id,
        first.checkpoint_id,
    ]


async def test_an_encrypted_put_is_one_round_trip_and_one_more_after_another_writer(
    proxied_store: tuple[SQLStore, FaultProxy], postgres_url: str, postgres_schema: str
) -> None:
    """Items sealed at their positions: the function checks them in its call.

    Another writer's append moves the log: the put is refused in its round trip (nothing
    written), sealed again where the refusal says, and sent once more.
    """
    _, proxy = proxied_store
    keys = KeyRing({"k": os.urandom(32)}, primary="k")
    sealed = open_store(
        proxy.url(postgres_url), schema=postgres_schema, pool_size=1, encryption=Encryption(keys)
    )
    other = open_store(postgres_url, schema=postgres_schema, encryption=Encryption(keys))
    try:
        await sealed.setup()
        head = await sealed.put(envelope("t"), appends={"log": ["a"], "journal": [1]})
        head = await sealed.put(envelope("t", parent=head), appends={"log": ["b"]})
        before = len(proxy.requests)
        head = await sealed.put(
            envelope("t", parent=head), appends={"log": ["c"], "journal": [2]}, clear_logs=["log"]
        )
        puts = [label for label in proxy.requests[before:] if _is_put_call(label)]
        assert len(puts) == 1, puts  # (the other request reads the key store)
        await other.append("t", "log", ["from another writer"])
        before = len(proxy.requests)
        await sealed.put(envelope("t", parent=head), appends={"log": ["d"], "journal": [3]})
        puts = [label for label in proxy.requests[before:] if _is_put_call(label)]
        assert len(puts) == 2, puts
        assert await other.read_log("t", "log") == ["c", "from another writer", "d"]
        assert await other.read_log("t", "journal") == [1, 2, 3]
    finally:
        await sealed.close()
        await other.close()


async def test_the_log_versions_are_stored_as_canonical_json(
    postgres_url: str, postgres_schema: str
) -> None:
    """The function writes a checkpoint's log versions byte for byte as Python would."""
    names = ['q"uote', "back\\slash", "tab\there", "\x01ctl", "é", "😀", "Z", "a", "\x7f"]
    async with SQLStore(postgres_url, schema=postgres_schema) as store:
        saved = await store.put(envelope("t"), appends={name: [1] for name in names})
        engine: Any = store.engine
        async with engine.connect() as conn:
            stored = (
                await conn.execute(
                    sa.text(f'SELECT logs FROM "{postgres_schema}".agent_persist_checkpoints')
                )
            ).scalar_one()
    assert stored == canonical_json(saved.logs).decode("utf-8")
    assert json.loads(stored) == {name: 1 for name in names}


async def _raw(postgres_url: str, *statements: str) -> list[Any]:
    """Run statements in one transaction on a connection of our own; the last one's rows."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(postgres_url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.begin() as conn:
            rows: list[Any] = []
            for statement in statements:
                result = await conn.execute(sa.text(statement))
                rows = list(result.all()) if result.returns_rows else []
            return rows
    finally:
        await engine.dispose()


async def test_a_schema_of_any_name_gets_its_own_function(
    postgres_url: str, postgres_schema: str
) -> None:
    """The function's body names the store's tables quoted: quotes and spaces included."""
    odd = f'{postgres_schema} it\'s "odd"'
    other = f"{postgres_schema}_other"
    try:
        async with (
            SQLStore(postgres_url, schema=odd) as store,
            SQLStore(postgres_url, schema=other) as neighbour,
        ):
            first = await store.put(envelope("t"), appends={"log": [1]})
            await store.put(envelope("t", parent=first), appends={"log": [2]})
            await neighbour.put(envelope("t"))
            assert await store.read_log("t", "log") == [1, 2]
            assert await neighbour.read_log("t", "log") == []
            assert len(await neighbour.list_checkpoints("t")) == 1
    finally:
        quoted = odd.replace('"', '""')
        await _raw(
            postgres_url,
            f'DROP SCHEMA IF EXISTS "{quoted}" CASCADE',
            f'DROP SCHEMA IF EXISTS "{other}" CASCADE',
        )


async def test_without_a_schema_the_function_follows_the_search_path(
    postgres_url: str, postgres_schema: str
) -> None:
    """``schema=None``: the function and its tables are where ``search_path`` says."""
    await _raw(postgres_url, f'CREATE SCHEMA "{postgres_schema}"')
    url = f"{postgres_url}?options=-csearch_path%3D{postgres_schema}"
    async with SQLStore(url) as store:
        first = await store.put(envelope("t"), appends={"log": [1]})
        await store.put(envelope("t", parent=first), appends={"log": [2]})
        assert await store.read_log("t", "log") == [1, 2]
    found = await _raw(
        postgres_url,
        "SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.proname = 'agent_persist_put_2'",
    )
    assert (postgres_schema,) in [tuple(row) for row in found]


async def test_a_version_2_database_is_upgraded_with_the_function(
    postgres_url: str, postgres_schema: str
) -> None:
    """Tables made before the functions: setup() adds them (steps 3, 4), keeping the data."""
    async with SQLStore(postgres_url, schema=postgres_schema) as store:
        first = await store.put(envelope("t"), appends={"log": [1]})
    await _raw(
        postgres_url,
        f'DROP FUNCTION "{postgres_schema}".agent_persist_put_1',
        f'DROP FUNCTION "{postgres_schema}".agent_persist_put_2',
        f'DELETE FROM "{postgres_schema}".agent_persist_schema_version WHERE version >= 3',
    )
    async with SQLStore(postgres_url, schema=postgres_schema) as store:
        second = await store.put(envelope("t", parent=first), appends={"log": [2]})
        assert await store.read_log("t", "log", at=second) == [1, 2]
    versions = await _raw(
        postgres_url,
        f'SELECT version FROM "{postgres_schema}".agent_persist_schema_version ORDER BY 1',
    )
    assert [row[0] for row in versions] == [1, 2, 3, 4]


async def test_a_first_put_on_an_expired_thread_purges_it_first(
    postgres_url: str, postgres_schema: str
) -> None:
    """The function leaves an expired thread to the multi-statement path, which purges it."""
    async with SQLStore(
        postgres_url, schema=postgres_schema, ttl=timedelta(milliseconds=200)
    ) as store:
        old = await store.put(envelope("t"), appends={"log": [1, 2]})
        await asyncio.sleep(0.4)
        reborn = await store.put(envelope("t"), appends={"log": [3]})
    assert reborn.logs == {"log": 1}
    assert reborn.checkpoint_id != old.checkpoint_id
    # Read without a ttl (no deadline on a loaded machine): the old rows are really gone.
    async with SQLStore(postgres_url, schema=postgres_schema) as reader:
        assert await reader.read_log("t", "log") == [3]
        assert [e.checkpoint_id for e in await reader.list_checkpoints("t")] == [
            reborn.checkpoint_id
        ]


async def test_an_append_to_a_new_thread_inserts_its_row_in_one_statement(
    proxied_store: tuple[SQLStore, FaultProxy],
) -> None:
    """A session's first items: the live append finds no thread, then one insert, one append."""
    store, proxy = proxied_store
    await store.append("warm", "log", [0])  # the connection has prepared the statements
    before = len(proxy.requests)
    await store.append("new", "log", [1, 2])
    statements = [label for label in proxy.requests[before:] if label.startswith(b"EXECUTE ")]
    assert len(statements) == 3, statements  # append if live, insert the thread, append
    assert await store.read_log("new", "log") == [1, 2]
    await store.append("new", "log", [3])
    assert await store.read_log("new", "log") == [1, 2, 3]
