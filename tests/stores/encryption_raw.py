"""Raw access to every built-in store's stored bytes, for the encryption tests.

Each :class:`Raw` opens encrypted stores by URL (so the default key store, a namespace of
its own on the same back end, is the one used) and reads or overwrites what is stored
around the store: payloads, headers and log items, a whole thread's rows (to put a deleted
thread back, as a restored backup would), and a dump of everything for the canary test.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from agent_persist.stores import open_store
from agent_persist.stores.base import BaseStore

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.needs_extras]),
    pytest.param("redis", marks=[pytest.mark.redis, pytest.mark.needs_extras]),
]


class Raw:
    """One back end: how to open stores on it and how to read and write its raw data."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stores: list[BaseStore] = []

    def url_options(self) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    async def open(self, **options: Any) -> BaseStore:
        """An encrypted (or clear) store on this back end's data, set up."""
        url, extra = self.url_options()
        store = open_store(url, **extra, **options)
        self.stores.append(store)
        await store.setup()
        return store

    async def close(self) -> None:
        for store in self.stores:
            await store.close()

    async def dump(self) -> bytes:
        raise NotImplementedError

    async def payload(self, store: BaseStore, thread_id: str, checkpoint_id: str) -> bytes:
        raise NotImplementedError

    async def set_payload(
        self, store: BaseStore, thread_id: str, checkpoint_id: str, value: bytes
    ) -> None:
        raise NotImplementedError

    async def header(self, store: BaseStore, thread_id: str, checkpoint_id: str) -> str:
        raise NotImplementedError

    async def set_header(
        self, store: BaseStore, thread_id: str, checkpoint_id: str, value: str
    ) -> None:
        raise NotImplementedError

    async def items(self, store: BaseStore, thread_id: str, log: str) -> list[bytes]:
        """The live items' stored bytes, oldest first."""
        raise NotImplementedError

    async def set_item(
        self, store: BaseStore, thread_id: str, log: str, index: int, value: bytes
    ) -> None:
        raise NotImplementedError

    async def snapshot(self, store: BaseStore, thread_id: str) -> Any:
        """Everything stored for the thread (not its data key), to :meth:`restore` later."""
        raise NotImplementedError

    async def restore(self, store: BaseStore, snapshot: Any) -> None:
        raise NotImplementedError


class MemoryRaw(Raw):
    def __init__(self) -> None:
        super().__init__("memory")
        self.space = f"enc-{uuid.uuid4().hex}"

    def url_options(self) -> tuple[str, dict[str, Any]]:
        return f"memory://{self.space}", {}

    def _spaces(self) -> dict[str, Any]:
        from agent_persist.stores import _memory_spaces  # pyright: ignore[reportPrivateUsage]

        return _memory_spaces[self.space]

    def _thread(self, store: BaseStore, thread_id: str) -> Any:
        return self._spaces()[store.namespace].threads[thread_id]

    def _checkpoint(self, store: BaseStore, thread_id: str, checkpoint_id: str) -> Any:
        thread = self._thread(store, thread_id)
        return next(c for c in thread.checkpoints if c.checkpoint_id == checkpoint_id)

    async def dump(self) -> bytes:
        """What the memory store keeps as stored data (not its decoded cache of each head)."""
        parts: list[str] = []
        for namespace, space in self._spaces().items():
            for thread_id, thread in space.threads.items():
                parts.append(f"{namespace} {thread_id}")
                for checkpoint in thread.checkpoints:
                    parts += [
                        checkpoint.header,
                        repr(checkpoint.payload),
                        repr(checkpoint.metadata),
                    ]
                for name, log in thread.logs.items():
                    parts += [name, *(repr(item.data) for item in log.items)]
        return "\n".join(parts).encode()

    async def payload(self, store: BaseStore, thread_id: str, checkpoint_id: str) -> bytes:
        return self._checkpoint(store, thread_id, checkpoint_id).payload

    async def set_payload(
        self, store: BaseStore, thread_id: str, checkpoint_id: str, value: bytes
    ) -> None:
        self._checkpoint(store, thread_id, checkpoint_id).payload = value

    async def header(self, store: BaseStore, thread_id: str, checkpoint_id: str) -> str:
        return self._checkpoint(store, thread_id, checkpoint_id).header

    async def set_header(
        self, store: BaseStore, thread_id: str, checkpoint_id: str, value: str
    ) -> None:
        self._checkpoint(store, thread_id, checkpoint_id).header = value

    async def items(self, store: BaseStore, thread_id: str, log: str) -> list[bytes]:
        return [item.data for item in self._thread(store, thread_id).logs[log].live()]

    async def set_item(
        self, store: BaseStore, thread_id: str, log: str, index: int, value: bytes
    ) -> None:
        self._thread(store, thread_id).logs[log].live()[index].data = value

    async def snapshot(self, store: BaseStore, thread_id: str) -> Any:
        return thread_id, copy.deepcopy(self._thread(store, thread_id))

    async def restore(self, store: BaseStore, snapshot: Any) -> None:
        thread_id, thread = snapshot
        self._spaces()[store.namespace].threads[thread_id] = thread


