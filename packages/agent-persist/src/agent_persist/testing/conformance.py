"""The behaviour every store must have, as a pytest class to subclass.

    class TestMyStore(StoreConformance):
        @pytest.fixture
        async def store_factory(self, tmp_path):
            stores = []
            async def make(**options):
                store = MyStore(..., **options)   # namespace, ttl, keep_last, codec
                await store.setup()
                stores.append(store)
                return store
            yield make
            for store in stores:
                await store.close()

        @pytest.fixture
        def tamper(self):
            async def overwrite(store, thread_id, checkpoint_id, *, header=None, payload=None):
                ...   # write raw bytes over the stored header and/or payload
            return overwrite

Every store made by one factory shares one isolated backend (its own file, schema or key
prefix). The suite covers history, logs, atomicity, optimistic concurrency under real
concurrent writers, leases, retention, hostile identifiers and corrupt data.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import zlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol

import pytest

from .._json import INT64_MAX, JSON, MAX_JSON_DEPTH, canonical_json
from ..codecs import MAX_DECODED_SIZE, PayloadCodec, ZlibCodec
from ..envelope import Envelope, Producer, Status
from ..errors import (
    AgentPersistError,
    CheckpointNotFoundError,
    ChecksumMismatchError,
    CodecError,
    ConflictError,
    CorruptCheckpointError,
    FutureVersionError,
    InvalidPayloadError,
    LeaseHeldError,
    LeaseLostError,
    ThreadNotFoundError,
)
from ..stores._records import encode_checkpoint
from ..stores.base import BaseStore, Lease
from .bad_input import BAD_INPUTS, BAD_STORE_OPTIONS, deep, refusal, seed, snapshot

__all__ = ["HOSTILE_IDS", "StoreConformance", "StoreFactory", "Tamper"]


class StoreFactory(Protocol):
    """Makes a set-up store on the test's isolated backend."""

    def __call__(
        self,
        *,
        namespace: str = "default",
        ttl: timedelta | None = None,
        keep_last: int | None = None,
        codec: PayloadCodec | None = None,
    ) -> Awaitable[BaseStore]: ...


Tamper = Callable[..., Awaitable[None]]
"""``await tamper(store, thread_id, checkpoint_id, header=str | None, payload=bytes | None)``."""

HOSTILE_IDS: tuple[str, ...] = (
    "plain",
    'it\'s "quoted"',
    "100%",
    "100_",
    "1000",
    "*",
    "a*",
    "?",
    "[a-z]",
    "{tag}",
    "}{",
    "a:b:c",
    "a:b",
    "line\nbreak",
    "tab\tand\r",
    "\\backslash\\",
    "'; DROP TABLE threads; --",
    "ünïcødé 🤖 线程",
    "$.path",
    " ",
    "x" * 1024,
)
"""Ids that break stores which build queries, keys or patterns from strings."""

PRODUCER = Producer(package="agent-persist-conformance", package_version="1")


def envelope(
    thread_id: str = "thread",
    *,
    parent: Envelope | None = None,
    payload: Any = None,
    metadata: dict[str, Any] | None = None,
    status: Status = Status.RUNNING,
) -> Envelope:
    """A checkpoint for ``thread_id`` following ``parent``."""
    body: JSON = payload if payload is not None else {"n": 0 if parent is None else parent.step + 1}
    if parent is None:
        return Envelope.create(
            kind="conformance.test",
            schema_version=1,
            thread_id=thread_id,
            payload=body,
            producer=PRODUCER,
            metadata=metadata,
            status=status,
        )
    changes: dict[str, Any] = {"status": status}
    if metadata is not None:
        changes["metadata"] = metadata
    return parent.next(payload=body, **changes)


