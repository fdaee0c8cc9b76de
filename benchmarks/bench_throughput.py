"""Turns per second with many conversations in flight: ours next to LangGraph and the SDK.

Each point runs 1,024 turns spread over C conversations in flight at once in one process
(C = 1, 8, 32, 128), and over 4 processes of 32 (``--turns N``; ``--points 1x128,4x32``
runs only those; ``--contenders`` a comma-separated subset of the names below). A turn reads
the conversation's latest state and writes one new checkpoint with the turn's two new
messages, the way each contender does it:

- ``ours`` (PostgreSQL, Redis): ``store.get`` of the head, then ``store.put`` of the next
  checkpoint with the two messages appended to its transcript log. Our store (under
  ``ours`` and ``ours StoreSession``) is opened with ``warm_pool=True``, its pool opened
  (on PostgreSQL also primed) at setup, as LangGraph's pool is opened to its ``min_size``
  before the turns; the SDK's sessions offer no such step.
- ``LangGraph`` (PostgreSQL): ``AsyncPostgresSaver.aget_tuple``, then ``aput`` of a
  checkpoint whose ``messages`` channel holds the whole conversation, as LangGraph writes it
  after a super-step (a psycopg pool of 10, as our default; ``autocommit``,
  ``prepare_threshold=0`` and ``dict_row`` as its docs require).
- ``ours StoreSession`` against the SDK's ``SQLAlchemySession`` (PostgreSQL, asyncpg,
  SQLAlchemy's default pool) and ``RedisSession`` (Redis, redis-py's default client), all as
  the Runner uses a session: ``get_items()``, then ``add_items`` of the turn's two items.

It prints turns per second, the p50 and p99 time of one turn, p99/p50, and the turns that
failed. A conversation's history grows over the point (at 1 x 1 to 2,048 messages, at
1 x 128 to 16), so read a row against the rows beside it, not against other points.

    uv sync --group bench
    uv run python benchmarks/bench_throughput.py [--turns 1024] [--stores postgres,redis]

PostgreSQL and Redis come from AGENT_PERSIST_POSTGRES_URL / AGENT_PERSIST_REDIS_URL (the
local servers by default). Each contender and point writes under its own schema or key
prefix, removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from _harness import (
    POSTGRES_URL,
    REDIS_URL,
    Tally,
    clean,
    fresh_name,
    points,
    run_point,
    summary,
    turn_messages,
)

from agent_persist import Envelope, Producer, open_store
from agent_persist.errors import NotFoundError
from agent_persist.stores.base import BaseStore

PRODUCER = Producer(package="bench")
LANGGRAPH_POOL = 10


def _asyncpg_url() -> Any:
    import sqlalchemy as sa

    return sa.make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg")


def _psycopg_conninfo(schema: str) -> str:
    import sqlalchemy as sa

    url = sa.make_url(POSTGRES_URL)
    return (
        f"host={url.host} port={url.port or 5432} dbname={url.database} user={url.username}"
        + (f" password={url.password}" if url.password else "")
        + f" options='-c search_path={schema}'"
    )


def _open_ours(backend: str, where: str) -> BaseStore:
    # its pool opened at setup, as LangGraph's is (min_size)
    if backend == "postgres":
        return open_store(POSTGRES_URL, schema=where, warm_pool=True)
    return open_store(REDIS_URL, prefix=where, warm_pool=True)


class OursStore:
    """``store.get`` of the head, then ``store.put`` appending the turn's two messages."""

    def __init__(self, backend: str, where: str) -> None:
        self.backend, self.where = backend, where

    async def open(self, tally: Tally) -> None:
        self.store = _open_ours(self.backend, self.where)
        await self.store.setup()

    async def turn(self, conversation: str, turn: int) -> None:
        try:
            head = await self.store.get(conversation)
        except NotFoundError:
            envelope = Envelope.create(
                kind="bench.chat",
                schema_version=1,
                thread_id=conversation,
                payload={"turn": turn},
                producer=PRODUCER,
            )
        else:
            envelope = head.next(payload={"turn": turn})
        await self.store.put(envelope, appends={"transcript": turn_messages(turn)})

    async def close(self) -> None:
        await self.store.close()


class OursSession:
    """Our ``StoreSession``: ``get_items()``, then ``add_items`` of the turn's two items."""

    def __init__(self, backend: str, where: str) -> None:
        self.backend, self.where = backend, where
        self.sessions: dict[str, Any] = {}

    async def open(self, tally: Tally) -> None:
        from openai_agents_persist import StoreSession

        self.store = _open_ours(self.backend, self.where)
        await self.store.setup()
        self.make = lambda name: StoreSession(name, store=self.store)

    async def turn(self, conversation: str, turn: int) -> None:
        session = self.sessions.get(conversation)
        if session is None:
            session = self.sessions[conversation] = self.make(conversation)
        await session.get_items()
        await session.add_items(turn_messages(turn))

    async def close(self) -> None:
        await self.store.close()