_TABLES = ("threads", "checkpoints", "logs", "log_items")
AUDIT_TABLES = ("audit_sessions", "audit_messages", "audit_tool_calls")


class SQLRaw(Raw):
    """SQLite (a file) or PostgreSQL (a schema of its own), through SQLAlchemy Core text."""

    def __init__(self, name: str, url: str, schema: str | None) -> None:
        super().__init__(name)
        self.url = url
        self.schema = schema

    def url_options(self) -> tuple[str, dict[str, Any]]:
        return self.url, ({"schema": self.schema} if self.schema else {})

    def table(self, name: str) -> str:
        full = f"agent_persist_{name}"
        return f'"{self.schema}".{full}' if self.schema else full

    async def q(self, sql: str, **params: Any) -> list[Any]:
        if self.schema is None:
            path = self.url.removeprefix("sqlite:///")
            connection = sqlite3.connect(path)
            try:
                with connection:
                    names = {k: v for k, v in params.items()}
                    cursor = connection.execute(sql, names)
                    return cursor.fetchall() if cursor.description else []
            finally:
                connection.close()
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(sa.make_url(self.url).set(drivername="postgresql+asyncpg"))
        try:
            async with engine.begin() as conn:
                result = await conn.execute(sa.text(sql), params)
                return [tuple(row) for row in result.all()] if result.returns_rows else []
        finally:
            await engine.dispose()

    def _thread_pk(self) -> str:
        return f"(SELECT pk FROM {self.table('threads')} WHERE namespace = :ns AND thread_id = :t)"

    async def dump(self) -> bytes:
        rows: list[str] = []
        for name in (*_TABLES, *AUDIT_TABLES):
            rows += [repr(row) for row in await self.q(f"SELECT * FROM {self.table(name)}")]
        return "\n".join(rows).encode()

    async def payload(self, store: BaseStore, thread_id: str, checkpoint_id: str) -> bytes:
        rows = await self.q(
            f"SELECT payload FROM {self.table('checkpoints')} WHERE checkpoint_id = :c "
            f"AND thread_pk = {self._thread_pk()}",
            c=checkpoint_id,
            ns=store.namespace,
            t=thread_id,
        )
        return bytes(rows[0][0])

    async def set_payload(
        self, store: BaseStore, thread_id: str, checkpoint_id: str, value: bytes
    ) -> None:
        await self.q(
            f"UPDATE {self.table('checkpoints')} SET payload = :v WHERE checkpoint_id = :c "
            f"AND thread_pk = {self._thread_pk()}",
            v=value,
            c=checkpoint_id,
            ns=store.namespace,
            t=thread_id,
        )

    async def header(self, store: BaseStore, thread_id: str, checkpoint_id: str) -> str:
        rows = await self.q(
            f"SELECT header FROM {self.table('checkpoints')} WHERE checkpoint_id = :c "
            f"AND thread_pk = {self._thread_pk()}",
            c=checkpoint_id,
            ns=store.namespace,
            t=thread_id,
        )
        return str(rows[0][0])

    async def set_header(
        self, store: BaseStore, thread_id: str, checkpoint_id: str, value: str
    ) -> None:
        await self.q(
            f"UPDATE {self.table('checkpoints')} SET header = :v WHERE checkpoint_id = :c "
            f"AND thread_pk = {self._thread_pk()}",
            v=value,
            c=checkpoint_id,
            ns=store.namespace,
            t=thread_id,
        )

    def _log_pk(self) -> str:
        return (
            f"(SELECT pk FROM {self.table('logs')} WHERE name = :log "
            f"AND thread_pk = {self._thread_pk()})"
        )

    async def items(self, store: BaseStore, thread_id: str, log: str) -> list[bytes]:
        rows = await self.q(
            f"SELECT data FROM {self.table('log_items')} WHERE removed_at IS NULL "
            f"AND log_pk = {self._log_pk()} ORDER BY seq",
            log=log,
            ns=store.namespace,
            t=thread_id,
        )
        return [bytes(row[0]) for row in rows]

    async def set_item(
        self, store: BaseStore, thread_id: str, log: str, index: int, value: bytes
    ) -> None:
        rows = await self.q(
            f"SELECT seq FROM {self.table('log_items')} WHERE removed_at IS NULL "
            f"AND log_pk = {self._log_pk()} ORDER BY seq",
            log=log,
            ns=store.namespace,
            t=thread_id,
        )
        await self.q(
            f"UPDATE {self.table('log_items')} SET data = :v WHERE seq = :s "
            f"AND log_pk = {self._log_pk()}",
            v=value,
            s=rows[index][0],
            log=log,
            ns=store.namespace,
            t=thread_id,
        )

    async def _columns(self, name: str) -> list[str]:
        if self.schema is None:
            return [row[1] for row in await self.q(f"PRAGMA table_info({self.table(name)})")]
        rows = await self.q(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = :s "
            "AND table_name = :n ORDER BY ordinal_position",
            s=self.schema,
            n=f"agent_persist_{name}",
        )
        return [row[0] for row in rows]

    async def snapshot(self, store: BaseStore, thread_id: str) -> Any:
        keys = {"ns": store.namespace, "t": thread_id}
        wheres = {
            "threads": "namespace = :ns AND thread_id = :t",
            "checkpoints": f"thread_pk = {self._thread_pk()}",
            "logs": f"thread_pk = {self._thread_pk()}",
            "log_items": f"log_pk IN (SELECT pk FROM {self.table('logs')} "
            f"WHERE thread_pk = {self._thread_pk()})",
        }
        saved: list[tuple[str, list[str], list[Any]]] = []
        for name in _TABLES:
            columns = await self._columns(name)
            rows = await self.q(f"SELECT * FROM {self.table(name)} WHERE {wheres[name]}", **keys)
            saved.append((name, columns, rows))
        return saved

    async def restore(self, store: BaseStore, snapshot: Any) -> None:
        for name, columns, rows in snapshot:
            names = ", ".join(f'"{c}"' for c in columns)
            values = ", ".join(f":p{i}" for i in range(len(columns)))
            for row in rows:
                await self.q(
                    f"INSERT INTO {self.table(name)} ({names}) VALUES ({values})",
                    **{f"p{i}": _param(value) for i, value in enumerate(row)},
                )


