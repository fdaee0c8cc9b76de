"""PostgreSQL's ``put`` in one round trip: calling the server-side function.

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
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from ...envelope import Envelope
from ...errors import ConflictError
from .._positions import PositionsMoved
from .._records import EncodedCheckpoint
from ..base import Lease
from ._leases import lease_lost
from ._put_function import HEAD_MOVED, ID_TAKEN, LEASE_LOST, POSITIONS_MOVED, SLOW
from ._statements import Scope, digest

__all__ = ["SlowPath", "call_put", "conflict"]


class SlowPath(Exception):
    """The function left a rare case (an expired thread, a creation race) to the client."""


def conflict(scope: Scope, envelope: Envelope, head: str | None) -> ConflictError:
    """The error for a head that is not ``envelope.parent_id``."""
    return ConflictError(
        f"{scope.where(envelope.thread_id)}: expected head {envelope.parent_id!r} "
        f"but the head is {head!r}"
    )


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
    """Run :data:`PUT_FUNCTION`: the thread's pk, the log versions pinned, its checkpoint count.

    Raises:
        ConflictError: The head is not ``envelope.parent_id``, or the id is already used.
        LeaseLostError: ``lease`` no longer holds the thread.
        PositionsMoved: ``first`` does not say where each log's first item lands.
        SlowPath: A case the multi-statement transaction handles; nothing was written.
    """
    assert scope.sql.put_one is not None  # noqa: S101 - PostgreSQL only
    keys = {name: digest(name) for name in appends}
    try:
        row = scope.sql.put_one(
            conn,
            **scope.identity(envelope.thread_id),
            alive_after=scope.alive_after(now),
            ttl=scope.ttl,
            now=now,
            lease_token=None if lease is None else lease.token,
            parent_id=envelope.parent_id,
            head_id=envelope.checkpoint_id,
            id_key=digest(envelope.checkpoint_id),
            kind=envelope.kind,
            schema_version=envelope.schema_version,
            step=envelope.step,
            status=envelope.status.value,
            metadata=envelope.metadata,
            created_at=envelope.created_at.timestamp(),
            header=encoded.header,
            payload=encoded.payload,
            clear_keys=[digest(name) for name in clear],
            name_keys=list(keys.values()),
            names=list(appends),
            counts=[len(sealed) for sealed in appends.values()],
            item_keys=[keys[name] for name, sealed in appends.items() for _ in sealed],
            datas=[data for sealed in appends.values() for data in sealed],
            backs=[len(sealed) - 1 - i for sealed in appends.values() for i in range(len(sealed))],
            firsts=None if first is None else [first[name] for name in appends],
        ).one()
    except sa_exc.DBAPIError as exc:
        refusal = _refusal(exc, scope, envelope, lease)
        if refusal is None:
            raise
        raise refusal from None
    versions: dict[str, int] = json.loads(row.o_logs)
    return int(row.o_pk), versions, int(row.o_count)


def _refusal(
    exc: sa_exc.DBAPIError, scope: Scope, envelope: Envelope, lease: Lease | None
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
