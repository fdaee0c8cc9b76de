"""The thread row every SQL operation starts from: finding, claiming (locking), purging it.

    thread = claim_thread(conn, scope, "thread-1", now, create=True)   # locked, never expired
    touch(conn, scope, thread.pk, now)

Every function here is sync and runs inside a transaction the runner opened. A writer first
*claims* the thread row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers already hold
the database write lock), so the writers of one thread run one after the other and each one
reads the state its predecessor committed. Locks are always taken thread row first, then log
rows, so two writers never deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ...errors import ConflictError, ThreadNotFoundError
from ._statements import Scope

__all__ = [
    "ThreadRow",
    "chunks",
    "claim_thread",
    "find_thread",
    "missing_thread",
    "purge_threads",
    "touch",
]

_CHUNK = 500
_CLAIM_ATTEMPTS = 5


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
    """Delete the checkpoints, logs, log items and audit rows of these threads (and their rows).

    Leases are not touched: they belong to workers, not to the data, and expire by themselves.
    """
    t = scope.tables
    for batch in chunks(list(pks)):
        log_pks = sa.select(t.logs.c.pk).where(t.logs.c.thread_pk.in_(batch))
        for audit in (t.audit_messages, t.audit_tool_calls):  # the audit log's projection
            conn.execute(audit.delete().where(audit.c.log_pk.in_(log_pks)))
        keys = sa.select(t.threads.c.key).where(t.threads.c.pk.in_(batch))
        conn.execute(t.audit_sessions.delete().where(t.audit_sessions.c.thread_key.in_(keys)))
        conn.execute(t.items.delete().where(t.items.c.log_pk.in_(log_pks)))
        conn.execute(t.logs.delete().where(t.logs.c.thread_pk.in_(batch)))
        conn.execute(t.checkpoints.delete().where(t.checkpoints.c.thread_pk.in_(batch)))
        if not keep_rows:
            conn.execute(t.threads.delete().where(t.threads.c.pk.in_(batch)))
