"""The audit projection: audit log items mirrored into real, indexed tables.

    append(conn, scope, "session-1", "audit", sealed, now)   # log items + rows, one transaction
    found = backfill(conn, scope, "session-1", now, dry_run=False)  # items written before

Every audit event written to a thread's ``audit`` log (by
:meth:`~agent_persist.stores.base.BaseStore.append_audit`, a plain ``append``, or a ``put``
appending to it as ``fork`` and ``import`` do) is an item of the log *and* a row of
``agent_persist_audit_messages`` or ``agent_persist_audit_tool_calls`` (keyed like the item:
``log_pk``, ``seq``), and the thread's ``agent_persist_audit_sessions`` row is created or
widened, all in the transaction of the write: a refused write leaves no row. Rows are
inserted with ``ON CONFLICT DO NOTHING``, so a backfill over items already projected adds
nothing. Popping or clearing the audit log leaves the rows (they record what happened);
deleting or expiring the thread deletes them with it (``purge_threads``).

Encryption: on a store opened with ``encryption=``, the items are opened under the thread's
data key (loaded by the write that appends them, or by the backfill) and every row is
written: names and numbers (role, model, tool name, call id, tokens, cost, duration, times,
ids) in clear columns, ``content``, ``input`` and ``output`` sealed under the same data key
(``aes256gcm:`` and base64, bound to namespace, thread, table, column and ``seq``; see
``PayloadCodec.seal_text``). :func:`read_rows` opens them again; a shredded thread's rows
are deleted with it, and any copy of them no longer opens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ...errors import AgentPersistError
from .._audit import AUDIT_LOG, audit_row, check_audit_events
from .._records import decode_item
from ..base import Lease
from . import _logs as logs
from ._schema import as_blob
from ._statements import Scope, digest

__all__ = [
    "CONTENT_COLUMNS",
    "AuditBackfill",
    "append",
    "audit_threads",
    "backfill",
    "project",
    "read_rows",
]


CONTENT_COLUMNS = {"messages": ("content",), "tool_calls": ("input", "output")}
"""The columns that hold what was said or done: sealed when the store encrypts."""


@dataclass
class AuditBackfill:
    """What a backfill added (or, in a dry run, would add), and the items it could not read."""

    threads: int = 0
    sessions: int = 0
    messages: int = 0
    tool_calls: int = 0
    skipped: int = 0
    """Audit log items that are damaged or not audit events: left as they are."""

    def add(self, other: AuditBackfill) -> None:
        """Fold another thread's counts into these."""
        self.threads += other.threads
        self.sessions += other.sessions
        self.messages += other.messages
        self.tool_calls += other.tool_calls
        self.skipped += other.skipped


def _insert(scope: Scope, table: sa.Table) -> Any:
    return (postgresql.insert if scope.postgres else sqlite.insert)(table)


def _audit_log(
    conn: Connection, scope: Scope, thread_id: str, now: float
) -> tuple[int, int] | None:
    """The ``pk`` and ``version`` of the live thread's audit log, or ``None``."""
    t = scope.tables
    found = conn.execute(
        sa.select(t.logs.c.pk, t.logs.c.version)
        .select_from(t.logs.join(t.threads, t.logs.c.thread_pk == t.threads.c.pk))
        .where(
            t.threads.c.key == digest(scope.namespace, thread_id),
            scope.live(now),
            t.logs.c.name_key == digest(AUDIT_LOG),
        )
    ).first()
    return None if found is None else (int(found[0]), int(found[1]))


def _project(
    conn: Connection,
    scope: Scope,
    thread_id: str,
    log_pk: int,
    numbered: Sequence[tuple[int, Mapping[str, Any]]],
) -> AuditBackfill:
    """Insert the rows of ``(seq, event)`` pairs and widen the session row; what was added."""
    t = scope.tables
    key = digest(scope.namespace, thread_id)
    where = {"thread_key": key, "namespace": scope.namespace, "thread_id": thread_id}
    rows: dict[str, list[dict[str, Any]]] = {"messages": [], "tool_calls": []}
    times: list[float] = []
    user: str | None = None
    for seq, event in numbered:
        projected = audit_row(event)
        if projected is None:
            continue
        table, row = projected
        if row["created_at"] is not None:
            times.append(row["created_at"])
        if table == "sessions":
            user = row["user_id"] or user
        else:
            for column in CONTENT_COLUMNS[table]:
                if row[column] is not None:
                    row[column] = scope.codec.seal_text(
                        thread_id, [table, column, seq], row[column]
                    )
            rows[table].append({"log_pk": log_pk, "seq": seq, **where, **row})
    for table, name in ((t.audit_messages, "messages"), (t.audit_tool_calls, "tool_calls")):
        if rows[name]:
            conn.execute(_insert(scope, table).on_conflict_do_nothing(), rows[name])
    s = t.audit_sessions
    first, last = (min(times), max(times)) if times else (None, None)
    new = _insert(scope, s).values(**where, user_id=user, first_at=first, last_at=last)
    ex = new.excluded
    conn.execute(
        new.on_conflict_do_update(
            index_elements=[s.c.thread_key],
            set_={
                "user_id": sa.func.coalesce(ex.user_id, s.c.user_id),
                "first_at": sa.case(
                    (ex.first_at.is_(None), s.c.first_at),
                    (s.c.first_at.is_(None) | (ex.first_at < s.c.first_at), ex.first_at),
                    else_=s.c.first_at,
                ),
                "last_at": sa.case(
                    (ex.last_at.is_(None), s.c.last_at),
                    (s.c.last_at.is_(None) | (ex.last_at > s.c.last_at), ex.last_at),
                    else_=s.c.last_at,
                ),
            },
        )
    )
    return AuditBackfill(messages=len(rows["messages"]), tool_calls=len(rows["tool_calls"]))


