"""Crypto-shredding beyond ``delete_thread``: threads removed by ``ttl`` expiry, and a data
key held in memory by one store for a thread another store deleted.

Two store objects on the same data (memory, SQLite, PostgreSQL, Redis), as two workers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from encryption_raw import BACKENDS, Raw, open_raw

from agent_persist.crypto import Encryption, KeyRing
from agent_persist.errors import ShreddedThreadError
from agent_persist.stores.base import BaseStore
from agent_persist.testing.conformance import envelope

KEY = os.urandom(32)
TTL = timedelta(seconds=0.4)


@pytest.fixture(params=BACKENDS)
async def raw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Raw]:
    async for value in open_raw(request.param, request, tmp_path):
        yield value


async def _open(raw: Raw, **options: object) -> BaseStore:
    return await raw.open(encryption=Encryption(KeyRing({"k": KEY}, primary="k")), **options)


async def test_purge_expired_shreds_the_keys_of_expired_threads(raw: Raw) -> None:
    store = await _open(raw, ttl=TTL)
    await store.put(envelope("old", payload={"secret": 1}), appends={"log": ["x"]})
    copy = await raw.snapshot(store, "old")
    await asyncio.sleep(TTL.total_seconds() * 1.5)
    await store.append("fresh", "log", ["y"])  # written just now: keeps its key
    await store.purge_expired()
    forever = await _open(raw)  # no ttl: would read an expired thread put back
    await raw.restore(forever, copy)  # a backup of the expired thread's data
    with pytest.raises(ShreddedThreadError, match="'old'"):
        await forever.get("old")
    assert await forever.read_log("fresh", "log") == ["y"]


async def test_a_legal_hold_keeps_expired_threads_keys(raw: Raw) -> None:
    store = await raw.open(
        encryption=Encryption(KeyRing({"k": KEY}, primary="k"), shred_on_delete=False), ttl=TTL
    )
    head = await store.put(envelope("old", payload={"secret": 1}))
    copy = await raw.snapshot(store, "old")
    await asyncio.sleep(TTL.total_seconds() * 1.5)
    await store.purge_expired()
    forever = await _open(raw)
    await raw.restore(forever, copy)
    assert (await forever.get("old")).payload == head.payload


async def test_a_write_under_a_key_another_store_shredded_is_refused(raw: Raw) -> None:
    worker_a, worker_b = await _open(raw), await _open(raw)
    await worker_a.append("t", "log", ["before"])  # worker A now holds t's data key
    assert await worker_b.delete_thread("t")  # worker B deletes the thread: key destroyed
    dump = await raw.dump()
    with pytest.raises(ShreddedThreadError, match=r"'t'.*destroyed"):
        await worker_a.append("t", "log", ["after"])
    assert await raw.dump() == dump  # nothing written
    # Writing again starts the thread afresh under a new key, readable by everyone.
    await worker_a.append("t", "log", ["again"])
    assert await worker_b.read_log("t", "log") == ["again"]
    assert await (await _open(raw)).read_log("t", "log") == ["again"]


async def test_a_reader_holding_a_stale_key_reloads_it(raw: Raw) -> None:
    worker_a, worker_b = await _open(raw), await _open(raw)
    await worker_a.put(envelope("t", payload={"n": 1}), appends={"log": ["one"]})
    assert await worker_a.read_log("t", "log") == ["one"]  # A holds t's key
    await worker_b.delete_thread("t")
    head = await worker_b.put(envelope("t", payload={"n": 2}), appends={"log": ["two"]})
    assert await worker_a.get("t") == head  # under B's new key: A reloads it
    assert await worker_a.read_log("t", "log") == ["two"]
    assert await worker_a.list_checkpoints("t") == [head]


async def test_a_rekey_by_another_store_is_not_mistaken_for_a_shredding(raw: Raw) -> None:
    from agent_persist.crypto import rekey

    worker_a = await _open(raw)
    await worker_a.append("t", "log", ["one"])
    other = os.urandom(32)
    rotated = await raw.open(encryption=Encryption(KeyRing({"k": KEY, "n": other}, primary="n")))
    assert (await rekey(rotated)).rewrapped == 1
    await worker_a.append("t", "log", ["two"])  # same data key, wrapped anew: no error
    assert await rotated.read_log("t", "log") == ["one", "two"]


async def test_a_fork_is_sealed_under_its_own_key(raw: Raw) -> None:
    store = await _open(raw)
    await store.put(envelope("t", payload={"n": 1}), appends={"log": ["one"]})
    forked = await store.fork("t", "f")
    await store.delete_thread("t")  # shreds t's key: the fork does not depend on it
    reader = await _open(raw)
    assert await reader.get("f") == forked
    assert await reader.read_log("f", "log") == ["one"]
