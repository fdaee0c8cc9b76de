"""Damage one stored log item in place, as a disk fault or a hand edit would, on any store.

    await damage_log_item(url, "user-1", "items", 2, b"json:{", schema=schema)

The item is found by its position among the log's live items (0 the oldest, as ``read_log``
counts) and its stored bytes replaced outside the store: raw SQL on SQLite and PostgreSQL,
the item's hash field and its read mirror on Redis.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

TRUNCATED = b'json:{"item":{"role":"user","content":"cut'
"""A plain JSON item cut short: the store's frame, then JSON that does not parse."""
GARBAGE = b"\x00\xfe not sealed by any codec"
"""Bytes no codec wrote."""


def _statement(tables: str) -> str:
    log = (
        f"(SELECT l.pk FROM {tables}agent_persist_logs l JOIN {tables}agent_persist_threads t "
        "ON l.thread_pk = t.pk WHERE t.namespace = :n AND t.thread_id = :t AND l.name = :l)"
    )
    return (
        f"UPDATE {tables}agent_persist_log_items SET data = :d WHERE log_pk = {log} AND seq = "
        f"(SELECT seq FROM {tables}agent_persist_log_items WHERE log_pk = {log} "
        "AND removed_at IS NULL ORDER BY seq LIMIT 1 OFFSET :p)"
    )


async def damage_log_item(
    url: str,
    thread_id: str,
    log: str,
    position: int,
    data: bytes,
    *,
    namespace: str = "default",
    schema: str | None = None,
    prefix: str | None = None,
) -> None:
    """Replace the stored bytes of the live item at ``position`` of ``log`` with ``data``."""
    values = {"d": data, "n": namespace, "t": thread_id, "l": log, "p": position}
    if url.startswith("sqlite"):
        raw = sqlite3.connect(sa.make_url(url).database or "")
        try:
            with raw:
                changed = raw.execute(_statement(""), values).rowcount
        finally:
            raw.close()
    elif url.startswith("postgresql"):
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(sa.make_url(url).set(drivername="postgresql+asyncpg"))
        try:
            async with engine.begin() as conn:
                result = await conn.execute(sa.text(_statement(f'"{schema}".')), values)
                changed = result.rowcount
        finally:
            await engine.dispose()
    else:
        changed = await _damage_redis(url, prefix or "agent_persist", namespace, values)
    assert changed == 1, f"no live item at position {position} of {thread_id!r}/{log!r}"


async def _damage_redis(url: str, prefix: str, namespace: str, values: dict[str, object]) -> int:
    from redis.asyncio import Redis

    from agent_persist.stores.redis._keys import RedisKeys

    client = Redis.from_url(url)
    try:
        key = RedisKeys(prefix, namespace).log(str(values["t"]), str(values["l"]))
        position = int(str(values["p"]))
        seq = await client.lindex(key + ":o", position)  # pyright: ignore[reportUnknownMemberType]
        if seq is None:
            return 0
        await client.hset(key + ":i", seq, values["d"])  # pyright: ignore
        await client.lset(key + ":d", position, values["d"])  # pyright: ignore
        return 1
    finally:
        await client.aclose()
