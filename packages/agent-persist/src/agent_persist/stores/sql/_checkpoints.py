"""The SQL store's checkpoint history: put, get, list and delete.

    versions = put(conn, scope, envelope, encoded, {"transcript": [sealed]}, now, keep_last=None)
    envelope = get(conn, scope, "thread-1", None, now)

A checkpoint row stores the header and sealed payload from
:func:`~agent_persist.stores._records.encode_checkpoint`, the log versions it saw (JSON text),
its ``position`` in the thread (the order of history) and copies of ``created_at`` and
``metadata`` to filter on. The thread row keeps the head and a summary of it, so the head
check of ``put`` and ``list_threads`` read one row per thread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ..._json import JSON, canonical_json
from ...envelope import Envelope, Status
from ...errors import (
    CheckpointNotFoundError,
    ConflictError,
    CorruptCheckpointError,
)
from .._records import EncodedCheckpoint, decode_checkpoint
from ..base import Lease, ThreadInfo
from ._leases import hold
from ._logs import append_all, clear_all
from ._retention import trim
from ._schema import as_blob, as_text, load_object
from ._server_put import call_put, conflict
from ._statements import Scope, digest
from ._threads import claim_thread, find_thread, missing_thread, purge_threads

__all__ = ["delete_thread", "get", "list_checkpoints", "list_threads", "put"]


def put(
    conn: Connection,
    scope: Scope,
    envelope: Envelope,
    encoded: EncodedCheckpoint,
    appends: Mapping[str, Sequence[bytes]],
    now: float,
    *,
    keep_last: int | None,
    lease: Lease | None = None,
    clear: Sequence[str] = (),
    first: Mapping[str, int] | None = None,
    slow: bool = False,
) -> dict[str, int]:
    """Move the head, clear, append, pin every log and add the checkpoint, in one transaction.

    With ``lease``, the first statement checks it still holds the thread (and locks it).
    The logs named in ``clear`` are emptied before the appends (:func:`._logs.clear_all`),
    so the versions pinned see them empty; a refusal below rolls the clearing back too.

    On PostgreSQL all of it is one statement calling the server-side function
    (:mod:`._server_put`), unless ``slow``: then, as on SQLite, one statement at a time.
    Cost: one thread row update, one upsert and one batch insert per appended log, one update
    of the thread's log rows (not their items) and one insert: O(new items + number of logs),
    plus O(cleared items) for ``clear``.

    Returns:
        The version of every log of the thread, as the new checkpoint records them.

    Raises:
        ConflictError: The head is not ``envelope.parent_id``, or the id is already used.
        LeaseLostError: ``lease`` no longer holds the thread.
        PositionsMoved: ``first`` (given when items are bound to their positions) does not
            say where each log's first appended item lands; nothing written.
        SlowPath: PostgreSQL's function left the put to the client (nothing was written);
            run it again with ``slow=True``.
    """
    if scope.sql.put_call is not None and not slow:
        pk, versions, count = call_put(
            conn, scope, envelope, encoded, appends, now, lease=lease, clear=clear, first=first
        )
    else:
        pk, versions, count = _put_statements(
            conn, scope, envelope, encoded, appends, now, lease=lease, clear=clear, first=first
        )
    if keep_last is not None and count > keep_last:
        trim(conn, scope, pk, keep_last)
    return versions


def _put_statements(
    conn: Connection,
    scope: Scope,
    envelope: Envelope,
    encoded: EncodedCheckpoint,
    appends: Mapping[str, Sequence[bytes]],
    now: float,
    *,
    lease: Lease | None,
    clear: Sequence[str],
    first: Mapping[str, int] | None,
) -> tuple[int, dict[str, int], int]:
    """:func:`put` one statement at a time: the thread's pk, the versions, its checkpoint count."""
    hold(conn, scope, lease, now)
    # Move the head: ``envelope`` becomes it only if its parent is the head; the thread's
    # row stays locked until the transaction ends.
    head = {
        "head_id": envelope.checkpoint_id,
        "kind": envelope.kind,
        "schema_version": envelope.schema_version,
        "step": envelope.step,
        "status": envelope.status.value,
        "metadata": envelope.metadata,
        "now": now,
    }
    if envelope.parent_id is None:  # a new thread, or one with logs only, or an expired one
        thread = claim_thread(conn, scope, envelope.thread_id, now, create=True)
        assert thread is not None  # noqa: S101 - create=True always returns a thread
        if thread.head_id is not None:
            raise conflict(scope, envelope, thread.head_id)
        row = scope.sql.set_head(conn, pk=thread.pk, **head).one()
    else:
        alive_after = scope.alive_after(now)
        key = scope.key(envelope.thread_id)
        moved = scope.sql.advance_head(
            conn, **key, parent_id=envelope.parent_id, alive_after=alive_after, **head
        )
        row = moved.first()
        if row is None:
            current = find_thread(conn, scope, envelope.thread_id, now)
            raise conflict(scope, envelope, current.head_id if current else None)
    pk, position, count = row.pk, row.next_position - 1, row.checkpoint_count
    clear_all(conn, scope, pk, clear)
    append_all(conn, scope, pk, appends, first)
    # Every log's version as the new checkpoint sees it: ``pinned = version``, one statement.
    versions = {log.name: log.version for log in scope.sql.pin_logs(conn, thread_pk=pk)}
    inserted = scope.sql.insert_checkpoint(
        conn,
        thread_pk=pk,
        id_key=digest(envelope.checkpoint_id),
        checkpoint_id=envelope.checkpoint_id,
        position=position,
        created_at=envelope.created_at.timestamp(),
        metadata=envelope.metadata,
        header=encoded.header,
        logs=canonical_json(versions).decode("utf-8"),
        payload=encoded.payload,
    ).first()
    if inserted is None:
        raise ConflictError(f"{scope.where(envelope.thread_id, envelope.checkpoint_id)} exists")
    return pk, versions, count


