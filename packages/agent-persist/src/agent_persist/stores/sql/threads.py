"""What every SQL transaction function shares: the scope, thread locking, purging, filters.

    thread = claim_thread(conn, scope, "thread-1", now, create=True)   # locked, never expired
    scope.sql.touch(conn, pk=thread.pk, now=now)

Every function here is sync and runs inside a transaction the runner opened. A writer first
*claims* the thread row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers already hold
the database write lock), so the writers of one thread run one after the other and each one
reads the state its predecessor committed. Locks are always taken thread row first, then log
rows, so two writers never deadlock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from .._json import JSON
from ..codecs import PayloadCodec
from ..errors import ConflictError, CorruptCheckpointError, ThreadNotFoundError
from ._ddl import Tables
from ._records import describe, load_json
from ._sql_statements import Statements, digest

__all__ = [
    "Scope",
    "ThreadRow",
    "as_blob",
    "as_text",
    "chunks",
    "claim_thread",
    "find_thread",
    "json_text",
    "load_object",
    "metadata_filter",
    "missing_thread",
    "purge_threads",
    "touch",
]

_CHUNK = 500
_CLAIM_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Scope:
    """One store's view: its tables and statements, namespace, TTL and codec."""

    tables: Tables
    sql: Statements
    namespace: str
    ttl: float | None
    """Seconds a thread lives after its last write, or ``None``."""
    codec: PayloadCodec
    label: str
    """The database, password masked, as error messages name it."""
    postgres: bool

    def where(self, thread_id: str, checkpoint_id: str | None = None) -> str:
        """Where a stored thing lives, for error messages."""
        return describe(self.label, thread_id, checkpoint_id)

    def alive_after(self, now: float) -> float:
        """Threads last written after this instant are live (``-inf`` without a TTL)."""
        return -math.inf if self.ttl is None else now - self.ttl

    def live(self, now: float) -> ColumnElement[bool]:
        """The live-thread condition, for queries built per call."""
        return self.tables.threads.c.updated_at > self.alive_after(now)

    def expired(self, updated_at: float, now: float) -> bool:
        """The Python twin of :meth:`live` for a row already read."""
        return self.ttl is not None and now - updated_at >= self.ttl

    def key(self, thread_id: str) -> dict[str, bytes]:
        """The parameter finding one thread of this namespace: its digest."""
        return {"key": digest(self.namespace, thread_id)}

    def identity(self, thread_id: str) -> dict[str, Any]:
        """The parameters of a new thread (or lease) row: digest, namespace and id."""
        return {
            "key": digest(self.namespace, thread_id),
            "namespace": self.namespace,
            "thread_id": thread_id,
        }


@dataclass(frozen=True, slots=True)
class ThreadRow:
    """The parts of a thread row that writers need."""

    pk: int
    head_id: str | None
    checkpoint_count: int
    next_position: int


def chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """Slices small enough for an ``IN (...)`` list on every database."""
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def as_text(value: Any) -> str | bytes:
    """A column value as JSON text; SQLite columns hold whatever a raw UPDATE put there."""
    return value if isinstance(value, str | bytes) else str(value)