def project(
    conn: Connection, scope: Scope, thread_id: str, sealed: Sequence[bytes], now: float
) -> None:
    """Project items just appended to the live thread's audit log, in the caller's transaction.

    The append bumped the log's version by one per item, so the new items are the last
    ``len(sealed)`` versions: their ``seq`` is known without reading them back. Items that
    are not audit events (a plain ``append`` may write anything) stay log items only.
    """
    log = _audit_log(conn, scope, thread_id, now)
    assert log is not None  # noqa: S101 - the caller's append created the live log
    log_pk, version = log
    first = version - len(sealed) + 1
    numbered: list[tuple[int, Mapping[str, Any]]] = []
    for index, data in enumerate(sealed):
        event = _event(scope, thread_id, first + index, data)
        if event is not None:
            numbered.append((first + index, event))
    _project(conn, scope, thread_id, log_pk, numbered)


def _event(scope: Scope, thread_id: str, seq: int, data: Any) -> dict[str, Any] | None:
    """The audit event an item holds, or ``None`` when it is damaged or not an event."""
    where = lambda: f"{scope.where(thread_id)}: log {AUDIT_LOG!r} item {seq}"  # noqa: E731
    try:
        codec = scope.codec.for_log(thread_id, AUDIT_LOG)
        value = decode_item(as_blob(data), codec, position=seq, where=where)
        return check_audit_events([value])[0]
    except (AgentPersistError, TypeError, ValueError, RecursionError):
        return None


def append(
    conn: Connection,
    scope: Scope,
    thread_id: str,
    name: str,
    sealed: Sequence[bytes],
    now: float,
    *,
    lease: Lease | None = None,
    first: int | None = None,
) -> None:
    """:func:`._logs.append` to the audit log, and :func:`project` the items, in one go."""
    logs.append(conn, scope, thread_id, name, sealed, now, lease=lease, first=first)
    project(conn, scope, thread_id, sealed, now)


def audit_threads(conn: Connection, scope: Scope, now: float) -> list[str]:
    """The live threads of the namespace that have an audit log, oldest first."""
    t = scope.tables
    found = conn.execute(
        sa.select(t.threads.c.thread_id)
        .select_from(t.threads.join(t.logs, t.logs.c.thread_pk == t.threads.c.pk))
        .where(
            t.threads.c.namespace == scope.namespace,
            scope.live(now),
            t.logs.c.name_key == digest(AUDIT_LOG),
        )
        .order_by(t.threads.c.pk)
    )
    return [str(thread_id) for thread_id in found.scalars()]


def backfill(
    conn: Connection, scope: Scope, thread_id: str, now: float, *, dry_run: bool
) -> AuditBackfill:
    """Project the thread's audit items that have no row yet (all of them, kept or popped).

    Items that do not decode or are not audit events are counted in ``skipped`` and left.
    With ``dry_run`` nothing is written: the counts say what a run would add.
    """
    log = _audit_log(conn, scope, thread_id, now)
    if log is None:
        return AuditBackfill()
    log_pk = log[0]
    t = scope.tables
    done: set[int] = set()
    for table in (t.audit_messages, t.audit_tool_calls):
        done.update(conn.execute(sa.select(table.c.seq).where(table.c.log_pk == log_pk)).scalars())
    has_session = conn.execute(
        sa.select(sa.literal(1)).where(
            t.audit_sessions.c.thread_key == digest(scope.namespace, thread_id)
        )
    ).first()
    items = conn.execute(
        sa.select(t.items.c.seq, t.items.c.data)
        .where(t.items.c.log_pk == log_pk)
        .order_by(t.items.c.seq)
    ).all()
    found = AuditBackfill(threads=1, sessions=0 if has_session else 1)
    numbered: list[tuple[int, Mapping[str, Any]]] = []
    for seq, data in items:
        if seq in done:
            continue
        event = _event(scope, thread_id, seq, data)
        if event is None:
            found.skipped += 1
        else:
            numbered.append((seq, event))
    if dry_run:
        counts = [audit_row(event) for _, event in numbered]
        found.messages = sum(1 for c in counts if c is not None and c[0] == "messages")
        found.tool_calls = sum(1 for c in counts if c is not None and c[0] == "tool_calls")
        return found
    added = _project(conn, scope, thread_id, log_pk, numbered)
    found.messages, found.tool_calls = added.messages, added.tool_calls
    return found


def read_rows(conn: Connection, scope: Scope, thread_id: str, table: str) -> list[dict[str, Any]]:
    """The thread's rows of ``messages`` or ``tool_calls`` in log order, content opened.

    The caller has loaded the thread's data key when the store encrypts.
    """
    t = scope.tables
    found = t.audit_messages if table == "messages" else t.audit_tool_calls
    result = conn.execute(
        sa.select(found)
        .where(found.c.thread_key == digest(scope.namespace, thread_id))
        .order_by(found.c.seq)
    )
    rows: list[dict[str, Any]] = []
    for record in result.mappings():
        row = {k: v for k, v in record.items() if k not in ("thread_key", "log_pk")}
        for column in CONTENT_COLUMNS[table]:
            if row[column] is not None:
                where = f"{scope.where(thread_id)}: audit {table} row {row['seq']} {column}"
                row[column] = scope.codec.open_text(
                    thread_id, [table, column, row["seq"]], str(row[column]), where=where
                )
        rows.append(row)
    return rows
