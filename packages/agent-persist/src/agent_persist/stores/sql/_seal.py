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

from .._records import StoredValue
from ._statements import Scope
from ._threads import find_thread

__all__ = ["replace_values", "stored_values"]


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
        StoredValue(row.name, None, None, ("i", row.log_pk, row.seq), row.data)
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
