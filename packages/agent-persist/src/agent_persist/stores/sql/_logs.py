"""The SQL store's logs: versioned, append-only item lists that checkpoints pin.

    append_items(conn, scope, thread.pk, "transcript", [sealed_item])   # version += 1 per item
    items = read_items(conn, scope, "thread-1", "transcript", now, version=None)

A log row holds ``version`` (bumped by every appended item, pop and clear), ``pinned`` (the
highest version a checkpoint recorded) and ``length`` (live items, so ``log_length`` reads one
row). An item's ``seq`` is the version its append produced. Removing an item that no
checkpoint can have seen (``seq > pinned``) deletes it; otherwise it is stamped
``removed_at = version`` so older checkpoints still see it. Checkpoint ``at`` with version
``V`` sees the items with ``seq <= V`` not removed by then (``removed_at > V``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Connection

from ..._json import JSON
from .._positions import PositionsMoved
from .._records import decode_item, decode_items, open_lines
from ..base import Lease
from ._leases import hold
from ._schema import as_blob
from ._statements import Scope, Stmt, digest
from ._threads import ThreadRow, claim_thread, touch

_first = itemgetter(0)

__all__ = [
    "append",
    "append_all",
    "append_items",
    "clear",
    "clear_all",
    "length",
    "names",
    "pop",
    "read_items",
    "read_lines",
    "read_many",
    "tail",
    "tail_lines",
]


def append_items(
    conn: Connection,
    scope: Scope,
    thread_pk: int,
    name: str,
    sealed: Sequence[bytes],
    first: int | None = None,
) -> None:
    """Add sealed items to a log of a claimed thread, creating the log if needed.

    One upsert bumps the version by the item count and returns it, so the new items take
    ``version - n + 1 .. version`` without reading anything old: O(new items).

    Raises:
        PositionsMoved: ``first`` is not the ``seq`` the first item takes (the caller's
            transaction rolls back).
    """
    if first is not None:
        actual = _append_numbered(conn, scope, thread_pk, name, sealed)
        if actual != first:
            raise PositionsMoved({name: actual})
        return
    if scope.sql.append_to_log is not None and sealed:
        scope.sql.append_to_log(
            conn,
            thread_pk=thread_pk,
            name_key=digest(name),
            name=name,
            count=len(sealed),
            datas=list(sealed),
        )
        return
    _append_numbered(conn, scope, thread_pk, name, sealed)


def _append_numbered(
    conn: Connection, scope: Scope, thread_pk: int, name: str, sealed: Sequence[bytes]
) -> int:
    """:func:`append_items` in two statements; returns the ``seq`` the first item took."""
    count = len(sealed)
    ((log_pk, version),) = scope.sql.upsert_log.rows(
        conn, thread_pk=thread_pk, name_key=digest(name), name=name, count=count
    )
    first = version - count + 1
    if sealed:
        scope.sql.insert_item.many(
            conn,
            [{"log_pk": log_pk, "seq": first + i, "data": data} for i, data in enumerate(sealed)],
        )
    return first


def append_all(
    conn: Connection,
    scope: Scope,
    thread_pk: int,
    appends: Mapping[str, Sequence[bytes]],
    first: Mapping[str, int] | None = None,
) -> None:
    """:func:`append_items` for several logs; on PostgreSQL in one statement (one round trip).

    Raises:
        PositionsMoved: ``first`` does not say where each log's first item lands (every
            log is appended to first, so the error names them all; the caller's
            transaction rolls back).
    """
    batch = appends
    if first is not None:
        actual = {
            name: _append_numbered(conn, scope, thread_pk, name, batch[name]) for name in batch
        }
        if actual != first:
            raise PositionsMoved(actual)
        return
    if scope.sql.append_to_logs is None or len(batch) < 2:  # one log: one statement anyway
        for name, sealed in appends.items():
            append_items(conn, scope, thread_pk, name, sealed)
        return
    keys = {name: digest(name) for name in batch}
    scope.sql.append_to_logs(
        conn,
        thread_pk=thread_pk,
        name_keys=list(keys.values()),
        names=list(batch),
        counts=[len(sealed) for sealed in batch.values()],
        item_keys=[keys[name] for name, sealed in batch.items() for _ in sealed],
        datas=[data for sealed in batch.values() for data in sealed],
        backs=[len(sealed) - 1 - i for sealed in batch.values() for i in range(len(sealed))],
    )


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
    """Append to a log outside a checkpoint, creating (or reviving) the thread.

    Raises:
        LeaseLostError: ``lease`` no longer holds the thread (checked first, same transaction).
        PositionsMoved: The first item does not land at ``first`` (the caller's
            transaction rolls back).
    """
    hold(conn, scope, lease, now)
    if scope.sql.append_if_live is not None and sealed:
        inserted = scope.sql.append_if_live(
            conn,
            **scope.key(thread_id),
            alive_after=scope.alive_after(now),
            now=now,
            name_key=digest(name),
            name=name,
            count=len(sealed),
            datas=list(sealed),
        ).all()
        if inserted:
            landed = min(seq for (seq,) in inserted)
            if first is not None and landed != first:
                raise PositionsMoved({name: landed})
            return
        # Not live: most often a new thread (a session's first items). Inserting its row
        # first makes that one more statement instead of four (claim, claim again, insert,
        # touch); a row already there (expired, or created meanwhile) goes the long way.
        created = scope.sql.insert_thread(conn, **scope.identity(thread_id), now=now).scalar()
        if created is not None:
            append_items(conn, scope, created, name, sealed, first)
            return
    live = scope.sql.claim_live_and_touch.rows(
        conn, **scope.key(thread_id), alive_after=scope.alive_after(now), now=now
    )
    if live:
        append_items(conn, scope, live[0][0], name, sealed, first)
        return
    thread = claim_thread(conn, scope, thread_id, now, create=True)
    assert thread is not None  # noqa: S101 - create=True always returns a thread
    append_items(conn, scope, thread.pk, name, sealed, first)
    touch(conn, scope, thread.pk, now)


def _decode(scope: Scope, thread_id: str, name: str, seq: int, data: Any) -> JSON:
    return decode_item(
        as_blob(data),
        scope.codec.for_log(thread_id, name),
        position=seq,
        where=lambda: f"{scope.where(thread_id)}: log {name!r} item {seq}",
    )


def _decode_rows(
    scope: Scope, thread_id: str, name: str, rows: Sequence[tuple[Any, ...]]
) -> list[JSON]:
    """Decode ``(seq, data)`` tuples."""
    return decode_items(
        [data if type(data) is bytes else as_blob(data) for _, data in rows],
        scope.codec.for_log(thread_id, name),
        positions=[seq for seq, _ in rows],
        where=lambda i: f"{scope.where(thread_id)}: log {name!r} item {rows[i][0]}",
    )


def _read_query(
    scope: Scope,
    thread_id: str,
    name: str,
    now: float,
    version: int | None,
    start: int,
    stop: int | None,
    *,
    lines: bool,
) -> tuple[Stmt, dict[str, Any]]:
    """The statement reading items ``[start:stop]`` (of version ``version``) and its values."""
    sql = scope.sql
    params: dict[str, Any] = {
        **scope.key(thread_id),
        "name_key": digest(name),
        "alive_after": scope.alive_after(now),
        "start": start,
    }
    if version is None:
        pair = (
            (sql.lines_live, sql.lines_live_slice)
            if lines
            else (sql.read_live, sql.read_live_slice)
        )
    else:
        pair = (
            (sql.lines_seen, sql.lines_seen_slice)
            if lines
            else (sql.read_seen, sql.read_seen_slice)
        )
        params["version"] = version
    if stop is not None:
        params["count"] = max(stop - start, 0)
    return pair[stop is not None], params


def read_items(
    conn: Connection,
    scope: Scope,
    thread_id: str,
    name: str,
    now: float,
    *,
    version: int | None,
    start: int = 0,
    stop: int | None = None,
) -> list[JSON]:
    """Items ``[start:stop]`` of the log now (``version=None``) or as version ``version`` saw it."""
    query, params = _read_query(scope, thread_id, name, now, version, start, stop, lines=False)
    return _decode_rows(scope, thread_id, name, query.rows(conn, **params))


def read_many(
    conn: Connection,
    scope: Scope,
    thread_id: str,
    wanted: Mapping[str, tuple[int, int | None, int]],
    now: float,
) -> dict[str, list[JSON]]:
    """:func:`read_items` of several logs, ``name -> (start, stop, version)``.

    On PostgreSQL one statement (one round trip); on SQLite one query per log, on one
    connection (SQLite has no round trips to save).
    """
    if scope.sql.read_many is None:
        return {
            name: read_items(
                conn, scope, thread_id, name, now, version=version, start=start, stop=stop
            )
            for name, (start, stop, version) in wanted.items()
        }
    keys = {digest(name): name for name in wanted}
    bounds = list(wanted.values())
    rows = scope.sql.read_many.rows(
        conn,
        **scope.key(thread_id),
        alive_after=scope.alive_after(now),
        name_keys=list(keys),
        versions=[version for _, _, version in bounds],
        starts=[start for start, _, _ in bounds],
        counts=[None if stop is None else stop - start for start, stop, _ in bounds],
    )
    grouped: dict[bytes, list[tuple[Any, ...]]] = {key: [] for key in keys}
    for name_key, seq, data in rows:
        grouped[bytes(name_key)].append((seq, data))
    for found in grouped.values():
        found.sort(key=_first)  # the statement does not sort; they come in order (linear time)
    return {
        keys[key]: _decode_rows(scope, thread_id, keys[key], found)
        for key, found in grouped.items()
    }


def read_lines(
    conn: Connection,
    scope: Scope,
    thread_id: str,
    name: str,
    now: float,
    *,
    version: int | None,
    start: int = 0,
    stop: int | None = None,
) -> bytes | None:
    """:func:`read_items` as JSON Lines, or ``None`` when an item is not plain JSON.

    Sealed items (an encrypted store) are read as stored and opened in one pass.
    """
    sealed = scope.codec.seals_logs
    query, params = _read_query(scope, thread_id, name, now, version, start, stop, lines=not sealed)
    rows = query.rows(conn, **params)
    return _opened(scope, thread_id, name, rows) if sealed else _lines(rows)


def tail(
    conn: Connection, scope: Scope, thread_id: str, name: str, count: int, now: float
) -> list[JSON]:
    """The newest ``count`` live items, oldest first."""
    alive_after = scope.alive_after(now)
    rows = scope.sql.tail.rows(
        conn, **scope.key(thread_id), name_key=digest(name), alive_after=alive_after, count=count
    )
    return _decode_rows(scope, thread_id, name, rows[::-1])


def tail_lines(
    conn: Connection, scope: Scope, thread_id: str, name: str, count: int, now: float
) -> bytes | None:
    """:func:`tail` as JSON Lines, or ``None`` when an item is not plain JSON."""
    alive_after = scope.alive_after(now)
    sealed = scope.codec.seals_logs
    query = scope.sql.tail if sealed else scope.sql.lines_tail
    rows = query.rows(
        conn, **scope.key(thread_id), name_key=digest(name), alive_after=alive_after, count=count
    )
    rows.reverse()
    return _opened(scope, thread_id, name, rows) if sealed else _lines(rows)


def _opened(
    scope: Scope, thread_id: str, name: str, rows: Sequence[tuple[Any, ...]]
) -> bytes | None:
    """The JSON Lines of ``(seq, data)`` rows of sealed items, or ``None`` at any doubt."""
    datas = [data if type(data) is bytes else as_blob(data) for _, data in rows]
    return open_lines(datas, scope.codec.for_log(thread_id, name), [seq for seq, _ in rows])


def _lines(rows: list[Any]) -> bytes | None:
    """The JSON Lines of ``(text,)`` rows, or ``None`` for a NULL (an item not plain JSON)."""
    try:
        return b"\n".join(map(_first, rows))
    except TypeError:
        return None


def length(conn: Connection, scope: Scope, thread_id: str, name: str, now: float) -> int:
    """How many live items the log holds (kept on the log row: no count over the items)."""
    alive_after = scope.alive_after(now)
    found = scope.sql.log_length(
        conn, **scope.key(thread_id), name_key=digest(name), alive_after=alive_after
    )
    return int(found.scalar() or 0)


def names(conn: Connection, scope: Scope, thread_id: str, now: float) -> list[str]:
    """The names of the live thread's logs."""
    found = scope.sql.log_names(conn, **scope.key(thread_id), alive_after=scope.alive_after(now))
    return [str(name) for name in found.scalars()]


