"""A sealed log item is bound to its position: moved within its log, it no longer opens.

Every test runs on memory, SQLite, PostgreSQL and Redis (:mod:`encryption_raw`). The writer
seals items where it expects them to land and the store refuses the write when another
writer moved the log since (nothing written), so concurrent writers re-seal and all their
items read back; items sealed before positions were bound still open, and ``seal_thread``
binds them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from encryption_raw import BACKENDS, Raw, open_raw

from agent_persist.crypto import Encryption, KeyRing
from agent_persist.errors import ConflictError, DecryptionError
from agent_persist.stores import MemoryStore
from agent_persist.stores._positions import PositionsMoved
from agent_persist.stores.base import BaseStore
from agent_persist.testing.conformance import envelope

KEY = os.urandom(32)
_FRAME = b"json+aes256gcm:"
_POSITIONED, _UNBOUND = 0x02, 0x01


@pytest.fixture(params=BACKENDS)
async def raw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Raw]:
    async for value in open_raw(request.param, request, tmp_path):
        yield value


async def sealed_store(raw: Raw) -> BaseStore:
    return await raw.open(encryption=Encryption(KeyRing({"k": KEY}, primary="k")))


def format_byte(item: bytes) -> int:
    """The byte after the frame: which associated data the item was sealed with."""
    assert item.startswith(_FRAME)
    return item[len(_FRAME)]


async def test_items_are_sealed_with_their_positions(raw: Raw) -> None:
    store = await sealed_store(raw)
    await store.append("t", "log", ["a", "b"])
    await store.put(envelope("t"), appends={"log": ["c"]})
    items = await raw.items(store, "t", "log")
    assert [format_byte(item) for item in items] == [_POSITIONED] * 3
    assert await store.read_log("t", "log") == ["a", "b", "c"]


async def test_items_swapped_within_their_log_fail_to_open_and_stay(raw: Raw) -> None:
    store = await sealed_store(raw)
    await store.append("t", "log", ["first", "second", "third"])
    first, _, third = await raw.items(store, "t", "log")
    await raw.set_item(store, "t", "log", 0, third)
    await raw.set_item(store, "t", "log", 2, first)
    before = await raw.dump()
    with pytest.raises(DecryptionError, match="'t'"):
        await store.read_log("t", "log")
    with pytest.raises(DecryptionError, match="'t'"):
        await store.read_log_lines("t", "log")
    with pytest.raises(DecryptionError, match="'t'"):
        await store.tail("t", "log", 1)
    with pytest.raises(DecryptionError, match="'t'"):
        await store.pop("t", "log")
    assert await raw.dump() == before


async def test_an_item_copied_over_another_of_its_log_fails_to_open(raw: Raw) -> None:
    store = await sealed_store(raw)
    await store.put(envelope("t"), appends={"log": ["old", "new"]})
    old, _ = await raw.items(store, "t", "log")
    await raw.set_item(store, "t", "log", 1, old)
    with pytest.raises(DecryptionError, match="'t'"):
        await store.tail("t", "log", 1)
    with pytest.raises(DecryptionError, match="'t'"):
        await store.read_log("t", "log", start=1)


async def test_clearing_then_appending_in_one_put_lands_where_sealed(raw: Raw) -> None:
    store = await sealed_store(raw)
    head = await store.put(envelope("t"), appends={"log": ["a", "b"], "other": ["x"]})
    middle = await store.put(
        envelope("t", parent=head), appends={"log": ["c"]}, clear_logs=["log", "empty"]
    )
    await store.put(envelope("t", parent=middle), appends={"empty": ["e"]}, clear_logs=["log"])
    assert await store.read_log("t", "log") == []
    assert await store.read_log("t", "empty") == ["e"]
    assert await store.read_log("t", "other") == ["x"]
    assert await store.read_log("t", "log", at=middle) == ["c"]


async def test_writers_that_moved_each_others_logs_reseal_and_all_items_read_back(
    raw: Raw, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent_persist")
    one, two = await sealed_store(raw), await sealed_store(raw)
    await one.append("t", "log", ["one-0"])
    await two.append("t", "log", ["two-0"])  # two's guess (a new log) was wrong
    await one.append("t", "log", ["one-1"])  # so is one's now
    await two.pop("t", "log")
    await two.append("t", "log", ["two-1"])
    assert await one.read_log("t", "log") == ["one-0", "two-0", "two-1"]
    assert sum("sealing again" in r.getMessage() for r in caplog.records) >= 2

    async def writer(store: BaseStore, name: str) -> None:
        for n in range(15):
            await store.append("t", "busy", [f"{name}-{n}", f"{name}-{n}b"])

    await asyncio.gather(writer(one, "one"), writer(two, "two"))
    items: list[Any] = await two.read_log("t", "busy")
    assert sorted(items) == sorted(
        f"{name}-{n}{tail}" for name in ("one", "two") for n in range(15) for tail in ("", "b")
    )
    for name in ("one", "two"):  # each append landed whole and in order
        mine = [item for item in items if item.startswith(name)]
        assert mine == [f"{name}-{n}{tail}" for n in range(15) for tail in ("", "b")]
        at = items.index(f"{name}-3")
        assert items[at + 1] == f"{name}-3b"


async def test_a_put_after_another_writer_appended_reseals(
    raw: Raw, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent_persist")
    one, two = await sealed_store(raw), await sealed_store(raw)
    head = await one.put(envelope("t"), appends={"log": ["a"], "journal": ["j"]})
    await two.append("t", "log", ["from two"])
    await two.append("t", "journal", ["j2"])
    head = await one.put(
        envelope("t", parent=head),
        appends={"log": ["b"], "journal": ["j3"]},
        clear_logs=["journal"],
    )
    assert await two.read_log("t", "log") == ["a", "from two", "b"]
    assert await two.read_log("t", "journal") == ["j3"]
    assert any("sealing again" in r.getMessage() for r in caplog.records)
    assert await one.read_log("t", "log", at=head) == ["a", "from two", "b"]


async def test_items_sealed_before_positions_were_bound_open_and_seal_binds_them(
    raw: Raw,
) -> None:
    store = await sealed_store(raw)
    await store.append("t", "log", ["a", "b"])
    unbound = store.codec.for_log("t", "log")
    for index, value in enumerate([b'"a"', b'"b"']):  # as an earlier release sealed them
        await raw.set_item(store, "t", "log", index, unbound.seal_bytes(value))
    assert [format_byte(item) for item in await raw.items(store, "t", "log")] == [_UNBOUND] * 2
    assert await store.read_log("t", "log") == ["a", "b"]
    assert await store.seal_thread("t", dry_run=True) == 2
    assert await store.seal_thread("t") == 2
    assert await store.seal_thread("t") == 0
    items = await raw.items(store, "t", "log")
    assert [format_byte(item) for item in items] == [_POSITIONED] * 2
    assert await store.read_log("t", "log") == ["a", "b"]
    await raw.set_item(store, "t", "log", 0, items[1])
    with pytest.raises(DecryptionError, match="'t'"):
        await store.read_log("t", "log")


async def test_a_writer_alone_seals_each_item_once(
    raw: Raw, caplog: pytest.LogCaptureFixture
) -> None:
    """Its own appends, puts, pops and clears keep its guesses right: no write is refused."""
    caplog.set_level(logging.DEBUG, logger="agent_persist")
    store = await sealed_store(raw)
    head = await store.put(envelope("t"), appends={"log": ["a"], "journal": ["j"]})
    await store.append("t", "log", ["b", "c"])
    assert await store.pop("t", "log") == "c"
    await store.append("t", "log", ["d"])
    await store.clear_log("t", "log")
    await store.append("t", "log", ["e"])
    head = await store.put(
        envelope("t", parent=head), appends={"log": ["f"], "journal": ["k"]}, clear_logs=["log"]
    )
    await store.put(envelope("t", parent=head), appends={"journal": ["l"]}, clear_logs=["journal"])
    assert await store.read_log("t", "log") == ["f"]
    assert await store.read_log("t", "journal") == ["l"]
    assert not [r for r in caplog.records if "sealing again" in r.getMessage()]


async def test_a_store_that_resumes_a_thread_seals_its_first_write_where_it_lands(
    raw: Raw, caplog: pytest.LogCaptureFixture
) -> None:
    """Another store object wrote the thread: reading its head says where the logs stand."""
    caplog.set_level(logging.DEBUG, logger="agent_persist")
    writer = await sealed_store(raw)
    head = await writer.put(envelope("t"), appends={"log": ["a", "b"], "journal": ["j"]})
    await writer.put(envelope("t", parent=head), appends={"log": ["c"]}, clear_logs=["journal"])
    resumed = await sealed_store(raw)
    head = await resumed.get("t")
    await resumed.put(envelope("t", parent=head), appends={"log": ["d"], "journal": ["k"]})
    assert await writer.read_log("t", "log") == ["a", "b", "c", "d"]
    assert await writer.read_log("t", "journal") == ["k"]
    assert not [r for r in caplog.records if "sealing again" in r.getMessage()]


async def test_a_write_refused_every_time_is_a_conflict_and_writes_nothing(
    raw: Raw, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await sealed_store(raw)
    await store.append("t", "log", ["kept"])
    before = await raw.dump()

    async def always_moved(*args: Any, **kwargs: Any) -> None:
        raise PositionsMoved({"log": 1_000_000})

    monkeypatch.setattr(store, "_append", always_moved)
    monkeypatch.setattr(store, "_put", always_moved)
    with pytest.raises(ConflictError, match="other writers kept appending"):
        await store.append("t", "log", ["refused"])
    with pytest.raises(ConflictError, match="other writers kept appending"):
        await store.put(envelope("t"), appends={"log": ["refused"]})
    assert await raw.dump() == before


def test_a_store_shared_by_threads_with_their_own_loops() -> None:
    """Writes in one thread's loop while another deletes threads: no error escapes."""
    store = MemoryStore(
        encryption=Encryption(KeyRing({"k": KEY}, primary="k"), key_store=MemoryStore())
    )
    stop = threading.Event()
    failures: list[BaseException] = []

    async def write() -> None:
        n = 0
        while not stop.is_set():
            await store.append(f"w{n % 500}", "log", ["x"])
            n += 1

    def writer() -> None:
        try:
            asyncio.run(write())
        except BaseException as exc:
            failures.append(exc)

    async def delete() -> None:
        for n in range(2000):
            await store.delete_thread(f"w{n % 500}")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        asyncio.run(delete())
    finally:
        stop.set()
        thread.join()
    assert failures == []