@functools.cache
def _zlib_bomb() -> bytes:
    """A zlib stream a thousandth of the size it expands to: more than the decoding limit."""
    inflater = zlib.compressobj(9)
    chunk = b" " * 2**20
    parts = [inflater.compress(chunk) for _ in range(MAX_DECODED_SIZE // len(chunk) + 1)]
    return b"".join([*parts, inflater.flush()])


class _UnreadableCodec:
    """A codec that writes what nothing can read back: a damaged item, on any store."""

    name = "conformance-unreadable"

    def encode(self, data: bytes) -> bytes:
        return data

    def decode(self, data: bytes) -> bytes:
        raise ValueError("damaged")


def deep_text(depth: int) -> str:
    """JSON text of arrays nested ``depth`` deep."""
    return "[" * depth + "]" * depth


def same(a: Envelope, b: Envelope) -> bool:
    """Equal in everything but the log versions, which the store fills in."""
    return a.model_dump(exclude={"logs"}) == b.model_dump(exclude={"logs"})


class StoreConformance:
    """Subclass it, define ``store_factory`` and ``tamper``; every test then runs on your store."""

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        """Override: make stores on one isolated backend (see the module docstring)."""
        raise NotImplementedError("define the store_factory fixture in the subclass")

    @pytest.fixture
    def tamper(self) -> Tamper:
        """Override: overwrite a stored checkpoint's raw header and/or payload."""
        raise NotImplementedError("define the tamper fixture in the subclass")

    @pytest.fixture
    async def store(self, store_factory: StoreFactory) -> BaseStore:
        """A store in the default namespace."""
        return await store_factory()

    async def chain(
        self, store: BaseStore, thread_id: str, count: int, *, logs: bool = True
    ) -> list[Envelope]:
        """Write ``count`` checkpoints, each appending one transcript message."""
        saved: list[Envelope] = []
        parent: Envelope | None = None
        for index in range(count):
            appends = {"transcript": [{"turn": index}]} if logs else None
            parent = await store.put(envelope(thread_id, parent=parent), appends=appends)
            saved.append(parent)
        return saved

    # -- history -------------------------------------------------------------------------

    async def test_put_then_get_round_trips_every_field(self, store: BaseStore) -> None:
        original = envelope(
            payload={"text": "héllo", "nested": {"b": [1, 2.5, None, True]}, "a": ""},
            metadata={"user": "ada", "tries": 3, "flag": False},
            status=Status.INTERRUPTED,
        ).replace(fingerprint="sha256:abc", stop_reason="approval needed")
        saved = await store.put(original)
        assert same(saved, original)
        loaded = await store.get("thread")
        assert same(loaded, original)
        assert loaded.logs == saved.logs == {}
        assert loaded.created_at == original.created_at
        assert (await store.get("thread", original.checkpoint_id)) == loaded

    async def test_history_is_linear_and_listed_newest_first(self, store: BaseStore) -> None:
        saved = await self.chain(store, "thread", 5)
        listed = await store.list_checkpoints("thread")
        assert [e.checkpoint_id for e in listed] == [e.checkpoint_id for e in reversed(saved)]
        assert [e.parent_id for e in listed] == [e.checkpoint_id for e in reversed(saved[:-1])] + [
            None
        ]
        assert (await store.get("thread")).checkpoint_id == saved[-1].checkpoint_id
        middle = await store.get("thread", saved[2].checkpoint_id)
        assert middle.payload == {"n": 2}

    async def test_list_with_limit_before_and_metadata(self, store: BaseStore) -> None:
        parent: Envelope | None = None
        for index in range(6):
            meta: dict[str, Any] = {"even": index % 2 == 0, "i": index, "s": str(index)}
            parent = await store.put(envelope("t", parent=parent, metadata=meta))
        listed = await store.list_checkpoints("t")
        ids = [e.checkpoint_id for e in listed]
        assert [e.checkpoint_id for e in await store.list_checkpoints("t", limit=2)] == ids[:2]
        before = await store.list_checkpoints("t", before=ids[1], limit=3)
        assert [e.checkpoint_id for e in before] == ids[2:5]
        evens = await store.list_checkpoints("t", metadata={"even": True})
        assert [e.metadata["i"] for e in evens] == [4, 2, 0]
        assert [e.metadata["i"] for e in await store.list_checkpoints("t", metadata={"i": 3})] == [
            3
        ]
        # A string "3" is not the number 3, and 1 is not True.
        assert await store.list_checkpoints("t", metadata={"i": "3"}) == []
        assert [
            e.metadata["i"] for e in await store.list_checkpoints("t", metadata={"s": "3"})
        ] == [3]
        assert await store.list_checkpoints("t", metadata={"i": True}) == []
        assert await store.list_checkpoints("t", metadata={"missing": None}) == []
        assert await store.list_checkpoints("t", limit=0) == []
        with pytest.raises(ValueError, match="limit"):
            await store.list_checkpoints("t", limit=-1)

    async def test_missing_things_raise_typed_errors(self, store: BaseStore) -> None:
        with pytest.raises(ThreadNotFoundError, match="nope"):
            await store.get("nope")
        with pytest.raises(ThreadNotFoundError):
            await store.list_checkpoints("nope")
        await self.chain(store, "thread", 1)
        with pytest.raises(CheckpointNotFoundError, match="no-such-id"):
            await store.get("thread", "no-such-id")
        with pytest.raises(CheckpointNotFoundError):
            await store.list_checkpoints("thread", before="no-such-id")
        await store.append("logs-only", "items", [1])
        with pytest.raises(ThreadNotFoundError):
            await store.get("logs-only")

    async def test_list_threads(self, store: BaseStore) -> None:
        await store.put(envelope("a", metadata={"user": "ada"}))
        await asyncio.sleep(0.01)
        await self.chain(store, "b", 3, logs=False)
        await asyncio.sleep(0.01)
        await store.append("c", "session", [{"role": "user"}])
        threads = await store.list_threads()
        assert [t.thread_id for t in threads] == ["c", "b", "a"]
        by_id = {t.thread_id: t for t in threads}
        assert by_id["b"].checkpoint_count == 3
        assert by_id["b"].step == 2
        assert by_id["b"].kind == "conformance.test"
        assert by_id["b"].status is Status.RUNNING
        assert by_id["b"].head_id == (await store.get("b")).checkpoint_id
        assert by_id["a"].metadata == {"user": "ada"}
        assert by_id["c"].head_id is None
        assert by_id["c"].step == -1
        assert [t.thread_id for t in await store.list_threads(metadata={"user": "ada"})] == ["a"]
        assert [t.thread_id for t in await store.list_threads(limit=1)] == ["c"]

    async def test_delete_thread_removes_only_that_thread(self, store: BaseStore) -> None:
        await self.chain(store, "doomed", 3)
        await self.chain(store, "kept", 2)
        await store.append("doomed", "extra", ["x"])
        assert await store.delete_thread("doomed") is True
        assert await store.delete_thread("doomed") is False
        with pytest.raises(ThreadNotFoundError):
            await store.get("doomed")
        assert await store.read_log("doomed", "transcript") == []
        assert await store.read_log("doomed", "extra") == []
        assert [t.thread_id for t in await store.list_threads()] == ["kept"]
        assert await store.read_log("kept", "transcript") == [{"turn": 0}, {"turn": 1}]
        fresh = await store.put(envelope("doomed"))
        assert fresh.logs == {}

    async def test_fork_copies_a_checkpoint_and_its_logs(self, store: BaseStore) -> None:
        saved = await self.chain(store, "source", 4)
        fork = await store.fork("source", "fork", checkpoint_id=saved[1].checkpoint_id)
        assert fork.thread_id == "fork"
        assert fork.parent_id is None
        assert fork.payload == saved[1].payload
        assert fork.metadata["forked_from"] == {
            "thread_id": "source",
            "checkpoint_id": saved[1].checkpoint_id,
        }
        assert await store.read_log("fork", "transcript", at=fork) == [{"turn": 0}, {"turn": 1}]
        await store.put(envelope("fork", parent=fork), appends={"transcript": [{"turn": "f"}]})
        assert await store.read_log("source", "transcript") == [{"turn": i} for i in range(4)]
        assert await store.read_log("fork", "transcript") == [
            {"turn": 0},
            {"turn": 1},
            {"turn": "f"},
        ]
        with pytest.raises(ConflictError):
            await store.fork("source", "fork")

    async def test_namespaces_are_isolated(self, store_factory: StoreFactory) -> None:
        tenant_a = await store_factory(namespace="tenant-a")
        tenant_b = await store_factory(namespace="tenant-b")
        await tenant_a.put(envelope("shared-id", payload={"owner": "a"}))
        await tenant_a.append("shared-id", "log", ["a"])
        with pytest.raises(ThreadNotFoundError):
            await tenant_b.get("shared-id")
        assert await tenant_b.list_threads() == []
        assert await tenant_b.read_log("shared-id", "log") == []
        await tenant_b.put(envelope("shared-id", payload={"owner": "b"}))
        assert (await tenant_a.get("shared-id")).payload == {"owner": "a"}
        assert (await tenant_b.get("shared-id")).payload == {"owner": "b"}
        assert await tenant_b.delete_thread("shared-id")
        assert (await tenant_a.get("shared-id")).payload == {"owner": "a"}

    # -- logs ----------------------------------------------------------------------------

    async def test_list_logs_names_every_log_of_the_thread(self, store: BaseStore) -> None:
        assert await store.list_logs("nobody") == []
        await store.append("session", "items", [1])
        await store.put(envelope("t"), appends={"b": [1], "a": []})
        await store.append("t", "c 'quoted' %_*", [2])
        await store.clear_log("session", "items")
        assert await store.list_logs("session") == ["items"]
        assert set(await store.list_logs("t")) <= {"a", "b", "c 'quoted' %_*"}
        assert {"b", "c 'quoted' %_*"} <= set(await store.list_logs("t"))
        assert await store.list_logs("t") == sorted(await store.list_logs("t"))

    async def test_log_operations(self, store: BaseStore) -> None:
        assert await store.read_log("t", "log") == []
        assert await store.log_length("t", "log") == 0
        assert await store.tail("t", "log", 3) == []
        assert await store.pop("t", "log") is None
        items: list[JSON] = [{"i": i} for i in range(10)]
        await store.append("t", "log", items[:2])
        assert await store.tail("t", "log", 3) == items[:2]
        await store.append("t", "log", items[2:4])
        await store.append("t", "log", [])
        await store.append("t", "log", items[4:])
        assert await store.read_log("t", "log") == items
        assert await store.read_log("t", "log", start=3, stop=6) == items[3:6]
        assert await store.read_log("t", "log", start=8) == items[8:]
        assert await store.read_log("t", "log", start=20) == []
        assert await store.tail("t", "log", 3) == items[-3:]
        assert await store.tail("t", "log", 0) == []
        assert await store.tail("t", "log", 50) == items
        assert await store.log_length("t", "log") == 10
        assert await store.pop("t", "log") == items[-1]
        assert await store.pop("t", "log") == items[-2]
        assert await store.log_length("t", "log") == 8
        await store.append("t", "log", ["after pop"])
        assert await store.tail("t", "log", 2) == [items[7], "after pop"]
        assert await store.read_log("t", "other") == []
        await store.clear_log("t", "log")
        assert await store.read_log("t", "log") == []
        assert await store.pop("t", "log") is None
        with pytest.raises(ValueError, match="non-negative"):
            await store.read_log("t", "log", start=-1)
        with pytest.raises(ValueError, match="non-negative"):
            await store.read_log("t", "log", stop=-2)
        with pytest.raises(ValueError, match="count"):
            await store.tail("t", "log", -1)

    async def test_log_lines_are_the_items_as_json_lines(
        self, store: BaseStore, store_factory: StoreFactory
    ) -> None:
        async def same(**read: Any) -> None:
            tail = read.pop("tail", None)
            if tail is not None:
                lines = await store.tail_lines("t", "log", tail)
                items = await store.tail("t", "log", tail)
            else:
                lines = await store.read_log_lines("t", "log", **read)
                items = await store.read_log("t", "log", **read)
            assert b"\n".join(canonical_json(item) for item in items) == lines

        await same()
        await same(tail=3)
        first = await store.put(envelope("t"), appends={"log": [{"i": 0}, "\u00e9\n", None]})
        zipped = await store_factory(codec=PayloadCodec([ZlibCodec()]))
        await zipped.append("t", "log", [{"zipped": True}])
        await store.append("t", "log", [[1, 2], {"i": 5}])
        for read in ({}, {"start": 1, "stop": 4}, {"start": 9}, {"at": first}, {"tail": 2}):
            await same(**read)
        assert await store.pop("t", "log") == {"i": 5}
        await store.append("t", "log", ["after pop"])
        for read in ({}, {"tail": 1}, {"tail": 50}, {"at": first}):
            await same(**read)
        await store.clear_log("t", "log")
        for read in ({}, {"tail": 2}, {"at": first}):
            await same(**read)

    async def test_checkpoint_sees_logs_as_they_were(self, store: BaseStore) -> None:
        first = await store.put(
            envelope("t"), appends={"transcript": ["m0", "m1"], "agent": [{"ctx": 0}]}
        )
        assert set(first.logs) == {"transcript", "agent"}
        await store.append("t", "transcript", ["m2"])
        second = await store.put(envelope("t", parent=first))
        assert second.logs["transcript"] > first.logs["transcript"]
        assert second.logs["agent"] == first.logs["agent"]
        assert await store.pop("t", "transcript") == "m2"
        assert await store.pop("t", "transcript") == "m1"
        await store.append("t", "transcript", ["new"])
        await store.clear_log("t", "agent")
        assert await store.read_log("t", "transcript", at=first) == ["m0", "m1"]
        assert await store.read_log("t", "transcript", at=second) == ["m0", "m1", "m2"]
        assert await store.read_log("t", "transcript", at=second, start=1, stop=2) == ["m1"]
        assert await store.read_log("t", "agent", at=second) == [{"ctx": 0}]
        assert await store.read_log("t", "transcript") == ["m0", "new"]
        assert await store.read_log("t", "agent") == []
        reloaded = await store.get("t", first.checkpoint_id)
        assert reloaded.logs == first.logs
        assert await store.read_log("t", "transcript", at=reloaded) == ["m0", "m1"]
        assert await store.read_log("t", "not-in-checkpoint", at=first) == []
        other = await store.put(envelope("other"))
        with pytest.raises(ValueError, match="belongs to thread"):
            await store.read_log("t", "transcript", at=other)

    async def test_read_logs_equals_read_log_of_each_log(self, store: BaseStore) -> None:
        first = await store.put(
            envelope("t"), appends={"transcript": ["m0", "m1"], "agent": [{"ctx": 0}]}
        )
        await store.append("t", "transcript", ["m2"])
        second = await store.put(envelope("t", parent=first), appends={"config": [{"c": 1}]})
        await store.pop("t", "transcript")
        await store.clear_log("t", "agent")
        await store.append("t", "transcript", ["later"])
        await store.append("t", "config", [{"c": 2}])
        names = ["transcript", "agent", "config", "unknown"]
        for at in (first, second, await store.get("t", first.checkpoint_id)):
            expected = {name: await store.read_log("t", name, at=at) for name in names}
            assert await store.read_logs("t", names, at=at) == expected
        assert await store.read_logs("t", names, at=second) == {
            "transcript": ["m0", "m1", "m2"],
            "agent": [{"ctx": 0}],
            "config": [{"c": 1}],
            "unknown": [],
        }
        ranges = {"transcript": (1, 3), "agent": (1, None), "config": (0, 0), "unknown": (0, 5)}
        assert await store.read_logs("t", ranges, at=second) == {
            "transcript": ["m1", "m2"],
            "agent": [],
            "config": [],
            "unknown": [],
        }
        assert await store.read_logs("t", [], at=second) == {}
        assert await store.read_logs("t", ["unknown"], at=first) == {"unknown": []}
        other = await store.put(envelope("other"))
        with pytest.raises(ValueError, match="belongs to thread"):
            await store.read_logs("t", names, at=other)
        with pytest.raises(TypeError, match="logs"):
            await store.read_logs("t", "transcript", at=second)
        with pytest.raises(TypeError, match="at must be an Envelope"):
            await store.read_logs("t", names, at=None)  # pyright: ignore[reportArgumentType]
        with pytest.raises(ValueError, match="start"):
            await store.read_logs("t", {"transcript": (-1, None)}, at=second)

    async def test_read_logs_raises_what_read_log_raises_on_a_damaged_item(
        self, store_factory: StoreFactory
    ) -> None:
        plain = await store_factory()
        damaging = await store_factory(codec=PayloadCodec([_UnreadableCodec()]))
        first = await plain.put(envelope("t"), appends={"good": [1]})
        await damaging.append("t", "bad", [{"x": 1}])
        saved = await plain.put(envelope("t", parent=first), appends={"good": [2]})
        with pytest.raises(AgentPersistError) as single:
            await plain.read_log("t", "bad", at=saved)
        with pytest.raises(type(single.value)) as together:
            await plain.read_logs("t", ["good", "bad"], at=saved)
        assert "'bad'" in str(together.value)

    async def test_every_checkpoint_stays_loadable_after_prune(self, store: BaseStore) -> None:
        expected: dict[str, list[JSON]] = {}
        parent: Envelope | None = None
        for index in range(12):
            if index % 3 == 2:
                await store.pop("t", "log")
            if index == 7:
                await store.clear_log("t", "log")
            parent = await store.put(
                envelope("t", parent=parent), appends={"log": [f"a{index}", f"b{index}"]}
            )
            expected[parent.checkpoint_id] = await store.read_log("t", "log")
        removed = await store.prune("t", keep_last=4)
        assert removed == 8
        remaining = await store.list_checkpoints("t")
        assert len(remaining) == 4
        for checkpoint in remaining:
            assert (
                await store.read_log("t", "log", at=checkpoint)
                == expected[checkpoint.checkpoint_id]
            )
        assert await store.read_log("t", "log") == expected[remaining[0].checkpoint_id]

    async def test_put_is_atomic_with_its_appends(self, store: BaseStore) -> None:
        first = await store.put(envelope("t"), appends={"log": ["kept"]})
        stale = envelope("t")  # expects no head: loses
        with pytest.raises(ConflictError, match="expected head"):
            await store.put(stale, appends={"log": ["lost"], "new-log": ["lost"]})
        with pytest.raises(InvalidPayloadError):
            await store.put(envelope("t", parent=first), appends={"log": ["ok", {1, 2}]})  # type: ignore[list-item]
        assert await store.read_log("t", "log") == ["kept"]
        assert await store.read_log("t", "new-log") == []
        assert (await store.get("t")).checkpoint_id == first.checkpoint_id
        assert len(await store.list_checkpoints("t")) == 1

    async def test_duplicate_or_tampered_envelopes_are_refused(self, store: BaseStore) -> None:
        first = await store.put(envelope("t"))
        duplicate = envelope("t", parent=first).replace(checkpoint_id=first.checkpoint_id)
        with pytest.raises(ConflictError):
            await store.put(duplicate)
        tampered = envelope("t", parent=first)
        tampered.payload["n"] = "changed after checksum"
        with pytest.raises(InvalidPayloadError, match="modified"):
            await store.put(tampered)
        with pytest.raises(InvalidPayloadError):
            await store.append("t", "log", [float("nan")])
        assert await store.read_log("t", "log") == []
        assert len(await store.list_checkpoints("t")) == 1

    async def test_putting_a_stored_envelope_again_returns_it(self, store: BaseStore) -> None:
        """A retry after an unknown commit outcome: idempotent by checkpoint id, not a conflict."""
        first = await store.put(envelope("t"), appends={"log": ["a"]})
        second = envelope("t", parent=first, payload={"turn": 2})
        saved = await store.put(second, appends={"log": ["b"]})
        again = await store.put(second, appends={"log": ["b"]})
        assert again.checkpoint_id == saved.checkpoint_id
        assert again.logs == saved.logs
        assert await store.read_log("t", "log") == ["a", "b"]  # not appended twice
        assert (await store.put(first)).checkpoint_id == first.checkpoint_id  # an older one too
        assert len(await store.list_checkpoints("t")) == 2
        with pytest.raises(ConflictError):  # another envelope on the same parent
            await store.put(envelope("t", parent=first, payload={"turn": "rival"}))
        assert (await store.get("t")).checkpoint_id == second.checkpoint_id

    # -- clear_logs: emptying logs with a checkpoint -------------------------------------

    async def test_put_clear_logs_empties_them_before_the_checkpoint_pins_them(
        self, store: BaseStore
    ) -> None:
        journal = "$journal"
        first = await store.put(envelope("t"), appends={journal: ["j0"], "transcript": ["m0"]})
        await store.append("t", journal, ["j1", "j2"])
        second = await store.put(
            envelope("t", parent=first), appends={"transcript": ["m1"]}, clear_logs=[journal]
        )
        assert journal in second.logs
        assert second.logs[journal] > first.logs[journal]
        assert await store.read_log("t", journal, at=second) == []
        assert await store.read_log("t", journal) == []
        assert await store.log_length("t", journal) == 0
        assert await store.read_log("t", journal, at=first) == ["j0"]  # what it pinned
        assert await store.read_log("t", "transcript", at=second) == ["m0", "m1"]
        reloaded = await store.get("t")
        assert reloaded.logs == second.logs
        assert await store.read_log("t", journal, at=reloaded) == []
        assert journal in await store.list_logs("t")
        # The next turn: its journal is appended, then cleared by its checkpoint (a
        # repeated name counts once, a tuple does as well as a list).
        await store.append("t", journal, ["j3"])
        third = await store.put(envelope("t", parent=second), clear_logs=(journal, journal))
        assert third.logs[journal] == second.logs[journal] + 2  # one append, one clear
        for at, expected in ((first, ["j0"]), (second, []), (third, [])):
            assert await store.read_log("t", journal, at=at) == expected
        assert await store.read_logs("t", [journal, "transcript"], at=third) == {
            journal: [],
            "transcript": ["m0", "m1"],
        }
        # Clearing an empty log changes nothing, not even its version.
        fourth = await store.put(envelope("t", parent=third), clear_logs=[journal])
        assert fourth.logs == third.logs
        await store.prune("t", keep_last=1)
        assert await store.read_log("t", journal, at=fourth) == []
        assert await store.read_log("t", "transcript", at=fourth) == ["m0", "m1"]

    async def test_put_clear_logs_then_appends_to_the_same_log(self, store: BaseStore) -> None:
        """A log named in both: cleared first, the appended items are its new content."""
        first = await store.put(envelope("t"), appends={"log": ["a", "b"]})
        second = await store.put(
            envelope("t", parent=first), appends={"log": ["c", "d"]}, clear_logs=["log"]
        )
        assert await store.read_log("t", "log", at=second) == ["c", "d"]
        assert await store.read_log("t", "log") == ["c", "d"]
        assert await store.log_length("t", "log") == 2
        assert await store.tail("t", "log", 5) == ["c", "d"]
        assert await store.read_log("t", "log", at=first) == ["a", "b"]
        assert await store.pop("t", "log") == "d"
        assert await store.read_log("t", "log", at=second) == ["c", "d"]
        fresh = await store.put(envelope("u"), appends={"log": ["x"]}, clear_logs=["log"])
        assert await store.read_log("u", "log", at=fresh) == ["x"]

    async def test_put_clear_logs_of_a_missing_log_does_nothing(self, store: BaseStore) -> None:
        first = await store.put(envelope("t"), appends={"log": [1]}, clear_logs=["absent"])
        assert set(first.logs) == {"log"}
        second = await store.put(envelope("t", parent=first), clear_logs=["absent", "log"])
        assert set(second.logs) == {"log"}
        assert await store.list_logs("t") == ["log"]
        assert await store.read_log("t", "log", at=first) == [1]
        assert await store.read_log("t", "log", at=second) == []
        other = await store.put(envelope("other"), clear_logs=[], appends=None)
        assert other.logs == {}
        assert await store.list_logs("other") == []
        none = await store.put(envelope("t", parent=second), clear_logs=None)
        assert none.logs == second.logs

    async def test_a_refused_put_clears_nothing(self, store_factory: StoreFactory) -> None:
        store = await store_factory()
        first = await store.put(envelope("t"), appends={"log": ["pinned"]})
        await store.append("t", "log", ["new"])
        stale = envelope("t")  # expects no head: loses
        with pytest.raises(ConflictError):
            await store.put(stale, appends={"log": ["lost"]}, clear_logs=["log"])
        duplicate = envelope("t", parent=first).replace(checkpoint_id=first.checkpoint_id)
        with pytest.raises(ConflictError):
            await store.put(duplicate, clear_logs=["log"])
        with pytest.raises(InvalidPayloadError):
            await store.put(
                envelope("t", parent=first),
                appends={"other": [float("nan")]},
                clear_logs=["log"],
            )
        with pytest.raises(TypeError, match="clear_logs"):
            await store.put(envelope("t", parent=first), clear_logs="log")
        assert await store.read_log("t", "log") == ["pinned", "new"]
        assert await store.read_log("t", "log", at=first) == ["pinned"]
        assert (await store.get("t")).checkpoint_id == first.checkpoint_id
        # A retry of a put already stored returns it without clearing again: what was
        # appended since belongs to the next checkpoint.
        second = envelope("t", parent=first)
        saved = await store.put(second, clear_logs=["log"])
        await store.append("t", "log", ["after"])
        again = await store.put(second, clear_logs=["log"])
        assert again.logs == saved.logs
        assert await store.read_log("t", "log") == ["after"]
        assert await store.read_log("t", "log", at=saved) == []
        # A lost lease writes nothing and clears nothing.
        minute = timedelta(minutes=1)
        lease = await store.acquire_lease("t", "worker-a", ttl=minute)
        third = await store.put(envelope("t", parent=saved), lease=lease)
        await store.acquire_lease("t", "worker-b", ttl=minute, take_over="worker-a")
        with pytest.raises(LeaseLostError):
            await store.put(envelope("t", parent=third), clear_logs=["log"], lease=lease)
        assert await store.read_log("t", "log") == ["after"]
        assert await store.log_length("t", "log") == 1
        assert (await store.get("t")).checkpoint_id == third.checkpoint_id

    async def test_put_clear_logs_refuses_what_is_not_log_names(self, store: BaseStore) -> None:
        first = await store.put(envelope("t"), appends={"log": [1]})
        bad: list[tuple[Any, type[Exception]]] = [
            ("log", TypeError),
            (b"log", TypeError),
            ({"log"}, TypeError),
            (5, TypeError),
            ([1], TypeError),
            (["log", None], TypeError),
            (["\x00"], ValueError),
            (["\ud800"], ValueError),
            (["x" * 5000], ValueError),
        ]
        for value, error in bad:
            with pytest.raises(error, match="clear_logs"):
                await store.put(envelope("t", parent=first), clear_logs=value)
        assert await store.read_log("t", "log") == [1]
        assert len(await store.list_checkpoints("t")) == 1

    # -- concurrency ---------------------------------------------------------------------

    async def test_concurrent_writers_exactly_one_wins(self, store_factory: StoreFactory) -> None:
        writers = [await store_factory() for _ in range(8)]
        head = await writers[0].put(envelope("t"), appends={"log": ["base"]})

        async def attempt(index: int, store: BaseStore) -> Envelope | None:
            try:
                return await store.put(
                    envelope("t", parent=head, payload={"writer": index}),
                    appends={"log": [f"from {index}"]},
                )
            except ConflictError:
                return None

        results = await asyncio.gather(*(attempt(i, s) for i, s in enumerate(writers)))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert (await writers[0].get("t")).checkpoint_id == winners[0].checkpoint_id
        winner = winners[0].payload["writer"]  # type: ignore[index, call-overload]
        assert await writers[0].read_log("t", "log") == ["base", f"from {winner}"]

    async def test_concurrent_writers_lose_no_update(self, store_factory: StoreFactory) -> None:
        writers = [await store_factory() for _ in range(4)]
        await writers[0].put(envelope("t", payload={"total": 0}))

        async def add_ten(index: int, store: BaseStore) -> int:
            conflicts = 0
            for turn in range(10):
                while True:
                    head = await store.get("t")
                    total = head.payload["total"] + 1  # type: ignore[index, call-overload, operator]
                    try:
                        await store.put(
                            envelope("t", parent=head, payload={"total": total}),
                            appends={"log": [f"{index}-{turn}"]},
                        )
                        break
                    except ConflictError:
                        conflicts += 1
            return conflicts

        await asyncio.gather(*(add_ten(i, s) for i, s in enumerate(writers)))
        head = await writers[0].get("t")
        assert head.payload == {"total": 40}
        history = await writers[0].list_checkpoints("t")
        assert len(history) == 41
        for newer, older in itertools.pairwise(history):
            assert newer.parent_id == older.checkpoint_id
        log = await writers[0].read_log("t", "log")
        assert sorted(log) == sorted(f"{i}-{t}" for i in range(4) for t in range(10))  # type: ignore[type-var]

    async def test_concurrent_pops_never_share_an_item(self, store_factory: StoreFactory) -> None:
        poppers = [await store_factory() for _ in range(5)]
        await poppers[0].append("t", "queue", list(range(60)))

        async def drain(store: BaseStore) -> list[JSON]:
            taken: list[JSON] = []
            while (item := await store.pop("t", "queue")) is not None:
                taken.append(item)
            return taken

        taken = [item for batch in await asyncio.gather(*map(drain, poppers)) for item in batch]
        assert sorted(taken) == list(range(60))  # type: ignore[type-var]

    async def test_concurrent_appends_all_land(self, store_factory: StoreFactory) -> None:
        appenders = [await store_factory() for _ in range(5)]

        async def write(index: int, store: BaseStore) -> None:
            for turn in range(10):
                await store.append("t", "log", [f"{index}-{turn}"])

        await asyncio.gather(*(write(i, s) for i, s in enumerate(appenders)))
        log = await appenders[0].read_log("t", "log")
        assert sorted(log) == sorted(f"{i}-{t}" for i in range(5) for t in range(10))  # type: ignore[type-var]
        for index in range(5):  # each writer's items keep their order
            mine = [item for item in log if str(item).startswith(f"{index}-")]
            assert mine == [f"{index}-{t}" for t in range(10)]

    # -- leases --------------------------------------------------------------------------

    async def test_leases(self, store: BaseStore) -> None:
        minute = timedelta(minutes=1)
        lease = await store.acquire_lease("t", "worker-a", ttl=minute)
        assert lease.owner == "worker-a"
        assert lease.thread_id == "t"
        with pytest.raises(LeaseHeldError, match="worker-a"):
            await store.acquire_lease("t", "worker-b", ttl=minute)
        again = await store.acquire_lease("t", "worker-a", ttl=minute)
        with pytest.raises(LeaseLostError):
            await store.renew_lease(lease, ttl=minute)  # the re-acquire replaced its token
        renewed = await store.renew_lease(again, ttl=timedelta(minutes=2))
        assert renewed.expires_at > again.expires_at
        await store.release_lease(lease)  # a stale token releases nothing
        with pytest.raises(LeaseHeldError):
            await store.acquire_lease("t", "worker-b", ttl=minute)
        await store.release_lease(renewed)
        b_lease = await store.acquire_lease("t", "worker-b", ttl=minute)
        with pytest.raises(LeaseLostError):
            await store.renew_lease(renewed, ttl=minute)
        other_thread = await store.acquire_lease("u", "worker-a", ttl=minute)
        assert other_thread.thread_id == "u"
        await store.release_lease(b_lease)
        with pytest.raises(ValueError, match="positive"):
            await store.acquire_lease("t", "worker-a", ttl=timedelta(0))

    async def test_expired_lease_can_be_taken_over(self, store: BaseStore) -> None:
        short = await store.acquire_lease("t", "dead-worker", ttl=timedelta(milliseconds=200))
        await asyncio.sleep(0.35)
        taken = await store.acquire_lease("t", "new-worker", ttl=timedelta(minutes=1))
        assert taken.owner == "new-worker"
        with pytest.raises(LeaseLostError):
            await store.renew_lease(short, ttl=timedelta(minutes=1))

    async def test_concurrent_lease_holders_never_overlap(
        self, store_factory: StoreFactory
    ) -> None:
        stores = [await store_factory() for _ in range(8)]

        async def try_acquire(index: int, store: BaseStore) -> bool:
            try:
                await store.acquire_lease("t", f"worker-{index}", ttl=timedelta(minutes=1))
            except LeaseHeldError:
                return False
            return True

        outcomes = await asyncio.gather(*(try_acquire(i, s) for i, s in enumerate(stores)))
        assert outcomes.count(True) == 1

    async def test_lease_held_error_names_the_holder(self, store: BaseStore) -> None:
        held = await store.acquire_lease("t", "worker-a", ttl=timedelta(minutes=1))
        with pytest.raises(LeaseHeldError) as refused:
            await store.acquire_lease("t", "worker-b", ttl=timedelta(minutes=1))
        assert refused.value.holder == "worker-a"
        assert refused.value.expires_at is not None
        assert abs((refused.value.expires_at - held.expires_at).total_seconds()) < 5

    async def test_take_over_replaces_only_the_named_holder(self, store: BaseStore) -> None:
        minute = timedelta(minutes=1)
        dead = await store.acquire_lease("t", "dead-worker", ttl=minute)
        with pytest.raises(LeaseHeldError) as refused:
            await store.acquire_lease("t", "new-worker", ttl=minute, take_over="someone-else")
        assert refused.value.holder == "dead-worker"
        taken = await store.acquire_lease("t", "new-worker", ttl=minute, take_over="dead-worker")
        assert taken.owner == "new-worker"
        with pytest.raises(LeaseLostError):
            await store.renew_lease(dead, ttl=minute)
        with pytest.raises(LeaseHeldError) as late:  # a second restart taking over the same
            await store.acquire_lease("t", "third-worker", ttl=minute, take_over="dead-worker")
        assert late.value.holder == "new-worker"
        free = await store.acquire_lease("u", "new-worker", ttl=minute, take_over="nobody")
        assert free.owner == "new-worker"  # a free thread is simply taken
        with pytest.raises(TypeError, match="take_over"):
            await store.acquire_lease("t", "x", ttl=minute, take_over=42)  # type: ignore[arg-type]

    async def test_concurrent_take_overs_of_one_dead_holder_never_overlap(
        self, store_factory: StoreFactory
    ) -> None:
        stores = [await store_factory() for _ in range(8)]
        await stores[0].acquire_lease("t", "dead-worker", ttl=timedelta(minutes=1))

        async def take_over(index: int, store: BaseStore) -> bool:
            try:
                await store.acquire_lease(
                    "t", f"worker-{index}", ttl=timedelta(minutes=1), take_over="dead-worker"
                )
            except LeaseHeldError:
                return False
            return True

        outcomes = await asyncio.gather(*(take_over(i, s) for i, s in enumerate(stores)))
        assert outcomes.count(True) == 1

    async def test_writes_under_a_held_lease_succeed(self, store: BaseStore) -> None:
        lease = await store.acquire_lease("t", "worker-a", ttl=timedelta(minutes=1))
        first = await store.put(envelope("t"), appends={"log": [1]}, lease=lease)
        await store.append("t", "log", [2], lease=lease)
        renewed = await store.renew_lease(lease, ttl=timedelta(minutes=1))
        await store.put(envelope("t", parent=first), lease=renewed)
        assert await store.read_log("t", "log") == [1, 2]

    async def _assert_lease_cannot_write(
        self, store: BaseStore, lease: Lease, head: Envelope
    ) -> None:
        """Neither a put nor an append under ``lease`` writes anything."""
        before = await store.read_log("t", "log")
        with pytest.raises(LeaseLostError):
            await store.put(envelope("t", parent=head), appends={"log": ["lost"]}, lease=lease)
        with pytest.raises(LeaseLostError):
            await store.append("t", "log", ["lost"], lease=lease)
        with pytest.raises(LeaseLostError):
            await store.append("t", "other", ["lost"], lease=lease)
        assert (await store.get("t")).checkpoint_id == head.checkpoint_id
        assert len(await store.list_checkpoints("t")) == 1
        assert await store.read_log("t", "log") == before
        assert await store.log_length("t", "other") == 0

    async def test_a_taken_over_lease_cannot_write(self, store: BaseStore) -> None:
        minute = timedelta(minutes=1)
        old = await store.acquire_lease("t", "worker-a", ttl=minute)
        head = await store.put(envelope("t"), appends={"log": [1]}, lease=old)
        await store.acquire_lease("t", "worker-b", ttl=minute, take_over="worker-a")
        await self._assert_lease_cannot_write(store, old, head)

    async def test_an_expired_lease_cannot_write(self, store: BaseStore) -> None:
        # a second for the put under its lease, however loaded the machine
        short = await store.acquire_lease("t", "worker-a", ttl=timedelta(seconds=1))
        head = await store.put(envelope("t"), appends={"log": [1]}, lease=short)
        await asyncio.sleep(1.15)
        await self._assert_lease_cannot_write(store, short, head)

    async def test_a_released_or_reacquired_lease_cannot_write(self, store: BaseStore) -> None:
        minute = timedelta(minutes=1)
        first = await store.acquire_lease("t", "worker-a", ttl=minute)
        head = await store.put(envelope("t"), lease=first)
        second = await store.acquire_lease("t", "worker-a", ttl=minute)  # a new token
        await self._assert_lease_cannot_write(store, first, head)
        await store.release_lease(second)
        await self._assert_lease_cannot_write(store, second, head)

    # -- retention -----------------------------------------------------------------------

    async def test_keep_last_option_trims_on_every_put(self, store_factory: StoreFactory) -> None:
        store = await store_factory(keep_last=3)
        saved = await self.chain(store, "t", 10)
        remaining = await store.list_checkpoints("t")
        assert [e.checkpoint_id for e in remaining] == [e.checkpoint_id for e in saved[:-4:-1]]
        for checkpoint in remaining:
            turns = await store.read_log("t", "transcript", at=checkpoint)
            assert turns == [{"turn": i} for i in range(checkpoint.step + 1)]
        assert (await store.list_threads())[0].checkpoint_count == 3

    async def test_prune_by_age_and_count(self, store: BaseStore) -> None:
        await self.chain(store, "t", 6)
        assert await store.prune("t") == 0
        assert await store.prune("t", keep_last=4, older_than=timedelta(hours=1)) == 0
        assert await store.prune("t", keep_last=4) == 2
        assert await store.prune("t", older_than=timedelta(0)) == 3
        remaining = await store.list_checkpoints("t")
        assert len(remaining) == 1
        assert remaining[0].step == 5
        assert await store.read_log("t", "transcript", at=remaining[0]) == [
            {"turn": i} for i in range(6)
        ]
        with pytest.raises(ThreadNotFoundError):
            await store.prune("missing", keep_last=1)

    async def test_ttl_expires_idle_threads(self, store_factory: StoreFactory) -> None:
        # "busy" has 0.6 s left when the checks start: room for a loaded machine's delays
        store = await store_factory(ttl=timedelta(milliseconds=1500))
        await self.chain(store, "idle", 2)
        await store.append("idle-log", "log", ["x"])
        await asyncio.sleep(0.75)
        await self.chain(store, "busy", 1)
        await asyncio.sleep(0.9)
        with pytest.raises(ThreadNotFoundError):
            await store.get("idle")
        assert await store.read_log("idle", "transcript") == []
        assert await store.read_log("idle-log", "log") == []
        assert [t.thread_id for t in await store.list_threads()] == ["busy"]
        assert (await store.get("busy")).step == 0
        assert await store.purge_expired() == 2
        assert await store.purge_expired() == 0
        reborn = await store.put(envelope("idle"))
        assert reborn.logs == {}
        assert [e.checkpoint_id for e in await store.list_checkpoints("idle")] == [
            reborn.checkpoint_id
        ]

    # -- identifiers ---------------------------------------------------------------------

    async def test_hostile_identifiers_round_trip_and_never_match(
        self, store_factory: StoreFactory
    ) -> None:
        store = await store_factory(namespace="ns: '%_*{}\n")
        for thread_id in HOSTILE_IDS:
            await store.put(
                envelope(thread_id, payload={"id": thread_id}, metadata={thread_id: thread_id}),
                appends={thread_id: [thread_id]},
            )
        threads = await store.list_threads()
        assert sorted(t.thread_id for t in threads) == sorted(HOSTILE_IDS)
        for thread_id in HOSTILE_IDS:
            loaded = await store.get(thread_id)
            assert loaded.payload == {"id": thread_id}
            assert loaded.thread_id == thread_id
            assert await store.read_log(thread_id, thread_id) == [thread_id]
            assert await store.read_log(thread_id, thread_id + "x") == []
            matches = await store.list_threads(metadata={thread_id: thread_id})
            assert [t.thread_id for t in matches] == [thread_id]
        other = await store_factory(namespace="ns: '%_*{}")
        assert await other.list_threads() == []
        assert await store.delete_thread("*") is True
        assert await store.delete_thread("100%") is True
        left = {t.thread_id for t in await store.list_threads()}
        assert left == set(HOSTILE_IDS) - {"*", "100%"}

    # -- codecs and corrupt data ---------------------------------------------------------

    async def test_codecs_are_interchangeable_on_read(self, store_factory: StoreFactory) -> None:
        zipped = await store_factory(codec=PayloadCodec([ZlibCodec()]))
        plain = await store_factory()
        big = {"text": "compress me " * 500}
        saved = await zipped.put(envelope("t", payload=big), appends={"log": [big]})
        assert (await plain.get("t")).payload == big
        assert await plain.read_log("t", "log") == [big]
        await plain.put(envelope("t", parent=saved, payload={"small": 1}), appends={"log": [1]})
        assert (await zipped.get("t")).payload == {"small": 1}
        assert await zipped.read_log("t", "log") == [big, 1]

    async def test_corrupt_checkpoints_raise_typed_errors(
        self, store: BaseStore, tamper: Tamper
    ) -> None:
        good = await store.put(envelope("t", payload={"ok": True}))
        bad = await store.put(envelope("t", parent=good, payload={"v": 1}))
        header = encode_checkpoint(bad, PayloadCodec()).header
        cases: list[tuple[dict[str, Any], type[AgentPersistError], str]] = [
            ({"payload": b'json:{"v":2}'}, ChecksumMismatchError, "checksum"),
            ({"payload": b'json:{"v":'}, CorruptCheckpointError, "payload"),
            ({"payload": b"nonsense"}, CodecError, "codec"),
            ({"payload": b"json+rot13:{}"}, CodecError, "rot13"),
            ({"header": header[: len(header) // 2]}, CorruptCheckpointError, "header"),
            ({"header": "[1, 2]"}, CorruptCheckpointError, "object"),
            (
                {"header": header.replace('"format_version":1', '"format_version":99')},
                FutureVersionError,
                "99",
            ),
            (
                {"header": header.replace('"step":1', '"step":"one"')},
                CorruptCheckpointError,
                "step",
            ),
        ]
        original = {"header": header, "payload": PayloadCodec().seal({"v": 1})}
        for damage, error, message in cases:
            await tamper(store, "t", bad.checkpoint_id, **{**original, **damage})
            with pytest.raises(error, match=message) as raised:
                await store.get("t")
            assert bad.checkpoint_id in str(raised.value)
            with pytest.raises(error):
                await store.list_checkpoints("t")
            assert (await store.get("t", good.checkpoint_id)).payload == {"ok": True}
        await tamper(store, "t", bad.checkpoint_id, **original)
        assert (await store.get("t")) == (await store.get("t", bad.checkpoint_id))
        assert (await store.get("t")).payload == {"v": 1}

    async def test_a_header_that_disagrees_with_its_row_is_corrupt(
        self, store: BaseStore, tamper: Tamper
    ) -> None:
        other = await store.put(envelope("other", payload={"v": "other"}))
        good = await store.put(envelope("t", payload={"ok": True}))
        bad = await store.put(envelope("t", parent=good, payload={"v": 1}))
        for source in (good, other):  # another checkpoint's row, another thread's row
            copied = encode_checkpoint(source, PayloadCodec())
            await tamper(
                store, "t", bad.checkpoint_id, header=copied.header, payload=copied.payload
            )
            with pytest.raises(CorruptCheckpointError) as raised:
                await store.get("t")
            assert bad.checkpoint_id in str(raised.value), str(raised.value)
            # (a message naming an earlier source means a stale read: say which it was)
            assert source.checkpoint_id in str(raised.value), (source.thread_id, raised.value)
            with pytest.raises(CorruptCheckpointError):
                await store.get("t", bad.checkpoint_id)
            with pytest.raises(CorruptCheckpointError):
                await store.list_checkpoints("t")
        assert (await store.get("t", good.checkpoint_id)).payload == {"ok": True}

    async def test_damaged_data_never_escapes_as_a_raw_error(
        self, store: BaseStore, tamper: Tamper
    ) -> None:
        """Too deep, too large once decompressed, not UTF-8: typed errors, bounded memory."""
        first = await store.put(envelope("t"))
        header = encode_checkpoint(first, PayloadCodec()).header
        too_deep = b"[" * 100_000 + b"]" * 100_000
        cases: list[dict[str, Any]] = [
            {"payload": b"json:" + too_deep},
            {"payload": b"json+zlib:" + _zlib_bomb()},
            {"payload": b"json+zlib:" + zlib.compress(too_deep)},
            {"payload": b"json+zlib:" + zlib.compress(b"{}")[:-3]},
            {"header": too_deep.decode()},
            {"header": header.replace('"metadata":{}', '"metadata":' + deep_text(500))},
            {"header": header.replace('"step":0', '"step":1e999')},
            {"header": header.replace('"step":0', '"step":' + "9" * 5000)},
        ]
        for damage in cases:
            await tamper(store, "t", first.checkpoint_id, **damage)
            with pytest.raises(CorruptCheckpointError, match=first.checkpoint_id):
                await store.get("t")
            with pytest.raises(CorruptCheckpointError):
                await store.list_checkpoints("t")
            await tamper(
                store,
                "t",
                first.checkpoint_id,
                header=header,
                payload=PayloadCodec().seal({"n": 0}),
            )
        assert await store.get("t") == first

    # -- bad input -----------------------------------------------------------------------

    async def test_bad_input_is_refused_before_anything_is_written(self, store: BaseStore) -> None:
        """Every call of :data:`~agent_persist.testing.bad_input.BAD_INPUTS` is refused.

        With the exact error type, a message naming the argument, and the store unchanged:
        the same answer every store gives, so a caller can rely on it.
        """
        seeded = await seed(store)
        before = await snapshot(store)
        failures = [
            failure
            for case in BAD_INPUTS
            if (failure := await refusal(case, store, seeded)) is not None
        ]
        assert failures == []
        assert await snapshot(store) == before

    async def test_bad_store_options_are_refused(self, store_factory: StoreFactory) -> None:
        for label, options, error, says in BAD_STORE_OPTIONS:
            with pytest.raises(error, match=says) as raised:
                await store_factory(**options)
            assert type(raised.value) is error, label

    async def test_any_json_string_and_the_depth_limit_round_trip(self, store: BaseStore) -> None:
        """Payloads and log items are sealed bytes: NUL, emoji, any escape, the deepest allowed."""
        strings = ["\u0000", "a\x00b", "🤖 ünï", '\\"', "\n\r\t\b\f", "\u2028\u2029", "\x7f"]
        payload: dict[str, Any] = {"strings": strings, "deep": deep(MAX_JSON_DEPTH - 1)}
        items: list[JSON] = [*strings, deep(MAX_JSON_DEPTH), {"\x00key": "\x00"}]
        metadata: dict[str, Any] = {"deep": deep(MAX_JSON_DEPTH - 1), "big": INT64_MAX}
        saved = await store.put(
            envelope("t", payload=payload, metadata=metadata), appends={"log": items}
        )
        loaded = await store.get("t")
        assert loaded.payload == payload
        assert loaded.metadata == metadata
        assert same(loaded, saved)
        assert await store.read_log("t", "log") == items
        assert await store.tail("t", "log", 2) == items[-2:]
        assert [
            e.checkpoint_id for e in await store.list_checkpoints("t", metadata={"big": INT64_MAX})
        ] == [saved.checkpoint_id]
        await store.append("t", "other", items)
        assert await store.read_log("t", "other") == items
        assert await store.pop("t", "other") == items[-1]
        fork = await store.fork("t", "copy")
        assert fork.payload == payload
        assert await store.read_log("copy", "log", at=fork) == items