def _decode(scope: Scope, thread_id: str, row: Any) -> Envelope:
    return decode_checkpoint(
        as_text(row.header),
        as_blob(row.payload),
        as_text(row.logs),
        codec=scope.codec,
        where=scope.where(thread_id, row.checkpoint_id),
        thread_id=thread_id,
        checkpoint_id=row.checkpoint_id,
    )


def _missing_checkpoint(
    scope: Scope, thread_id: str, checkpoint_id: str
) -> CheckpointNotFoundError:
    return CheckpointNotFoundError(f"{scope.where(thread_id, checkpoint_id)} not found")


def get(
    conn: Connection, scope: Scope, thread_id: str, checkpoint_id: str | None, now: float
) -> Envelope:
    """The head or the named checkpoint, in one query joining the thread row."""
    key, alive_after = scope.key(thread_id), scope.alive_after(now)
    if checkpoint_id is None:
        row = scope.sql.get_head(conn, **key, alive_after=alive_after).first()
    else:
        found = scope.sql.get_by_id(
            conn, **key, alive_after=alive_after, id_key=digest(checkpoint_id)
        )
        row = found.first()
    if row is None or row.head_id is None:
        raise missing_thread(scope, thread_id)
    if row.checkpoint_id is None:
        raise _missing_checkpoint(scope, thread_id, checkpoint_id or row.head_id)
    return _decode(scope, thread_id, row)


def list_checkpoints(
    conn: Connection,
    scope: Scope,
    thread_id: str,
    now: float,
    *,
    limit: int | None,
    before: str | None,
    wanted: Mapping[str, JSON],
) -> list[Envelope]:
    """Checkpoints newest first, older than ``before``, matching ``wanted`` metadata."""
    thread = find_thread(conn, scope, thread_id, now)
    if thread is None or thread.head_id is None:
        raise missing_thread(scope, thread_id)
    c = scope.tables.checkpoints
    query = sa.select(c.c.checkpoint_id, c.c.header, c.c.payload, c.c.logs).where(
        c.c.thread_pk == thread.pk, *metadata_filter(scope, c.c.metadata, wanted)
    )
    if before is not None:
        position = scope.sql.position_of(conn, thread_pk=thread.pk, id_key=digest(before)).scalar()
        if position is None:
            raise _missing_checkpoint(scope, thread_id, before)
        query = query.where(c.c.position < position)
    query = query.order_by(c.c.position.desc())
    if limit is not None:
        query = query.limit(limit)
    return [_decode(scope, thread_id, row) for row in conn.execute(query)]


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


def list_threads(
    conn: Connection, scope: Scope, now: float, *, limit: int | None, wanted: Mapping[str, JSON]
) -> list[ThreadInfo]:
    """Live threads of the namespace, most recently written first."""
    t = scope.tables.threads
    query = (
        sa.select(
            t.c.thread_id,
            t.c.head_id,
            t.c.kind,
            t.c.schema_version,
            t.c.step,
            t.c.status,
            t.c.checkpoint_count,
            json_text(scope, t.c.metadata).label("metadata"),
            t.c.updated_at,
        )
        .where(t.c.namespace == scope.namespace, scope.live(now))
        .where(*metadata_filter(scope, t.c.metadata, wanted))
        .order_by(t.c.updated_at.desc(), t.c.pk)
    )
    if limit is not None:
        query = query.limit(limit)
    return [_thread_info(scope, row) for row in conn.execute(query)]


def _thread_info(scope: Scope, row: Any) -> ThreadInfo:
    where = f"{scope.where(row.thread_id)}: thread row"
    try:
        status = None if row.status is None else Status(row.status)
    except ValueError as exc:
        raise CorruptCheckpointError(f"{where}: unknown status {row.status!r}") from exc
    return ThreadInfo(
        thread_id=row.thread_id,
        head_id=row.head_id,
        kind=row.kind,
        schema_version=row.schema_version,
        step=row.step,
        status=status,
        checkpoint_count=row.checkpoint_count,
        metadata=load_object(row.metadata, where=f"{where} metadata"),
        updated_at=datetime.fromtimestamp(row.updated_at, timezone.utc),
    )


def delete_thread(conn: Connection, scope: Scope, thread_id: str, now: float) -> bool:
    """Delete everything of the thread, lease included; whether it existed (and was live)."""
    scope.sql.drop_lease(conn, **scope.key(thread_id))
    row = scope.sql.claim(conn, **scope.key(thread_id)).first()
    if row is None:
        return False
    purge_threads(conn, scope, [row.pk])
    return not scope.expired(row.updated_at, now)