def _param(value: Any) -> Any:
    """A value read back as a query parameter (a JSON document goes back as its text)."""
    return json.dumps(value) if isinstance(value, dict | list) else value


class RedisRaw(Raw):
    def __init__(self, url: str, prefix: str) -> None:
        super().__init__("redis")
        self.url = url
        self.prefix = prefix

    def url_options(self) -> tuple[str, dict[str, Any]]:
        return self.url, {"prefix": self.prefix}

    def _keys(self, store: BaseStore) -> Any:
        from agent_persist.stores.redis._keys import RedisKeys

        return RedisKeys(self.prefix, store.namespace)

    def _client(self) -> Any:
        from redis.asyncio import Redis

        return Redis.from_url(self.url)

    async def dump(self) -> bytes:
        client = self._client()
        try:
            parts: list[bytes] = []
            async for key in client.scan_iter(match=f"{self.prefix}*", count=500):
                parts.append(key)
                kind = (await client.type(key)).decode()
                if kind == "hash":
                    for field, value in (await client.hgetall(key)).items():
                        parts += [field, value]
                elif kind == "list":
                    parts += await client.lrange(key, 0, -1)
                elif kind == "zset":
                    parts += await client.zrange(key, 0, -1)
                elif kind == "string":
                    parts.append(await client.get(key))
                else:
                    parts.append(await client.dump(key))
            return b"\n".join(parts)
        finally:
            await client.aclose()

    async def _hget(self, key: str, field: str) -> bytes:
        client = self._client()
        try:
            return await client.hget(key, field)
        finally:
            await client.aclose()

    async def _hset(self, key: str, field: str, value: bytes | str) -> None:
        client = self._client()
        try:
            await client.hset(key, field, value)
        finally:
            await client.aclose()

    async def payload(self, store: BaseStore, thread_id: str, checkpoint_id: str) -> bytes:
        return await self._hget(self._keys(store).checkpoints(thread_id), "p:" + checkpoint_id)

    async def set_payload(
        self, store: BaseStore, thread_id: str, checkpoint_id: str, value: bytes
    ) -> None:
        await self._hset(self._keys(store).checkpoints(thread_id), "p:" + checkpoint_id, value)

    async def header(self, store: BaseStore, thread_id: str, checkpoint_id: str) -> str:
        key = self._keys(store).checkpoints(thread_id)
        return (await self._hget(key, "h:" + checkpoint_id)).decode()

    async def set_header(
        self, store: BaseStore, thread_id: str, checkpoint_id: str, value: str
    ) -> None:
        await self._hset(self._keys(store).checkpoints(thread_id), "h:" + checkpoint_id, value)

    async def _seqs(self, store: BaseStore, thread_id: str, log: str) -> list[bytes]:
        client = self._client()
        try:
            return await client.lrange(self._keys(store).log(thread_id, log) + ":o", 0, -1)
        finally:
            await client.aclose()

    async def items(self, store: BaseStore, thread_id: str, log: str) -> list[bytes]:
        base = self._keys(store).log(thread_id, log)
        return [
            await self._hget(base + ":i", seq.decode())
            for seq in await self._seqs(store, thread_id, log)
        ]

    async def set_item(
        self, store: BaseStore, thread_id: str, log: str, index: int, value: bytes
    ) -> None:
        base = self._keys(store).log(thread_id, log)
        seq = (await self._seqs(store, thread_id, log))[index]
        await self._hset(base + ":i", seq.decode(), value)
        client = self._client()
        try:
            await client.lset(base + ":d", index, value)
        finally:
            await client.aclose()

    async def snapshot(self, store: BaseStore, thread_id: str) -> Any:
        base = self._keys(store).thread(thread_id)
        pattern = "".join("\\" + c if c in "\\*?[]" else c for c in base) + "*"
        client = self._client()
        try:
            keys = [key async for key in client.scan_iter(match=pattern, count=500)]
            return [(key, await client.dump(key)) for key in keys]
        finally:
            await client.aclose()

    async def restore(self, store: BaseStore, snapshot: Any) -> None:
        client = self._client()
        try:
            for key, dumped in snapshot:
                await client.restore(key, 0, dumped, replace=True)
        finally:
            await client.aclose()


async def open_raw(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Raw]:
    """Yield the :class:`Raw` of a back end; closes the stores it opened afterwards."""
    raw: Raw
    if name == "memory":
        raw = MemoryRaw()
    elif name == "sqlite":
        raw = SQLRaw("sqlite", f"sqlite:///{tmp_path / 'data.db'}", None)
    elif name == "postgres":
        url = request.getfixturevalue("postgres_url")
        raw = SQLRaw("postgres", url, request.getfixturevalue("postgres_schema"))
    else:
        raw = RedisRaw(
            request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        )
    yield raw
    await raw.close()
