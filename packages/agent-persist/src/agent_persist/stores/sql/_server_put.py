"""PostgreSQL's ``put`` in one round trip: calling the server-side function.

    versions = await send_put(runner, scope, envelope, encoded, appends, lease=..., ...)
    pk, versions, count = call_put(conn, scope, envelope, encoded, appends, now, ...)

A checkpoint ``put`` is a dozen small statements (lease check, head move, clearing logs,
appends, pinning, the checkpoint row); sent one by one with ``BEGIN`` and ``COMMIT`` they
cost one network round trip each. The function of :mod:`._put_function` runs the same
statements on the server, as one ``SELECT`` that the store sends in autocommit: one round
trip, and atomic because a statement is. It is PL/pgSQL, whose every statement takes a
fresh snapshot as the client's statements did under READ COMMITTED, so writers of one
thread serialise on the same row locks, taken in the same order (lease row, thread row,
log rows), as before.

Chosen over one statement of data-modifying CTEs: those share one snapshot, cannot
touch a row twice (a log cleared and appended to in the same put) and cannot say *why*
nothing was written; here a refusal is ``RAISE`` with a SQLSTATE of our own (class
``AP``), which rolls back everything the call did, and :func:`call_put` turns it into the
typed error the multi-statement path raises. Rare cases (an expired thread to purge, a
thread row created concurrently) raise :class:`SlowPath`, and the store runs the
multi-statement transaction instead, so their semantics live in one place.

:func:`send_put` is the usual call: the statement alone, sent on the pooled connection's
asyncpg connection, without SQLAlchemy's execution machinery, which cost about 0.4 ms of a
2 ms checkpoint. :func:`call_put` sends the same statement inside a transaction the
caller opened, for a put that does more in it (trimming ``keep_last``, the audit table).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from ...envelope import Envelope
from ...errors import ConflictError
from .._positions import PositionsMoved
from .._records import EncodedCheckpoint
from ..base import Lease
from ._leases import lease_lost
from ._put_function import HEAD_MOVED, ID_TAKEN, LEASE_LOST, POSITIONS_MOVED, PUT_PARAMETERS, SLOW
from ._statements import Scope, digest

if TYPE_CHECKING:
    from ._engine import PostgresRunner

__all__ = ["SlowPath", "call_put", "conflict", "put_arguments", "send_put"]


class SlowPath(Exception):
    """The function left a rare case (an expired thread, a creation race) to the client."""


def conflict(scope: Scope, envelope: Envelope, head: str | None) -> ConflictError:
    """The error for a head that is not ``envelope.parent_id``."""
    return ConflictError(
        f"{scope.where(envelope.thread_id)}: expected head {envelope.parent_id!r} "
        f"but the head is {head!r}"
    )


def put_arguments(
    scope: Scope,
    envelope: Envelope,
    encoded: EncodedCheckpoint,
    appends: Mapping[str, Sequence[bytes]],
    now: float,
    *,
    lease: Lease | None,
    clear: Sequence[str],
    first: Mapping[str, int] | None,
) -> tuple[Any, ...]:
    """The arguments of :data:`PUT_FUNCTION`, in the order of its parameters."""
    keys = {name: digest(name) for name in appends}
    values: dict[str, Any] = {
        **scope.identity(envelope.thread_id),
        "alive_after": scope.alive_after(now),
        "ttl": scope.ttl,
        "now": now,
        "lease_token": None if lease is None else lease.token,
        "parent_id": envelope.parent_id,
        "head_id": envelope.checkpoint_id,
        "id_key": digest(envelope.checkpoint_id),
        "kind": envelope.kind,
        "schema_version": envelope.schema_version,
        "step": envelope.step,
        "status": envelope.status.value,
        "metadata": json.dumps(envelope.metadata),  # jsonb as JSON text, as SQLAlchemy sends it
        "created_at": envelope.created_at.timestamp(),
        "header": encoded.header,
        "payload": encoded.payload,
        "clear_keys": [digest(name) for name in clear],
        "name_keys": list(keys.values()),
        "names": list(appends),
        "counts": [len(sealed) for sealed in appends.values()],
        "item_keys": [keys[name] for name, sealed in appends.items() for _ in sealed],
        "datas": [data for sealed in appends.values() for data in sealed],
        "backs": [len(sealed) - 1 - i for sealed in appends.values() for i in range(len(sealed))],
        "firsts": None if first is None else [first[name] for name in appends],
    }
    return tuple(values[name] for name in PUT_PARAMETERS)


def call_put(
    conn: Connection,
    scope: Scope,
    envelope: Envelope,
    encoded: EncodedCheckpoint,
    appends: Mapping[str, Sequence[bytes]],
    now: float,
    *,
    lease: Lease | None,
    clear: Sequence[str],
    first: Mapping[str, int] | None = None,
) -> tuple[int, dict[str, int], int]:
    """Run :data:`PUT_FUNCTION` in ``conn``'s transaction.

    Returns the thread's pk, the log versions pinned and its checkpoint count.

    Raises:
        ConflictError: The head is not ``envelope.parent_id``, or the id is already used.
        LeaseLostError: ``lease`` no longer holds the thread.
        PositionsMoved: ``first`` does not say where each log's first item lands.
        SlowPath: A case the multi-statement transaction handles; nothing was written.
    """
    assert scope.sql.put_call is not None  # noqa: S101 - PostgreSQL only
    arguments = put_arguments(
        scope, envelope, encoded, appends, now, lease=lease, clear=clear, first=first
    )
    with _refusals(scope, envelope, lease):
        row = conn.exec_driver_sql(scope.sql.put_call, arguments).one()
    return _result(row)


async def send_put(
    runner: PostgresRunner,
    scope: Scope,
    envelope: Envelope,
    encoded: EncodedCheckpoint,
    appends: Mapping[str, Sequence[bytes]],
    *,
    lease: Lease | None,
    clear: Sequence[str],
    first: Mapping[str, int] | None,
) -> dict[str, int]:
    """:func:`call_put` as a statement of its own: the log versions pinned.

    Sent by :meth:`PostgresRunner.fetch_one`: one round trip, no transaction. Raises as
    :func:`call_put`.
    """
    assert scope.sql.put_call is not None  # noqa: S101 - PostgreSQL only

    def arguments() -> tuple[Any, ...]:  # once a connection is at hand: the time is now
        return put_arguments(
            scope, envelope, encoded, appends, time.time(), lease=lease, clear=clear, first=first
        )

    with _refusals(scope, envelope, lease):
        row = await runner.fetch_one(scope.sql.put_call, arguments)
    return _result(row)[1]


def _result(row: Sequence[Any]) -> tuple[int, dict[str, int], int]:
    versions: dict[str, int] = json.loads(row[1])
    return int(row[0]), versions, int(row[2])


@contextlib.contextmanager
def _refusals(scope: Scope, envelope: Envelope, lease: Lease | None) -> Generator[None]:
    """Turn the function's own refusals into the typed errors; let anything else through."""
    try:
        yield
    except Exception as exc:
        refusal = _refusal(exc, scope, envelope, lease)
        if refusal is None:
            raise
        raise refusal from None


def _refusal(
    exc: Exception, scope: Scope, envelope: Envelope, lease: Lease | None
) -> Exception | None:
    """The typed error for one of the function's own refusals; ``None`` for anything else."""
    state, detail = _state(exc)
    if state == LEASE_LOST and lease is not None:
        return lease_lost(scope, lease)
    if state == HEAD_MOVED:
        head: Any = json.loads(detail) if detail else None
        return conflict(scope, envelope, head if isinstance(head, str) else None)
    if state == ID_TAKEN:
        return ConflictError(f"{scope.where(envelope.thread_id, envelope.checkpoint_id)} exists")
    if state == SLOW:
        return SlowPath()
    if state == POSITIONS_MOVED:
        return PositionsMoved(json.loads(detail))
    return None


def _state(exc: BaseException) -> tuple[str, str]:
    """The SQLSTATE and DETAIL of the driver's error under SQLAlchemy's wrappers."""
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        detail = getattr(current, "detail", None)
        state = getattr(current, "sqlstate", None)
        native = type(current).__module__.startswith("asyncpg")
        if native and isinstance(state, str) and isinstance(detail, str | None):
            return state, detail or ""
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return "", ""