def as_blob(value: Any) -> bytes:
    """A column value as bytes, for the codec to judge (a damaged row may hold text)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(cast("bytes", value))
    return str(value).encode("utf-8")


def load_object(text: Any, *, where: str) -> dict[str, Any]:
    """Parse a JSON object column; :class:`CorruptCheckpointError` if it is not one."""
    value = load_json(as_text(text), where=where)
    if not isinstance(value, dict):
        raise CorruptCheckpointError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return cast("dict[str, Any]", value)


def json_text(scope: Scope, column: sa.ColumnElement[Any]) -> ColumnElement[Any]:
    """Select a JSON column as text, to be parsed by :func:`load_object`."""
    if scope.postgres:
        return sa.cast(column, sa.Text)
    return sa.type_coerce(column, sa.Text)


def _sqlite_match(column: sa.ColumnElement[Any], key: str, value: JSON) -> ColumnElement[bool]:
    """``metadata[key] == value`` with JSON types kept apart (1 is not true, nor "1")."""
    entry = sa.func.json_each(column).table_valued("key", "type", "atom")
    conditions: list[ColumnElement[bool]] = [entry.c.key == key]
    if value is None or isinstance(value, bool):
        conditions.append(entry.c.type == json.dumps(value))
    elif isinstance(value, int | float):
        conditions += [entry.c.type.in_(("integer", "real")), entry.c.atom == value]
    else:
        conditions += [entry.c.type == "text", entry.c.atom == value]
    return sa.exists().where(*conditions)


def metadata_filter(
    scope: Scope, column: sa.ColumnElement[Any], wanted: Mapping[str, JSON]
) -> list[ColumnElement[bool]]:
    """Conditions for top-level metadata equality, every value a bound parameter."""
    if not wanted:
        return []
    if scope.postgres:
        return [sa.type_coerce(column, JSONB()).contains(dict(wanted))]
    return [_sqlite_match(column, key, value) for key, value in wanted.items()]


def missing_thread(scope: Scope, thread_id: str) -> ThreadNotFoundError:
    """The error for a thread that is absent, expired or without a checkpoint."""
    return ThreadNotFoundError(f"{scope.where(thread_id)} does not exist")


def _row(row: Any) -> ThreadRow:
    return ThreadRow(row.pk, row.head_id, row.checkpoint_count, row.next_position)


def find_thread(conn: Connection, scope: Scope, thread_id: str, now: float) -> ThreadRow | None:
    """The live thread, read without a lock (for readers)."""
    row = scope.sql.find(conn, **scope.key(thread_id), alive_after=scope.alive_after(now)).first()
    return None if row is None else _row(row)


def claim_thread(
    conn: Connection, scope: Scope, thread_id: str, now: float, *, create: bool
) -> ThreadRow | None:
    """Lock the thread's row for this transaction and return it, if it is live.

    With ``create``, a missing thread is inserted and an expired one is purged and reset,
    so the caller always gets a live thread. Without it, a missing or expired thread gives
    ``None`` and nothing changes.
    """
    sql = scope.sql
    for _ in range(_CLAIM_ATTEMPTS):
        row = sql.claim(conn, **scope.key(thread_id)).first()
        if row is not None and not scope.expired(row.updated_at, now):
            return _row(row)
        if not create:
            return None
        if row is not None:
            purge_threads(conn, scope, [row.pk], keep_rows=True)
            sql.reset_thread(conn, pk=row.pk, now=now)
            return ThreadRow(row.pk, None, 0, 0)
        pk = sql.insert_thread(conn, **scope.identity(thread_id), now=now).scalar()
        if pk is not None:
            return ThreadRow(pk, None, 0, 0)
        # Another transaction created the thread after our SELECT: lock its row next round.
    raise ConflictError(f"{scope.where(thread_id)}: the thread kept changing; try again")


def touch(conn: Connection, scope: Scope, thread_pk: int, now: float) -> None:
    """Record a write: the thread's TTL starts again."""
    scope.sql.touch(conn, pk=thread_pk, now=now)


def purge_threads(
    conn: Connection, scope: Scope, pks: Iterable[int], *, keep_rows: bool = False
) -> None:
    """Delete the checkpoints, logs and log items of these threads (and their rows).

    Leases are not touched: they belong to workers, not to the data, and expire by themselves.
    """
    t = scope.tables
    for batch in chunks(list(pks)):
        log_pks = sa.select(t.logs.c.pk).where(t.logs.c.thread_pk.in_(batch))
        conn.execute(t.items.delete().where(t.items.c.log_pk.in_(log_pks)))
        conn.execute(t.logs.delete().where(t.logs.c.thread_pk.in_(batch)))
        conn.execute(t.checkpoints.delete().where(t.checkpoints.c.thread_pk.in_(batch)))
        if not keep_rows:
            conn.execute(t.threads.delete().where(t.threads.c.pk.in_(batch)))
