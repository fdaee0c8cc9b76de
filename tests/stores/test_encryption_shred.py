"""Crypto-shredding beyond ``delete_thread``: threads removed by ``ttl`` expiry, and a data
key held in memory by one store for a thread another store deleted.

Two store objects on the same data (memory, SQLite, PostgreSQL, Redis), as two workers.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from encryption_raw import BACKENDS, Raw, open_raw

from agent_persist.crypto import Encryption, KeyRing
from agent_persist.errors import ShreddedThreadError
from agent_persist.stores import base as base_module
from agent_persist.stores.base import BaseStore
from agent_persist.stores.sql import SQLStore
from agent_persist.testing.conformance import envelope

KEY = os.urandom(32)
TTL = timedelta(seconds=0.4)
"""For a thread that only has to expire: a sleep past it is enough, whatever the load."""
LIVE_TTL = timedelta(seconds=3)
"""For a thread that must still be live at the purge: margin for a loaded machine."""


@pytest.fixture(params=BACKENDS)
async def raw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Raw]:
    async for value in open_raw(request.param, request, tmp_path):
        yield value


async def _open(raw: Raw, **options: object) -> BaseStore:
    return await raw.open(encryption=Encryption(KeyRing({"k": KEY}, primary="k")), **options)


async def test_purge_expired_shreds_the_keys_of_expired_threads(raw: Raw) -> None:
    store = await _open(raw, ttl=LIVE_TTL)
    await store.put(envelope("old", payload={"secret": 1}), appends={"log": ["x"]})
    copy = await raw.snapshot(store, "old")
    await asyncio.sleep(LIVE_TTL.total_seconds() + 0.2)
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


def _keys_look_old(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every data key looks older than any ttl to ``purge_expired``; the threads stay live.

    So nothing but the liveness check stands between a key and its shredding, and no
    sleep (nor its margin on a loaded machine) is needed.
    """
    monkeypatch.setattr(base_module, "time", SimpleNamespace(time=lambda: time.time() + 3600))


@pytest.fixture
async def redis_raw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Raw]:
    async for value in open_raw("redis", request, tmp_path):
        yield value


@pytest.mark.redis
@pytest.mark.needs_extras
async def test_purge_keeps_the_key_of_a_thread_written_while_threads_are_listed(
    redis_raw: Raw, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_persist.stores.redis import RedisStore
    from agent_persist.stores.redis import _store as redis_store_module

    monkeypatch.setattr(redis_store_module, "_PAGE", 3)  # a listing of several pages
    _keys_look_old(monkeypatch)
    store = await _open(redis_raw, ttl=timedelta(hours=1))
    assert isinstance(store, RedisStore)
    await store.append("long", "log", ["one"])
    for n in range(4):  # newer: "long" is on the second page
        await store.append(f"new{n}", "log", ["x"])
    page = store._thread_page  # pyright: ignore[reportPrivateUsage]
    listed: list[int] = []

    async def written_between_pages(listing: Any) -> list[Any]:
        rows = await page(listing)
        if not listed:  # "long" moves to the top, past the next page's offset
            listed.append(len(rows))
            await store.append("long", "log", ["two"])
        return rows

    monkeypatch.setattr(store, "_thread_page", written_between_pages)
    await store.purge_expired()
    reader = await _open(redis_raw)
    assert await reader.read_log("long", "log") in (["one"], ["one", "two"])
    assert [await reader.read_log(f"new{n}", "log") for n in range(4)] == [["x"]] * 4


async def test_purge_keeps_the_key_of_a_thread_started_again_during_it(
    raw: Raw, monkeypatch: pytest.MonkeyPatch
) -> None:
    holding = await raw.open(
        encryption=Encryption(KeyRing({"k": KEY}, primary="k"), shred_on_delete=False)
    )
    for thread_id in ("a", "b"):  # two dead threads whose keys are kept
        await holding.append(thread_id, "log", ["old"])
        assert await holding.delete_thread(thread_id)
    _keys_look_old(monkeypatch)
    store, writer = await _open(raw, ttl=timedelta(hours=1)), await _open(raw)
    assert store._sealing is not None  # pyright: ignore[reportPrivateUsage]
    key_store = store._sealing.key_store  # pyright: ignore[reportPrivateUsage]
    delete = key_store.delete
    again: list[str] = []

    async def start_the_other_again(thread_id: str) -> bool:
        if not again:  # while the first key goes, the other thread is written again
            again.append("b" if thread_id == "a" else "a")
            await writer.append(again[0], "log", ["again"])  # under its old key
        return await delete(thread_id)

    monkeypatch.setattr(key_store, "delete", start_the_other_again)
    assert await store.purge_expired() == 0  # no thread purged; one key shredded
    reader = await _open(raw)
    assert await reader.read_log(again[0], "log") == ["again"]
    (gone,) = {"a", "b"} - set(again)
    assert not await reader.shred_thread(gone)  # its key was destroyed by the purge


async def test_reads_and_pop_holding_a_stale_key_reload_it(raw: Raw) -> None:
    worker_a, worker_b = await _open(raw), await _open(raw)
    await worker_a.append("t", "log", ["one"])
    assert await worker_a.read_log("t", "log") == ["one"]  # A holds t's key

    async def start_again(items: list[str]) -> None:
        await worker_b.delete_thread("t")
        await worker_b.append("t", "log", items)  # under a new key

    await start_again(["two"])
    assert await worker_a.read_log_lines("t", "log") == b'"two"'
    await start_again(["three"])
    assert await worker_a.tail_lines("t", "log", 1) == b'"three"'
    await start_again(["four", "five"])
    assert await worker_a.pop("t", "log") == "five"  # once: the retry pops no other item
    assert await worker_b.read_log("t", "log") == ["four"]


@pytest.fixture(
    params=[b for b in BACKENDS if getattr(b, "values", (b,))[0] in ("sqlite", "postgres")]
)
async def sql_raw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Raw]:
    """The SQL back ends only: the audit tables are theirs."""
    async for value in open_raw(request.param, request, tmp_path):
        yield value


async def test_audit_rows_holding_a_stale_key_reload_it(sql_raw: Raw) -> None:
    raw = sql_raw
    worker_a, worker_b = await _open(raw), await _open(raw)
    assert isinstance(worker_a, SQLStore)
    message = {"event": "message", "role": "user", "content": "one", "at": 1.0}
    await worker_a.append_audit("t", [message])
    assert len(await worker_a.read_audit_rows("t", "messages")) == 1  # A holds t's key
    await worker_b.delete_thread("t")
    await worker_b.append_audit("t", [{**message, "content": "two"}])
    [row] = await worker_a.read_audit_rows("t", "messages")
    assert row["content"] == "two"
