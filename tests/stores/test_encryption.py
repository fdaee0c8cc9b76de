"""Encryption at rest on every store: sealing, tampering, wrong keys, shredding, rotation.

Every test runs on memory, SQLite, PostgreSQL and Redis, opened by URL with the default key
store (the same back end under namespace ``<namespace>.keys``), and reads the raw storage
around the store (:mod:`encryption_raw`) to prove what is and is not stored.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from encryption_raw import BACKENDS, Raw, open_raw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_persist.crypto import Encryption, KeyRing, rekey
from agent_persist.errors import (
    AgentPersistError,
    CodecError,
    DecryptionError,
    EncryptionError,
    InvalidPayloadError,
    LeaseLostError,
    ShreddedThreadError,
    UnknownKeyError,
)
from agent_persist.stores import MemoryStore, open_store
from agent_persist.stores._positions import PositionsMoved
from agent_persist.stores._records import encode_checkpoint
from agent_persist.stores.base import BaseStore
from agent_persist.testing.conformance import envelope

CANARY = "CANARY-7f3e-do-not-store-in-clear"
KEY_A = os.urandom(32)
KEY_B = os.urandom(32)


def ring(**keys: bytes) -> KeyRing:
    """A ring of the keys given, the first one primary."""
    return KeyRing(keys, primary=next(iter(keys)))


@pytest.fixture(params=BACKENDS)
async def raw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Raw]:
    async for value in open_raw(request.param, request, tmp_path):
        yield value


async def sealed_store(raw: Raw, keys: KeyRing | None = None, **options: Any) -> BaseStore:
    encryption = Encryption(keys or ring(a=KEY_A), **options)
    return await raw.open(encryption=encryption)


async def write_thread(store: BaseStore, thread_id: str, marker: str = CANARY) -> Any:
    """Two checkpoints, a transcript and a journal, every value holding ``marker``."""
    first = await store.put(
        envelope(thread_id, payload={"secret": marker}),
        appends={"transcript": [{"role": "user", "content": marker}, marker]},
    )
    await store.append(thread_id, "$journal", [{"call": "tool", "output": marker}])
    return await store.put(
        envelope(thread_id, parent=first, payload={"secret": marker, "n": 2}),
        appends={"transcript": [{"role": "assistant", "content": marker}]},
    )


# -- round trip and what is stored -------------------------------------------------------------


async def test_round_trip_of_checkpoints_and_logs(raw: Raw) -> None:
    store = await sealed_store(raw)
    head = await write_thread(store, "t")
    assert await store.get("t") == head
    listed = await store.list_checkpoints("t")
    assert listed[0].checkpoint_id == head.checkpoint_id
    transcript = [
        {"role": "user", "content": CANARY},
        CANARY,
        {"role": "assistant", "content": CANARY},
    ]
    assert await store.read_log("t", "transcript") == transcript
    assert await store.read_log("t", "transcript", start=1, stop=2) == [CANARY]
    assert await store.tail("t", "transcript", 1) == transcript[-1:]
    lines = await store.read_log_lines("t", "transcript")
    assert [json.loads(line) for line in lines.splitlines()] == transcript
    assert (
        await store.tail_lines("t", "$journal", 5)
        == b'{"call":"tool","output":"' + CANARY.encode() + b'"}'
    )
    assert await store.read_logs("t", ["transcript", "$journal"], at=head) == {
        "transcript": transcript,
        "$journal": [{"call": "tool", "output": CANARY}],
    }
    assert await store.pop("t", "$journal") == {"call": "tool", "output": CANARY}
    forked = await store.fork("t", "copy")
    assert forked.payload == head.payload
    assert await store.read_log("copy", "transcript") == transcript
    # Another store opened on the same data with the same ring reads it all back.
    again = await sealed_store(raw)
    assert (await again.get("copy")).payload == head.payload


async def test_the_canary_never_reaches_the_raw_storage(raw: Raw) -> None:
    store = await sealed_store(raw)
    await write_thread(store, "t")
    await store.fork("t", "forked")
    await store.append("forked", "$journal", [CANARY])
    dump = await raw.dump()
    assert CANARY.encode() not in dump
    assert CANARY.encode().hex().encode() not in dump
    assert b"aes256gcm" in dump  # the sealed frames are there: the dump is the real data
    # The same writes in clear do show it: the dump would catch a leak.
    clear = await raw.open(namespace="clear")
    await write_thread(clear, "t")
    assert CANARY.encode() in await raw.dump()


# -- tampering --------------------------------------------------------------------------------


async def test_swapped_payloads_and_items_fail_to_open_naming_the_thread(raw: Raw) -> None:
    store = await sealed_store(raw)
    a = await write_thread(store, "thread-a", "a")
    b = await write_thread(store, "thread-b", "b")
    # A payload copied to another thread's checkpoint.
    await raw.set_payload(
        store, "thread-a", a.checkpoint_id, await raw.payload(store, "thread-b", b.checkpoint_id)
    )
    before = await raw.dump()
    with pytest.raises(DecryptionError, match="thread-a"):
        await store.get("thread-a")
    assert await raw.dump() == before
    # A payload copied to another checkpoint of the same thread.
    assert b.parent_id is not None
    await raw.set_payload(
        store, "thread-b", b.parent_id or "", await raw.payload(store, "thread-b", b.checkpoint_id)
    )
    with pytest.raises(DecryptionError, match="thread-b"):
        await store.get("thread-b", b.parent_id)
    # An item copied from another thread, and from another log of the same thread.
    other = (await raw.items(store, "thread-b", "transcript"))[0]
    await raw.set_item(store, "thread-a", "transcript", 0, other)
    with pytest.raises(DecryptionError, match="thread-a"):
        await store.read_log("thread-a", "transcript")
    journal = (await raw.items(store, "thread-b", "$journal"))[0]
    await raw.set_item(store, "thread-b", "transcript", 1, journal)
    with pytest.raises(DecryptionError, match="thread-b"):
        await store.read_log("thread-b", "transcript")


async def test_items_swapped_within_their_log_fail_to_open_naming_the_thread(raw: Raw) -> None:
    store = await sealed_store(raw)
    head = await store.put(envelope("thread-swap"), appends={"log": ["first"]})
    await store.append("thread-swap", "log", ["second", "third"])
    head = await store.put(envelope("thread-swap", parent=head))  # sees the three items
    assert await store.read_log_lines("thread-swap", "log") == b'"first"\n"second"\n"third"'
    first, second, _ = await raw.items(store, "thread-swap", "log")
    await raw.set_item(store, "thread-swap", "log", 0, second)  # the items and their mirror
    await raw.set_item(store, "thread-swap", "log", 1, first)
    before = await raw.dump()
    reads = [
        lambda: store.read_log("thread-swap", "log"),
        lambda: store.read_log("thread-swap", "log", start=1),
        lambda: store.read_log_lines("thread-swap", "log"),
        lambda: store.tail("thread-swap", "log", 2),
        lambda: store.tail_lines("thread-swap", "log", 3),
        lambda: store.read_log("thread-swap", "log", at=head),
        lambda: store.read_logs("thread-swap", ["log"], at=head),
    ]
    for read in reads:
        with pytest.raises(DecryptionError, match="thread-swap"):
            await read()
    assert await raw.dump() == before
    assert await store.pop("thread-swap", "log") == "third"  # an item left in its place
    with pytest.raises(DecryptionError, match="thread-swap"):
        await store.pop("thread-swap", "log")
    assert await store.log_length("thread-swap", "log") == 2


async def test_interleaved_writers_seal_every_item_where_it_lands(raw: Raw) -> None:
    a, b = await sealed_store(raw), await sealed_store(raw)
    head = await a.put(envelope("t"), appends={"log": ["a0"]})
    await b.append("t", "log", ["b0", "b1"])  # a's next write was sealed for seq 2: moved
    head = await a.put(envelope("t", parent=head), appends={"log": ["a1"], "other": ["o"]})
    await b.append("t", "log", ["b2"])
    await a.append("t", "log", ["a2"])
    head = await b.put(envelope("t", parent=head), appends={"log": ["b3"]}, clear_logs=["other"])
    await a.put(envelope("t", parent=head), appends={"other": ["o2"]}, clear_logs=["other", "log"])
    assert await b.read_log("t", "other") == ["o2"]
    await b.append("t", "log", ["b4"])

    async def writer(store: BaseStore, name: str) -> None:
        for n in range(8):
            await store.append("t", "log", [f"{name}{n}", f"{name}{n}'"])

    await asyncio.gather(writer(a, "x"), writer(b, "y"))
    for reader in (a, b, await sealed_store(raw)):
        items = await reader.read_log("t", "log")
        assert items[0] == "b4"
        assert [i for i in items if str(i).startswith("x")] == [
            f"x{n}{tick}" for n in range(8) for tick in ("", "'")
        ]
        assert [i for i in items if str(i).startswith("y")] == [
            f"y{n}{tick}" for n in range(8) for tick in ("", "'")
        ]
        lines = await reader.read_log_lines("t", "log")
        assert [json.loads(line) for line in lines.splitlines()] == items
        assert await reader.tail("t", "log", 3) == items[-3:]


async def test_a_write_sealed_for_other_positions_is_refused_whole(raw: Raw) -> None:
    store = await sealed_store(raw)
    head = await write_thread(store, "t")  # transcript: seqs 1 to 3; $journal: 1
    before = await raw.dump()
    bad = [b"json:1"]
    with pytest.raises(PositionsMoved) as moved:
        await store._append("t", "transcript", bad, None, 3)  # pyright: ignore[reportPrivateUsage]
    assert moved.value.first == {"transcript": 4}
    nxt = envelope("t", parent=head)
    encoded = encode_checkpoint(nxt, store.codec)
    with pytest.raises(PositionsMoved) as moved:
        await store._put(  # pyright: ignore[reportPrivateUsage]
            nxt,
            encoded,
            {"transcript": bad, "$journal": bad, "new": bad},
            None,
            ["transcript", "empty"],
            {"transcript": 4, "$journal": 2, "new": 1},  # transcript is cleared first: 5
        )
    assert moved.value.first == {"transcript": 5, "$journal": 2, "new": 1}
    assert await raw.dump() == before
    lease = await store.acquire_lease("t", "me", ttl=timedelta(minutes=1))
    await store.release_lease(lease)
    with pytest.raises(LeaseLostError):  # the lease is checked first
        await store._append("t", "transcript", bad, lease, 3)  # pyright: ignore[reportPrivateUsage]


@pytest.mark.parametrize(
    "edit",
    [
        {"metadata": {"owner": "mallory"}},
        {"status": "done"},
        {"kind": "another.kind"},
        {"schema_version": 7},
    ],
    ids=["metadata", "status", "kind", "schema_version"],
)
async def test_an_edited_header_fails_to_open(raw: Raw, edit: dict[str, Any]) -> None:
    store = await sealed_store(raw)
    head = await write_thread(store, "t")
    header = json.loads(await raw.header(store, "t", head.checkpoint_id))
    header.update(edit)
    await raw.set_header(store, "t", head.checkpoint_id, json.dumps(header, sort_keys=True))
    with pytest.raises(DecryptionError, match="'t'"):
        await store.get("t")


async def test_a_flipped_ciphertext_byte_fails_to_open(raw: Raw) -> None:
    store = await sealed_store(raw)
    head = await write_thread(store, "t")
    payload = bytearray(await raw.payload(store, "t", head.checkpoint_id))
    payload[-1] ^= 1
    await raw.set_payload(store, "t", head.checkpoint_id, bytes(payload))
    with pytest.raises(DecryptionError, match="'t'"):
        await store.get("t")
    item = bytearray((await raw.items(store, "t", "transcript"))[1])
    item[len(item) // 2 + 8] ^= 0x80
    await raw.set_item(store, "t", "transcript", 1, bytes(item))
    with pytest.raises(DecryptionError, match="'t'"):
        await store.read_log("t", "transcript")


# -- keys -------------------------------------------------------------------------------------


async def test_a_wrong_key_and_an_unknown_key_id_are_typed_errors(raw: Raw) -> None:
    store = await sealed_store(raw)
    await write_thread(store, "t")
    before = await raw.dump()
    wrong = await sealed_store(raw, ring(a=KEY_B))
    with pytest.raises(DecryptionError, match="'t'"):
        await wrong.get("t")
    with pytest.raises(DecryptionError, match="'t'"):
        await wrong.read_log("t", "transcript")
    unknown = await sealed_store(raw, ring(b=KEY_B))
    with pytest.raises(UnknownKeyError, match=r"'t'.*'a'"):
        await unknown.read_log("t", "transcript")
    with pytest.raises(UnknownKeyError):
        await unknown.append("t", "transcript", ["more"])
    assert await raw.dump() == before


async def test_two_stores_with_different_keys_in_one_process(raw: Raw) -> None:
    first = await raw.open(namespace="one", encryption=Encryption(ring(a=KEY_A)))
    second = await raw.open(namespace="two", encryption=Encryption(ring(b=KEY_B)))
    for turn in range(3):
        await first.append("t", "log", [f"one-{turn}"])
        await second.append("t", "log", [f"two-{turn}"])
    assert await first.read_log("t", "log") == ["one-0", "one-1", "one-2"]
    assert await second.read_log("t", "log") == ["two-0", "two-1", "two-2"]


async def test_clear_data_stays_readable_after_turning_encryption_on(raw: Raw) -> None:
    clear = await raw.open()
    old = await clear.put(envelope("t", payload={"old": 1}), appends={"log": ["old"]})
    store = await sealed_store(raw)
    assert (await store.get("t")).payload == {"old": 1}
    await store.put(envelope("t", parent=old, payload={"new": 2}), appends={"log": ["new"]})
    assert await store.read_log("t", "log") == ["old", "new"]
    assert (await store.get("t", old.checkpoint_id)).payload == {"old": 1}
    items = await raw.items(store, "t", "log")
    assert items[0].startswith(b"json:")
    assert items[1].startswith(b"json+aes256gcm:")


# -- shredding --------------------------------------------------------------------------------


async def test_delete_thread_shreds_any_copy_of_the_data(raw: Raw) -> None:
    store = await sealed_store(raw)
    await write_thread(store, "t")
    copy = await raw.snapshot(store, "t")
    assert await store.delete_thread("t")
    await raw.restore(store, copy)  # a backup of the data, put back
    for reader in (store, await sealed_store(raw)):
        with pytest.raises(ShreddedThreadError, match="'t'"):
            await reader.get("t")
        with pytest.raises(ShreddedThreadError, match="'t'"):
            await reader.read_log("t", "transcript")


async def test_a_legal_hold_keeps_the_key_until_shred_thread(raw: Raw) -> None:
    store = await sealed_store(raw, shred_on_delete=False)
    head = await write_thread(store, "t")
    copy = await raw.snapshot(store, "t")
    assert await store.delete_thread("t")
    await raw.restore(store, copy)
    assert await store.get("t") == head
    assert await store.shred_thread("t")
    assert not await store.shred_thread("t")
    with pytest.raises(ShreddedThreadError):
        await (await sealed_store(raw)).get("t")


# -- rotation ---------------------------------------------------------------------------------


async def test_rekey_rewraps_every_data_key_with_dry_run_and_resume(raw: Raw) -> None:
    old = await sealed_store(raw)
    for index in range(4):
        await write_thread(old, f"t{index}")
    rotated = await sealed_store(raw, KeyRing({"a": KEY_A, "b": KEY_B}, primary="b"))
    before = await raw.dump()
    report = await rekey(rotated, dry_run=True)
    assert (report.threads, report.rewrapped, report.dry_run) == (4, 4, True)
    assert await raw.dump() == before

    class Interrupted(Exception):
        pass

    def stop_after_two(done: int, total: int) -> None:
        assert total == 4
        if done == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        await rekey(rotated, progress=stop_after_two)
    resumed = await rekey(rotated)
    assert (resumed.rewrapped, resumed.already_primary) == (2, 2)
    assert (await rekey(rotated)).rewrapped == 0
    # Only the new primary is needed now; data was never rewritten.
    only_b = await sealed_store(raw, ring(b=KEY_B))
    for index in range(4):
        assert (await only_b.get(f"t{index}")).payload == {"secret": CANARY, "n": 2}
    with pytest.raises(UnknownKeyError, match=r"'t0'.*'b'"):
        await (await sealed_store(raw, ring(a=KEY_A))).get("t0")


async def test_new_threads_use_the_new_primary(raw: Raw) -> None:
    rotated = await sealed_store(raw, KeyRing({"a": KEY_A, "b": KEY_B}, primary="b"))
    await write_thread(rotated, "fresh")
    assert (await (await sealed_store(raw, ring(b=KEY_B))).get("fresh")).payload["n"] == 2


# -- the API, once ----------------------------------------------------------------------------


def test_key_ring_from_env_and_callback() -> None:
    import base64

    env = {
        "APP_KEY_one": base64.b64encode(KEY_A).decode(),
        "APP_KEY_two": base64.b64encode(KEY_B).decode(),
        "APP_PRIMARY_KEY": "two",
    }
    from_env = KeyRing.from_env("APP_", environ=env)
    assert from_env.primary_key_id == "two"
    with pytest.raises(ValueError, match="PRIMARY_KEY"):
        KeyRing.from_env("APP_", environ={k: v for k, v in env.items() if "PRIMARY" not in k})
    with pytest.raises(ValueError, match="base64"):
        KeyRing.from_env("APP_", environ={"APP_KEY_x": "not base64!"})
    with pytest.raises(ValueError, match="32 bytes"):
        KeyRing({"short": b"123"}, primary="short")
    asked: list[str] = []

    def lookup(key_id: str) -> bytes | None:
        asked.append(key_id)
        return KEY_A if key_id == "a" else None

    assert KeyRing.from_callback(lookup, primary="a").primary_key_id == "a"
    assert asked == []


async def test_key_ring_from_callback_opens_data_and_unknown_ids_are_refused() -> None:
    store = MemoryStore(
        encryption=Encryption(
            KeyRing.from_callback(lambda key_id: KEY_A if key_id == "a" else None, primary="a"),
            key_store=MemoryStore(),
        )
    )
    await store.append("t", "log", ["x"])
    assert await store.read_log("t", "log") == ["x"]
    missing = MemoryStore(
        encryption=Encryption(
            KeyRing.from_callback(lambda key_id: None, primary="zz"), key_store=MemoryStore()
        )
    )
    with pytest.raises(UnknownKeyError, match="'zz'"):
        await missing.append("t", "log", ["x"])


async def test_a_key_store_at_another_url(tmp_path: Path) -> None:
    keys_url = f"sqlite:///{tmp_path / 'keys.db'}"
    store = open_store(
        f"sqlite:///{tmp_path / 'data.db'}",
        encryption=Encryption(ring(a=KEY_A), key_store=keys_url),
    )
    async with store:
        await store.append("t", "log", [CANARY])
        assert await store.read_log("t", "log") == [CANARY]
    async with open_store(keys_url) as keys:
        assert [info.thread_id for info in await keys.list_threads()] == ["t"]
    async with open_store(f"sqlite:///{tmp_path / 'data.db'}") as data:
        assert [info.thread_id for info in await data.list_threads()] == ["t"]
        with pytest.raises(CodecError, match="sealed by an encrypted store"):
            await data.read_log("t", "log")


def test_bad_encryption_arguments() -> None:
    with pytest.raises(TypeError, match="keys"):
        Encryption("secret")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key_store"):
        MemoryStore(encryption=Encryption(ring(a=KEY_A)))
    with pytest.raises(TypeError, match="encryption"):
        MemoryStore(encryption="secret")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key_store"):
        Encryption(ring(a=KEY_A), key_store=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="shred_on_delete"):
        Encryption(ring(a=KEY_A), shred_on_delete="no")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="primary"):
        KeyRing({"a": KEY_A}, primary="b")


async def test_rekey_and_shred_refuse_a_clear_store() -> None:
    store = MemoryStore()
    with pytest.raises(ValueError, match="encryption"):
        await rekey(store)
    with pytest.raises(ValueError, match="encryption"):
        await store.shred_thread("t")


# -- fuzz -------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(item=_JSON, position=st.integers(min_value=0), flip=st.integers(1, 255))
async def test_fuzz_a_sealed_item_opens_as_written_or_raises_a_typed_error(
    item: Any, position: int, flip: int
) -> None:
    store = MemoryStore(encryption=Encryption(ring(a=KEY_A), key_store=MemoryStore()))
    await store.append("t", "log", [item])
    assert await store.read_log("t", "log") == [item]
    thread = store._namespaces[store.namespace].threads["t"]  # pyright: ignore[reportPrivateUsage]
    stored = thread.logs["log"].items[0]
    data = bytearray(stored.data)
    data[position % len(data)] ^= flip
    stored.data = bytes(data)
    # A typed error naming the thread, never the item, nor anything else.
    with pytest.raises(AgentPersistError, match="'t'") as raised:
        await store.read_log("t", "log")
    assert isinstance(raised.value, EncryptionError | CodecError)


async def test_a_refused_pop_leaves_the_item(raw: Raw) -> None:
    store = await sealed_store(raw)
    await write_thread(store, "t")
    item = bytearray((await raw.items(store, "t", "transcript"))[-1])
    item[-1] ^= 1
    await raw.set_item(store, "t", "transcript", -1, bytes(item))
    before = await raw.dump()
    with pytest.raises(DecryptionError, match="'t'"):
        await store.pop("t", "transcript")
    assert await raw.dump() == before
    assert await store.log_length("t", "transcript") == 3


async def test_a_refused_write_makes_no_data_key(raw: Raw) -> None:
    store = await sealed_store(raw)
    await store.append("other", "log", ["x"])  # the key store exists and holds a key
    before = await raw.dump()
    with pytest.raises(InvalidPayloadError):
        await store.append("new", "log", ["fine", float("nan")])
    with pytest.raises(InvalidPayloadError):
        await store.put(envelope("new"), appends={"log": [{1, 2}]})
    await store.append("new", "log", [])
    assert await raw.dump() == before
    assert await store.list_threads() != []


class _FakeKMS:
    """A key-management service double: wraps by key id, as a KMS client would."""

    def __init__(self, *, short: bool = False, broken: bool = False) -> None:
        self.inner = ring(kms=KEY_A)
        self.short = short
        self.broken = broken

    @property
    def primary_key_id(self) -> str:
        return "kms"

    async def wrap(self, key_id: str, data_key: bytes, *, associated_data: bytes) -> bytes:
        return await self.inner.wrap(key_id, data_key, associated_data=associated_data)

    async def unwrap(self, key_id: str, wrapped: bytes, *, associated_data: bytes) -> bytes:
        if self.broken:
            raise ConnectionError("the KMS is down")
        key = await self.inner.unwrap(key_id, wrapped, associated_data=associated_data)
        return key[:16] if self.short else key


async def test_a_key_management_service_holds_the_primary() -> None:
    keys = MemoryStore()
    store = MemoryStore(encryption=Encryption(_FakeKMS(), key_store=keys))
    await store.append("t", "log", [CANARY])
    assert await store.read_log("t", "log") == [CANARY]
    for kms, problem in ((_FakeKMS(short=True), "16 bytes"), (_FakeKMS(broken=True), "down")):
        other = MemoryStore(
            shared=store._namespaces,  # pyright: ignore[reportPrivateUsage]
            encryption=Encryption(kms, key_store=keys),
        )
        with pytest.raises(DecryptionError, match=f"'t'.*{problem}"):
            await other.read_log("t", "log")
