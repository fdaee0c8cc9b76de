"""Turning encryption on for an existing store: ``seal`` seals every clear value in place.

Every test runs on memory, SQLite, PostgreSQL and Redis and reads the raw storage
(:mod:`encryption_raw`): nothing stays in clear, and nothing that reads back changes.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from encryption_raw import BACKENDS, Raw, open_raw

from agent_persist.crypto import Encryption, KeyRing, seal
from agent_persist.envelope import Envelope
from agent_persist.errors import DecryptionError
from agent_persist.stores.base import BaseStore
from agent_persist.testing.conformance import envelope

CANARY = "CANARY-seal-5d1c-not-in-clear"
KEY = os.urandom(32)


@pytest.fixture(params=BACKENDS)
async def raw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Raw]:
    async for value in open_raw(request.param, request, tmp_path):
        yield value


class _Ring(KeyRing):
    """A key ring that runs ``during_wrap`` when a data key is made: mid-``seal_thread``."""

    during_wrap: Any = None

    async def wrap(self, key_id: str, data_key: bytes, *, associated_data: bytes) -> bytes:
        if self.during_wrap is not None:
            await self.during_wrap()
        return await super().wrap(key_id, data_key, associated_data=associated_data)


def _ring() -> _Ring:
    return _Ring({"k": KEY}, primary="k")


async def _write_clear(store: BaseStore) -> list[Envelope]:
    """Two threads in clear: checkpoints, a popped item older checkpoints see, a session."""
    first = await store.put(
        envelope("t", payload={"secret": CANARY}),
        appends={"transcript": [CANARY, {"content": CANARY}]},
    )
    await store.pop("t", "transcript")  # still seen by ``first``: kept, marked removed
    second = await store.put(
        envelope("t", parent=first, payload={"secret": CANARY, "n": 2}),
        appends={"transcript": [f"{CANARY} 2"]},
    )
    await store.append("session", "items", [{"role": "user", "content": CANARY}] * 3)
    return [first, second]


async def _read_all(store: BaseStore) -> Any:
    checkpoints = await store.list_checkpoints("t")
    return (
        checkpoints,
        [await store.read_log("t", "transcript", at=c) for c in checkpoints],
        await store.read_log("t", "transcript"),
        await store.read_log("session", "items"),
    )


async def test_seal_seals_every_clear_value_in_place_resumably(raw: Raw) -> None:
    clear = await raw.open()
    written = await _write_clear(clear)
    before = await _read_all(clear)
    headers = [await raw.header(clear, "t", c.checkpoint_id) for c in written]
    assert CANARY.encode() in await raw.dump()

    store = await raw.open(encryption=Encryption(_ring()))
    dump = await raw.dump()
    dry = await seal(store, dry_run=True)
    assert (dry.threads, dry.threads_sealed, dry.values, dry.dry_run) == (2, 2, 8, True)
    assert await raw.dump() == dump

    class Interrupted(Exception):
        pass

    def stop_after_one(done: int, total: int) -> None:
        assert total == 2
        if done == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        await seal(store, progress=stop_after_one)
    resumed = await seal(store)
    # The interrupted run sealed one thread ("t": 2 payloads, 3 items; or "session": 3).
    assert resumed.threads_sealed == 1
    assert resumed.values in (3, 5)
    again = await seal(store)
    assert (again.threads_sealed, again.values) == (0, 0)

    assert CANARY.encode() not in await raw.dump()
    assert await _read_all(store) == before
    assert await _read_all(await raw.open(encryption=Encryption(_ring()))) == before
    assert [await raw.header(store, "t", c.checkpoint_id) for c in written] == headers
    for data in await raw.items(store, "t", "transcript"):
        assert data.startswith(b"json+aes256gcm:")


async def test_seal_never_overwrites_a_concurrent_writer(raw: Raw) -> None:
    clear = await raw.open()
    await clear.append("t", "log", ["a", "b", "c"])
    ring = _ring()
    store = await raw.open(encryption=Encryption(ring))

    async def concurrent_writer() -> None:
        ring.during_wrap = None
        await clear.pop("t", "log")  # "c" goes; its stale replacement must not come back
        await clear.append("t", "log", ["late"])

    ring.during_wrap = concurrent_writer
    report = await seal(store)
    assert report.values == 2  # "c" was read, but had gone when its turn came
    assert await store.read_log("t", "log") == ["a", "b", "late"]
    items = await raw.items(store, "t", "log")
    assert [item[:5] for item in items] == [b"json+", b"json+", b"json:"]  # "late" in clear
    assert (await seal(store)).values == 1  # the next run seals it
    assert await store.read_log("t", "log") == ["a", "b", "late"]
    assert b"late" not in await raw.dump()


async def test_seal_refuses_a_clear_store(raw: Raw) -> None:
    store = await raw.open()
    with pytest.raises(ValueError, match="encryption"):
        await seal(store)
    with pytest.raises(ValueError, match="encryption"):
        await store.seal_thread("t")


async def test_seal_binds_items_sealed_before_positions_were(raw: Raw) -> None:
    store = await raw.open(encryption=Encryption(_ring()))
    await store.append("t", "log", ["a", "b", "c"])
    bound = store.codec.for_log("t", "log")
    unbound = [bound.seal_bytes(b'"a"'), bound.seal_bytes(b'"b"'), bound.seal_bytes(b'"c"')]
    for index, data in enumerate(unbound):  # as a release that bound no position sealed them
        await raw.set_item(store, "t", "log", index, data)
    assert await store.read_log_lines("t", "log") == b'"a"\n"b"\n"c"'
    assert await store.seal_thread("t", dry_run=True) == 3

    assert await store.seal_thread("t") == 3
    assert await store.seal_thread("t") == 0
    dump = await raw.dump()
    assert not any(data in dump for data in unbound)  # items and any copy (the Redis mirror)
    assert await store.read_log("t", "log") == ["a", "b", "c"]
    assert await store.read_log_lines("t", "log") == b'"a"\n"b"\n"c"'
    first, second, _ = await raw.items(store, "t", "log")
    await raw.set_item(store, "t", "log", 0, second)  # bound now: a swap fails to open
    await raw.set_item(store, "t", "log", 1, first)
    with pytest.raises(DecryptionError, match="'t'"):
        await store.read_log_lines("t", "log")
