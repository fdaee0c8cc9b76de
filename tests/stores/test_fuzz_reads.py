"""Fuzzing every read path: damaged stored data raises AgentPersistError subclasses, nothing else.

Two layers:

* the decode functions themselves (``decode_checkpoint``, ``decode_item(s)``, ``unseal``) on
  fuzzed headers, payloads of every codec frame, log versions and items, including payloads
  whose checksum matches so parsing and validation are reached;
* every read method of every store after raw damage to one stored part (header, payload,
  log versions, a log item, the thread's summary fields, the Redis index), written around
  the store (Python objects, SQL ``UPDATE``, Redis ``HSET``).

Each example uses a thread of its own, removed afterwards. ``AGENT_PERSIST_FUZZ_LONG=1``
runs many more examples (see :func:`examples`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sqlite3
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_persist.codecs import PayloadCodec, ZlibCodec
from agent_persist.envelope import Envelope, payload_checksum
from agent_persist.errors import AgentPersistError
from agent_persist.stores._records import (
    decode_checkpoint,
    decode_item,
    decode_items,
    encode_checkpoint,
    plain_lines,
)
from agent_persist.stores.base import BaseStore
from agent_persist.stores.memory import MemoryStore
from agent_persist.stores.sql import SQLStore
from agent_persist.testing.conformance import envelope

LONG = os.environ.get("AGENT_PERSIST_FUZZ_LONG") == "1"


def examples(short: int, long: int) -> Any:
    """Hypothesis settings: ``short`` examples in CI, ``long`` with AGENT_PERSIST_FUZZ_LONG=1."""
    return settings(
        max_examples=long if LONG else short,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def outside_contract(call: Callable[[], Any]) -> BaseException | None:
    """Run ``call``; the exception it raised that is not an AgentPersistError, if any."""
    try:
        call()
    except AgentPersistError:
        return None
    except Exception as exc:
        return exc
    return None


# -- strategies ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
json_texts = st.one_of(
    json_values.map(json.dumps),
    st.text(max_size=40),
    st.integers(1, 3000).map(lambda d: "[" * d + "]" * d),
    st.integers(1, 3000).map(lambda d: '{"a":' * d + "1" + "}" * d),
    st.sampled_from(["1e999", "-1e999", "9" * 5000, "NaN", '"\\ud800"', '"\\u0000"', "[", "{}x"]),
)
FRAMES = [b"json:", b"json+zlib:", b"json+zlib+zlib:", b"json+rot13:", b"json+:", b"json", b""]


def _sealings(text: bytes) -> st.SearchStrategy[bytes]:
    return st.sampled_from(
        [
            b"json:" + text,
            b"json+zlib:" + zlib.compress(text),
            b"json+zlib:" + zlib.compress(text)[:-2],
            b"json+zlib+zlib:" + zlib.compress(zlib.compress(text)),
            b"json+zlib:" + zlib.compress(text) + b"trailing",
        ]
    )


payload_bytes = st.one_of(
    st.binary(max_size=64),
    st.tuples(st.sampled_from(FRAMES), st.binary(max_size=64)).map(b"".join),
    json_texts.map(lambda t: t.encode("utf-8", "surrogatepass")).flatmap(_sealings),
)

BASE = envelope("fuzz", payload={"n": 0}, metadata={"user": "ada"})
BASE_HEADER: dict[str, Any] = json.loads(encode_checkpoint(BASE, PayloadCodec()).header)


@st.composite
def headers(draw: st.DrawFn, checksum: str | None = None) -> str | bytes:
    """A header: valid, with a field changed or dropped, or any text or bytes at all."""
    fields = dict(BASE_HEADER)
    if checksum is not None:
        fields["checksum"] = checksum
    kind = draw(st.sampled_from(["valid", "changed", "dropped", "raw", "text", "bytes"]))
    if kind == "changed":
        key = draw(st.sampled_from(sorted(fields)))
        fields[key] = draw(json_values)
    elif kind == "dropped":
        fields.pop(draw(st.sampled_from(sorted(fields))))
    elif kind == "raw":  # a field's value replaced by any JSON-ish text
        key = draw(st.sampled_from(sorted(fields)))
        text = json.dumps({**fields, key: "@@"}).replace('"@@"', draw(json_texts))
        return text
    elif kind == "text":
        return draw(json_texts)
    elif kind == "bytes":
        return draw(st.binary(max_size=80))
    return json.dumps(fields)


@st.composite
def consistent_checkpoints(draw: st.DrawFn) -> tuple[str | bytes, bytes]:
    """A payload and a header whose checksum matches it, so decoding gets past the checksum."""
    text = draw(json_texts).encode("utf-8", "surrogatepass")
    return draw(headers(checksum=payload_checksum(text))), draw(_sealings(text))


log_versions = st.one_of(json_texts, json_values.map(json.dumps), st.binary(max_size=20))

# -- the decode functions ------------------------------------------------------------------

CODEC = PayloadCodec()


@examples(1500, 30000)
@given(
    st.one_of(st.tuples(headers(), payload_bytes), consistent_checkpoints()),
    log_versions,
    st.sampled_from([PayloadCodec(), PayloadCodec([ZlibCodec()])]),
)
def test_decode_checkpoint_raises_only_contract_errors(
    parts: tuple[str | bytes, bytes], logs: Any, codec: PayloadCodec
) -> None:
    header, payload = parts

    def decode() -> None:
        decode_checkpoint(
            header,
            payload,
            logs,
            codec=codec,
            where="fuzz",
            thread_id=BASE.thread_id,
            checkpoint_id=BASE.checkpoint_id,
        )

    assert outside_contract(decode) is None


@examples(1000, 20000)
@given(st.lists(payload_bytes, max_size=6))
def test_decode_items_raises_only_contract_errors(sealed: list[bytes]) -> None:
    assert (
        outside_contract(
            lambda: decode_items(sealed, CODEC, positions=range(len(sealed)), where=str)
        )
        is None
    )
    for data in sealed:
        assert (
            outside_contract(lambda data=data: decode_item(data, CODEC, position=1, where="item"))
            is None
        )
        assert outside_contract(lambda data=data: CODEC.unseal(data)) is None
    assert outside_contract(lambda: plain_lines(sealed)) is None


# -- the stores ----------------------------------------------------------------------------


class Harness:
    """A store on its own event loop, and raw writes around it, for sync hypothesis tests."""

    def __init__(self, loop: asyncio.AbstractEventLoop, store: BaseStore) -> None:
        self.loop = loop
        self.store = store
        self.numbers = itertools.count()

    def run(self, awaitable: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(awaitable)

    async def damage(self, thread_id: str, head: Envelope, target: str, value: Any) -> None:
        raise NotImplementedError

    async def remove(self, thread_id: str) -> None:
        raise NotImplementedError

    def targets(self) -> list[str]:
        return ["header", "payload", "logs", "item"]


class MemoryHarness(Harness):
    async def damage(self, thread_id: str, head: Envelope, target: str, value: Any) -> None:
        assert isinstance(self.store, MemoryStore)
        thread = self.store._threads[thread_id]
        if target == "item":
            thread.logs["log"].items[0].data = _as_bytes(value)
        else:
            stored = (
                _as_bytes(value) if target == "payload" or not isinstance(value, str) else value
            )
            setattr(thread.checkpoints[-1], target, stored)

    async def remove(self, thread_id: str) -> None:
        assert isinstance(self.store, MemoryStore)
        self.store._threads.pop(thread_id, None)


THREAD_COLUMNS = ["metadata", "status", "kind", "step", "schema_version", "head_id", "updated_at"]


class SQLiteHarness(Harness):
    def __init__(self, loop: asyncio.AbstractEventLoop, store: BaseStore, path: Path) -> None:
        super().__init__(loop, store)
        self.path = path

    def targets(self) -> list[str]:
        return [*super().targets(), *(f"thread.{column}" for column in THREAD_COLUMNS)]

    def sql(self, statement: str, *params: Any) -> list[Any]:
        connection = sqlite3.connect(self.path)
        try:
            with connection:
                return connection.execute(statement, params).fetchall()
        finally:
            connection.close()

    async def damage(self, thread_id: str, head: Envelope, target: str, value: Any) -> None:
        (pk,) = self.sql("SELECT pk FROM agent_persist_threads WHERE thread_id = ?", thread_id)[0]
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            value = str(value)  # SQLite holds 64-bit integers; a longer one is text
        # NaN binds as NULL, which NOT NULL columns refuse: SQLite itself refuses that damage.
        with contextlib.suppress(sqlite3.IntegrityError):
            self._damage(pk, head, target, value)

    def _damage(self, pk: int, head: Envelope, target: str, value: Any) -> None:
        if target == "item":
            self.sql(
                "UPDATE agent_persist_log_items SET data = ? WHERE seq = 1 AND log_pk = "
                "(SELECT pk FROM agent_persist_logs WHERE thread_pk = ?)",
                value,
                pk,
            )
        elif target.startswith("thread."):
            column = target.removeprefix("thread.")
            self.sql(f"UPDATE agent_persist_threads SET {column} = ? WHERE pk = ?", value, pk)
        else:
            self.sql(
                f"UPDATE agent_persist_checkpoints SET {target} = ? "
                "WHERE thread_pk = ? AND checkpoint_id = ?",
                value,
                pk,
                head.checkpoint_id,
            )

    async def remove(self, thread_id: str) -> None:
        for (pk,) in self.sql(
            "SELECT pk FROM agent_persist_threads WHERE thread_id = ?", thread_id
        ):
            self.sql(
                "DELETE FROM agent_persist_log_items WHERE log_pk IN "
                "(SELECT pk FROM agent_persist_logs WHERE thread_pk = ?)",
                pk,
            )
            for table in ("logs", "checkpoints"):
                self.sql(f"DELETE FROM agent_persist_{table} WHERE thread_pk = ?", pk)
            self.sql("DELETE FROM agent_persist_threads WHERE pk = ?", pk)


class PostgresHarness(Harness):
    """Damage through SQL: text columns get text without NUL, JSONB only valid JSON."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, store: BaseStore, url: str, schema: str
    ) -> None:
        super().__init__(loop, store)
        from sqlalchemy.ext.asyncio import create_async_engine

        self.schema = schema
        self.engine = create_async_engine(sa.make_url(url).set(drivername="postgresql+asyncpg"))

    def targets(self) -> list[str]:
        return [*super().targets(), "thread.metadata", "thread.status", "thread.kind"]

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        async with self.engine.begin() as conn:
            await conn.execute(sa.text(f'SET LOCAL search_path TO "{self.schema}"'))
            result = await conn.execute(sa.text(statement), params)
            return list(result.all()) if result.returns_rows else []

    async def damage(self, thread_id: str, head: Envelope, target: str, value: Any) -> None:
        rows = await self.sql(
            "SELECT pk FROM agent_persist_threads WHERE thread_id = :t", t=thread_id
        )
        with contextlib.suppress(sa.exc.DBAPIError):  # PostgreSQL refuses some (not JSON...)
            await self._damage(rows[0][0], head, target, value)

    async def _damage(self, pk: int, head: Envelope, target: str, value: Any) -> None:
        value = _as_bytes(value) if target in ("payload", "item") else _as_text(value)
        if target == "item":
            await self.sql(
                "UPDATE agent_persist_log_items SET data = :v WHERE seq = 1 AND log_pk = "
                "(SELECT pk FROM agent_persist_logs WHERE thread_pk = :pk)",
                v=value,
                pk=pk,
            )
        elif target == "thread.metadata":
            await self.sql(
                "UPDATE agent_persist_threads SET metadata = CAST(:v AS jsonb) WHERE pk = :pk",
                v=value,
                pk=pk,
            )
        elif target.startswith("thread."):
            column = target.removeprefix("thread.")
            await self.sql(
                f"UPDATE agent_persist_threads SET {column} = :v WHERE pk = :pk", v=value, pk=pk
            )
        else:
            await self.sql(
                f"UPDATE agent_persist_checkpoints SET {target} = :v "
                "WHERE thread_pk = :pk AND checkpoint_id = :c",
                v=value,
                pk=pk,
                c=head.checkpoint_id,
            )

    async def remove(self, thread_id: str) -> None:
        for (pk,) in await self.sql(
            "SELECT pk FROM agent_persist_threads WHERE thread_id = :t", t=thread_id
        ):
            await self.sql(
                "DELETE FROM agent_persist_log_items WHERE log_pk IN "
                "(SELECT pk FROM agent_persist_logs WHERE thread_pk = :pk)",
                pk=pk,
            )
            for table in ("logs", "checkpoints", "threads"):
                column = "pk" if table == "threads" else "thread_pk"
                await self.sql(f"DELETE FROM agent_persist_{table} WHERE {column} = :pk", pk=pk)


