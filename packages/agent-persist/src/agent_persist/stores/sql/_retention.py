"""The SQL store's retention: pruning old checkpoints, collecting log items, purging threads.

    removed = prune(conn, scope, "thread-1", now, keep_last=10, older_than=None)
    purged = purge_expired(conn, scope, now)

Deleting checkpoints can make log items garbage: an item removed (popped or cleared) at
version ``r`` stays stored while a checkpoint that recorded a version ``v`` with
``seq <= v < r`` remains, because that checkpoint still sees it. After a prune, every
remaining checkpoint still reads its logs exactly as it saw them.
"""

from __future__ import annotations

import bisect
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ...errors import CorruptCheckpointError
from ._schema import load_object
from ._statements import Scope
from ._threads import claim_thread, missing_thread, purge_threads

__all__ = ["prune", "purge_expired", "trim"]


def prune(
    conn: Connection,
    scope: Scope,
    thread_id: str,
    now: float,
    *,
    keep_last: int | None,
    older_than: float | None,
) -> int:
    """Delete the non-head checkpoints outside the newest ``keep_last`` and old enough.

    With one option, that one alone decides; with neither, nothing is deleted.

    Returns:
        How many checkpoints were deleted.

    Raises:
        ThreadNotFoundError: The thread does not exist, has expired or has no checkpoint.
    """
    thread = claim_thread(conn, scope, thread_id, now, create=False)
    if thread is None or thread.head_id is None:
        raise missing_thread(scope, thread_id)
    if keep_last is None and older_than is None:
        return 0
    c = scope.tables.checkpoints
    head_position = thread.next_position - 1  # the head is the newest: never pruned
    doomed = [c.c.thread_pk == thread.pk, c.c.position < head_position]
    if keep_last is not None:
        oldest_kept = _kth_newest(conn, scope, thread.pk, keep_last)
        if oldest_kept is None:
            return 0
        doomed.append(c.c.position < oldest_kept)
    if older_than is not None:
        doomed.append(c.c.created_at < now - older_than)
    removed = len(conn.execute(c.delete().where(*doomed).returning(c.c.position)).all())
    _after_delete(conn, scope, thread.pk, removed)
    return removed


def trim(conn: Connection, scope: Scope, thread_pk: int, keep_last: int) -> int:
    """The store's ``keep_last`` after a put: drop all but the newest ``keep_last`` checkpoints.

    Three indexed statements plus, only when a removed item exists, the garbage collection.
    """
    oldest_kept = _kth_newest(conn, scope, thread_pk, keep_last)
    if oldest_kept is None:
        return 0
    trimmed = scope.sql.trim(conn, thread_pk=thread_pk, position=oldest_kept)
    removed = len(trimmed.all())
    _after_delete(conn, scope, thread_pk, removed)
    return removed


def _kth_newest(conn: Connection, scope: Scope, thread_pk: int, keep_last: int) -> int | None:
    """The position of the oldest checkpoint ``keep_last`` keeps (the head always stays)."""
    return scope.sql.kth_newest(conn, thread_pk=thread_pk, skip=max(keep_last, 1) - 1).scalar()


def _after_delete(conn: Connection, scope: Scope, thread_pk: int, removed: int) -> None:
    if removed:
        scope.sql.uncount(conn, pk=thread_pk, removed=removed)
        _collect_items(conn, scope, thread_pk)


def _collect_items(conn: Connection, scope: Scope, thread_pk: int) -> None:
    """Delete removed log items that no remaining checkpoint can see any more.

    Only removed items are read (through a partial index), so a log that only ever grows
    costs one index probe; the checkpoints' log versions are read only when one exists.
    """
    removed = scope.sql.removed_items(conn, thread_pk=thread_pk).all()
    if not removed:
        return
    seen = _recorded_versions(conn, scope, thread_pk)
    garbage: list[dict[str, Any]] = []
    for row in removed:
        versions = seen.get(row.name, [])
        index = bisect.bisect_left(versions, row.seq)  # the oldest version that has the item
        if index == len(versions) or versions[index] >= row.removed_at:
            garbage.append({"log_pk": row.log_pk, "seq": row.seq})
    if garbage:
        scope.sql.delete_item.many(conn, garbage)


def _recorded_versions(conn: Connection, scope: Scope, thread_pk: int) -> dict[str, list[int]]:
    """Every log version the thread's checkpoints recorded, sorted, per log name."""
    seen: dict[str, set[int]] = {}
    for row in scope.sql.recorded_versions(conn, thread_pk=thread_pk):
        where = f"{scope.label}: checkpoint {row.checkpoint_id!r}: log versions"
        for name, version in load_object(row.logs, where=where).items():
            if not isinstance(version, int):
                raise CorruptCheckpointError(f"{where}: {name!r} is not a version number")
            seen.setdefault(name, set()).add(version)
    return {name: sorted(versions) for name, versions in seen.items()}


def purge_expired(conn: Connection, scope: Scope, now: float) -> int:
    """Delete every expired thread of the namespace, and leases that ran out.

    Leases are dropped only once expired, which nobody can tell from a missing lease.

    Returns:
        How many threads were deleted.
    """
    leases = scope.tables.leases
    conn.execute(
        leases.delete().where(leases.c.namespace == scope.namespace, leases.c.expires_at <= now)
    )
    if scope.ttl is None:
        return 0
    t = scope.tables.threads
    pks: list[int] = list(
        conn.execute(
            sa.select(t.c.pk)
            .where(t.c.namespace == scope.namespace, sa.not_(scope.live(now)))
            .order_by(t.c.pk)  # lock rows in one order: concurrent purges never deadlock
            .with_for_update()
        ).scalars()
    )
    purge_threads(conn, scope, pks)
    return len(pks)