def _claim_log(
    conn: Connection, scope: Scope, thread_id: str, name: str, now: float
) -> tuple[ThreadRow, Any] | None:
    """The claimed thread and its log row, or ``None`` when either is missing."""
    thread = claim_thread(conn, scope, thread_id, now, create=False)
    if thread is None:
        return None
    row = scope.sql.log_row(conn, thread_pk=thread.pk, name_key=digest(name)).first()
    return None if row is None else (thread, row)


def _remove(conn: Connection, scope: Scope, log: Any, from_seq: int, *, length: int) -> None:
    """Remove the live items from ``from_seq`` on, in one new version of the log.

    Items no checkpoint saw (``seq > pinned``) are deleted; the others are stamped
    ``removed_at`` so the checkpoints that saw them still do.
    """
    version = log.version + 1
    sql = scope.sql
    sql.bump_log(conn, pk=log.pk, version=version, length=length)
    sql.delete_unseen(conn, log_pk=log.pk, from_seq=from_seq, pinned=log.pinned)
    sql.stamp_removed(conn, log_pk=log.pk, from_seq=from_seq, version=version)


def pop(conn: Connection, scope: Scope, thread_id: str, name: str, now: float) -> JSON | None:
    """Remove and return the newest live item; the thread lock makes every pop distinct.

    The item is decoded before the transaction commits, so a damaged item raises and stays.
    """
    claimed = _claim_log(conn, scope, thread_id, name, now)
    if claimed is None:
        return None
    thread, log = claimed
    newest = scope.sql.newest_live(conn, log_pk=log.pk).first()
    if newest is None:
        return None
    value = _decode(scope, thread_id, name, newest.seq, newest.data)
    _remove(conn, scope, log, newest.seq, length=log.length - 1)
    touch(conn, scope, thread.pk, now)
    return value


def clear_all(conn: Connection, scope: Scope, thread_pk: int, names: Sequence[str]) -> None:
    """Empty logs of a claimed thread as :func:`clear` does, for a checkpoint about to pin them.

    One query per log, and three statements per log that has live items; a missing or
    empty log costs its query only.
    """
    for name in names:
        log = scope.sql.log_row(conn, thread_pk=thread_pk, name_key=digest(name)).first()
        if log is not None and log.length:
            _remove(conn, scope, log, 0, length=0)


def clear(conn: Connection, scope: Scope, thread_id: str, name: str, now: float) -> None:
    """Remove every live item in one version bump; checkpoints keep seeing what they saw."""
    claimed = _claim_log(conn, scope, thread_id, name, now)
    if claimed is None or not claimed[1].length:
        return
    thread, log = claimed
    _remove(conn, scope, log, 0, length=0)
    touch(conn, scope, thread.pk, now)