REDIS_FIELDS = ["meta", "kind", "sv", "step", "status", "updated", "head", "n"]


class RedisHarness(Harness):
    """Damage with plain Redis commands on the store's keys (see ``stores.redis._keys``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, store: BaseStore, url: str) -> None:
        super().__init__(loop, store)
        from redis.asyncio import Redis

        from agent_persist.stores.redis._keys import RedisKeys

        self.client = Redis.from_url(url)
        self.keys = RedisKeys(store.prefix, store.namespace)  # type: ignore[attr-defined]

    def targets(self) -> list[str]:
        return [
            *super().targets(),
            "mirror",
            "index",
            *(f"thread.{field}" for field in REDIS_FIELDS),
        ]

    async def damage(self, thread_id: str, head: Envelope, target: str, value: Any) -> None:
        data = _as_bytes(value)
        checkpoints = self.keys.checkpoints(thread_id)
        prefix = {"header": "h:", "payload": "p:", "logs": "l:"}
        if target in prefix:
            await self.client.hset(checkpoints, prefix[target] + head.checkpoint_id, data)
        elif target == "item":
            await self.client.hset(self.keys.log(thread_id, "log") + ":i", "1", data)
        elif target == "mirror":
            await self.client.lset(self.keys.mirror(thread_id, "log"), 0, data)
        elif target == "index":
            await self.client.zadd(self.keys.index, {data or b"x": 1})
        else:
            await self.client.hset(
                self.keys.thread(thread_id), target.removeprefix("thread."), data
            )

    async def remove(self, thread_id: str) -> None:
        base = self.keys.thread(thread_id)
        keys = [key async for key in self.client.scan_iter(match=base.replace("*", "\\*") + "*")]
        if keys:
            await self.client.unlink(*keys)
        await self.client.delete(self.keys.index)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


def _as_text(value: Any) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def _open_harness(
    name: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    loop = asyncio.new_event_loop()
    made: Harness
    if name == "memory":
        made = MemoryHarness(loop, MemoryStore())
    elif name == "sqlite":
        path = tmp_path_factory.mktemp("fuzz") / "store.db"
        made = SQLiteHarness(loop, SQLStore(f"sqlite:///{path}"), path)
    elif name == "postgres":
        url, schema = request.getfixturevalue("postgres_url"), f"ap_test_{uuid.uuid4().hex}"
        made = PostgresHarness(loop, SQLStore(url, schema=schema), url, schema)
    else:
        from agent_persist.stores.redis import RedisStore

        url = request.getfixturevalue("redis_url")
        store = RedisStore.from_url(url, prefix=f"aptest:{uuid.uuid4().hex}")
        made = RedisHarness(loop, store, url)
    made.run(made.store.setup())
    try:
        yield made
    finally:
        made.run(made.store.close())
        if isinstance(made, PostgresHarness):
            made.run(made.sql(f'DROP SCHEMA IF EXISTS "{made.schema}" CASCADE'))
            made.run(made.engine.dispose())
        if isinstance(made, RedisHarness):
            prefix = made.store.prefix  # type: ignore[attr-defined]
            keys = made.run(_scan(made.client, f"{prefix}:*"))
            if keys:
                made.run(made.client.unlink(*keys))
            made.run(made.client.aclose())
        loop.close()


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def local(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    """A memory or SQLite store: cheap enough for many examples."""
    yield from _open_harness(request.param, request, tmp_path_factory)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.needs_extras]),
        pytest.param("redis", marks=[pytest.mark.redis, pytest.mark.needs_extras]),
    ],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    """A PostgreSQL or Redis store: fewer examples, each costs round trips."""
    yield from _open_harness(request.param, request, tmp_path_factory)


async def _scan(client: Any, pattern: str) -> list[bytes]:
    return [key async for key in client.scan_iter(match=pattern, count=500)]


def _reads(store: BaseStore, thread_id: str, head: Envelope) -> list[Callable[[], Awaitable[Any]]]:
    """Every read path of the thread (and ``fork``, which reads a whole checkpoint)."""
    return [
        lambda: store.get(thread_id),
        lambda: store.get(thread_id, head.checkpoint_id),
        lambda: store.list_checkpoints(thread_id),
        lambda: store.list_checkpoints(thread_id, metadata={"user": "ada"}),
        lambda: store.list_threads(),
        lambda: store.list_threads(metadata={"user": "ada"}),
        lambda: store.read_log(thread_id, "log"),
        lambda: store.read_log(thread_id, "log", start=1),
        lambda: store.read_log(thread_id, "log", at=head),
        lambda: store.read_log_lines(thread_id, "log"),
        lambda: store.tail(thread_id, "log", 1),
        lambda: store.tail_lines(thread_id, "log", 2),
        lambda: store.log_length(thread_id, "log"),
        lambda: store.fork(thread_id, thread_id + "-fork"),
        lambda: store.pop(thread_id, "log"),
    ]


async def _damaged_reads(harness: Harness, target: str, value: Any) -> list[str]:
    store = harness.store
    thread_id = f"t{next(harness.numbers)}"
    first = await store.put(envelope(thread_id, metadata={"user": "ada"}), appends={"log": ["a"]})
    head = await store.put(
        envelope(thread_id, parent=first, metadata={"user": "ada"}), appends={"log": [{"b": 1}]}
    )
    await harness.damage(thread_id, head, target, value)
    escaped: list[str] = []
    for read in _reads(store, thread_id, head):
        try:
            await read()
        except AgentPersistError:
            pass
        except Exception as exc:
            escaped.append(f"{target}={value!r:.80}: {type(exc).__name__}: {exc!s:.200}")
    for removed in (thread_id, thread_id + "-fork"):
        await harness.remove(removed)
    return escaped


damage_values = st.one_of(
    payload_bytes,
    headers(),
    log_versions,
    st.integers(-(2**70), 2**70),
    st.floats(),
)


def _damage_and_read(harness: Harness, data: st.DataObject) -> None:
    target = data.draw(st.sampled_from(harness.targets()), label="target")
    value = data.draw(damage_values, label="value")
    assert harness.run(_damaged_reads(harness, target, value)) == []


@examples(200, 6000)
@given(data=st.data())
def test_damaged_rows_raise_only_contract_errors(local: Harness, data: st.DataObject) -> None:
    _damage_and_read(local, data)


@examples(100, 2000)
@given(data=st.data())
def test_damaged_server_data_raises_only_contract_errors(
    server: Harness, data: st.DataObject
) -> None:
    _damage_and_read(server, data)