class SdkSession:
    """The SDK's ``SQLAlchemySession`` or ``RedisSession``, as a user would open it."""

    def __init__(self, backend: str, where: str) -> None:
        self.backend, self.where = backend, where
        self.sessions: dict[str, Any] = {}

    async def open(self, tally: Tally) -> None:
        if self.backend == "postgres":
            from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
            from sqlalchemy.ext.asyncio import create_async_engine

            self.engine = create_async_engine(
                _asyncpg_url(),
                connect_args={"server_settings": {"search_path": self.where}},
            )
            self.make = lambda name: SQLAlchemySession(name, engine=self.engine)
        else:
            from agents.extensions.memory.redis_session import RedisSession
            from redis.asyncio import Redis

            self.client = Redis.from_url(REDIS_URL)
            self.make = lambda name: RedisSession(
                name, redis_client=self.client, key_prefix=f"{self.where}:sdk"
            )

    async def turn(self, conversation: str, turn: int) -> None:
        session = self.sessions.get(conversation)
        if session is None:
            session = self.sessions[conversation] = self.make(conversation)
        await session.get_items()
        await session.add_items(turn_messages(turn))

    async def close(self) -> None:
        if self.backend == "postgres":
            await self.engine.dispose()
        else:
            await self.client.aclose()


class LangGraph:
    """``AsyncPostgresSaver``: ``aget_tuple``, then ``aput`` of the whole ``messages`` channel."""

    def __init__(self, backend: str, where: str) -> None:
        self.where = where

    async def open(self, tally: Tally) -> None:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        self.pool: Any = AsyncConnectionPool(
            _psycopg_conninfo(self.where),
            min_size=LANGGRAPH_POOL,
            max_size=LANGGRAPH_POOL,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=False,
        )
        await self.pool.open()
        self.saver = AsyncPostgresSaver(self.pool)

    async def turn(self, conversation: str, turn: int) -> None:
        from langgraph.checkpoint.base import empty_checkpoint

        config: Any = {"configurable": {"thread_id": conversation, "checkpoint_ns": ""}}
        latest = await self.saver.aget_tuple(config)
        messages: list[Any] = []
        version = None
        if latest is not None:
            config = latest.config
            messages = list(latest.checkpoint["channel_values"].get("messages", []))
            version = latest.checkpoint["channel_versions"].get("messages")
        version = self.saver.get_next_version(version, None)
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": [*messages, *turn_messages(turn)]}
        checkpoint["channel_versions"] = {"messages": version}
        metadata: Any = {"source": "loop", "step": turn, "parents": {}}
        await self.saver.aput(config, checkpoint, metadata, {"messages": version})

    async def close(self) -> None:
        await self.pool.close()


async def prepare(contender: str, where: str) -> None:
    """What must exist before several processes start: the schema and the tables."""
    if contender == "LangGraph":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        conninfo = _psycopg_conninfo(where).replace(f" options='-c search_path={where}'", "")
        async with AsyncPostgresSaver.from_conn_string(conninfo) as saver:
            await saver.conn.execute(f'CREATE SCHEMA "{where}"')  # type: ignore[arg-type]
            await saver.conn.execute(f'SET search_path TO "{where}"')  # type: ignore[arg-type]
            await saver.setup()
    elif contender == "SDK SQLAlchemySession":
        from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(
            _asyncpg_url(), connect_args={"server_settings": {"search_path": where}}
        )
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{where}"'))
        await SQLAlchemySession("setup", engine=engine, create_tables=True).get_items()
        await engine.dispose()


CONTENDERS: dict[str, list[tuple[str, type[Any]]]] = {
    "postgres": [
        ("ours", OursStore),
        ("LangGraph", LangGraph),
        ("ours StoreSession", OursSession),
        ("SDK SQLAlchemySession", SdkSession),
    ],
    "redis": [
        ("ours", OursStore),
        ("ours StoreSession", OursSession),
        ("SDK RedisSession", SdkSession),
    ],
}
LABELS = {"postgres": "PostgreSQL", "redis": "Redis"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1024)
    parser.add_argument("--stores", default="postgres,redis")
    parser.add_argument("--points", help="only these, e.g. 1x128,4x32")
    parser.add_argument("--contenders", help="only these, e.g. ours,LangGraph")
    args = parser.parse_args()
    only = set(args.contenders.split(",")) if args.contenders else None
    print(f"{args.turns:,} turns per point (processes x conversations in flight)")
    print()
    print("| store | contender | in flight | turns/s | p50 | p99 | p99/p50 | failed |")
    print("| --- | --- | --- | --: | --: | --: | --: | --: |")
    errors: set[str] = set()
    for backend in args.stores.split(","):
        for processes, in_flight, label in points(args.points):
            for name, factory in CONTENDERS[backend]:  # side by side, point by point
                if only is not None and name not in only:
                    continue
                where = fresh_name("ap_bench_tput", backend)
                try:
                    asyncio.run(prepare(name, where))
                    tallies = run_point(factory, (backend, where), processes, in_flight, args.turns)
                finally:
                    clean(backend, where)
                result = summary(tallies)
                errors |= {f"{name}: {error}" for error in result.errors}
                print(f"| {LABELS[backend]} | {name} | {label} | {result.cells()} |", flush=True)
    for error in sorted(errors):
        print(f"\nfailure seen: {error}")


if __name__ == "__main__":
    main()
