"""Sealing a thread's clear values in place (``seal_thread``): read them all, replace each.

    values = stored_values(conn, scope, "thread-1", now)       # payloads and items, as bytes
    replaced = replace_values(conn, scope, [(value, sealed)])  # compare-and-set, row by row

Each ``UPDATE`` names the row by its key *and* the bytes read, so a row a concurrent writer
changed or deleted since is left alone (counted as not replaced); nothing else of the row
(headers, log versions, times) is written.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .._records import SEALED_TEXT_PREFIX, StoredValue
from ._audit import CONTENT_COLUMNS
from ._statements import Scope, digest
from ._threads import find_thread

__all__ = ["clear_audit_columns", "replace_audit_columns", "replace_values", "stored_values"]


def stored_values(conn: Connection, scope: Scope, thread_id: str, now: float) -> list[StoredValue]:
    """Every checkpoint payload and log item (live or kept for old checkpoints) of the thread."""
    thread = find_thread(conn, scope, thread_id, now)
    if thread is None:
        return []
    c, logs, items = scope.tables.checkpoints, scope.tables.logs, scope.tables.items
    values = [
        StoredValue(None, row.checkpoint_id, row.header, ("c", thread.pk, row.id_key), row.payload)
        for row in conn.execute(
            sa.select(c.c.id_key, c.c.checkpoint_id, c.c.header, c.c.payload).where(
                c.c.thread_pk == thread.pk
            )
        )
    ]
    values.extend(
        StoredValue(row.name, None, None, ("i", row.log_pk, row.seq), row.data, row.seq)
        for row in conn.execute(
            sa.select(items.c.log_pk, items.c.seq, items.c.data, logs.c.name)
            .join(logs, logs.c.pk == items.c.log_pk)
            .where(logs.c.thread_pk == thread.pk)
        )
    )
    return values


def replace_values(
    conn: Connection, scope: Scope, changes: Sequence[tuple[StoredValue, bytes]]
) -> int:
    """Replace each value whose row still holds the bytes read; returns how many."""
    c, items = scope.tables.checkpoints, scope.tables.items
    replaced = 0
    for value, data in changes:
        table, first, second = value.locator
        if table == "c":
            statement = (
                c.update()
                .where(c.c.thread_pk == first, c.c.id_key == second, c.c.payload == value.data)
                .values(payload=data)
            )
        else:
            statement = (
                items.update()
                .where(items.c.log_pk == first, items.c.seq == second, items.c.data == value.data)
                .values(data=data)
            )
        replaced += conn.execute(statement).rowcount
    return replaced


AuditColumn = tuple[str, str, int, str]
"""An audit table's name, a content column, the row's seq and the column's stored text."""


def clear_audit_columns(conn: Connection, scope: Scope, thread_id: str) -> list[AuditColumn]:
    """The thread's audit content columns still in clear (written before encryption)."""
    found: list[AuditColumn] = []
    key = digest(scope.namespace, thread_id)
    for name, table in (
        ("messages", scope.tables.audit_messages),
        ("tool_calls", scope.tables.audit_tool_calls),
    ):
        for column in CONTENT_COLUMNS[name]:
            col = table.c[column]
            rows = conn.execute(
                sa.select(table.c.seq, col).where(
                    table.c.thread_key == key,
                    col.is_not(None),
                    sa.not_(col.startswith(SEALED_TEXT_PREFIX, autoescape=True)),
                )
            )
            found.extend((name, column, row.seq, row[1]) for row in rows)
    return found


def replace_audit_columns(
    conn: Connection, scope: Scope, thread_id: str, changes: Sequence[tuple[AuditColumn, str]]
) -> int:
    """Replace each column that still holds the text read (compare-and-set); how many."""
    key = digest(scope.namespace, thread_id)
    tables = {"messages": scope.tables.audit_messages, "tool_calls": scope.tables.audit_tool_calls}
    replaced = 0
    for (name, column, seq, old), new in changes:
        table = tables[name]
        statement = (
            table.update()
            .where(table.c.thread_key == key, table.c.seq == seq, table.c[column] == old)
            .values({column: new})
        )
        replaced += conn.execute(statement).rowcount
    return replaced
