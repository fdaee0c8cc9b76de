"""Every statement on a hot path, built once per store, and the scope that binds them.

    sql = Statements(build_tables(None), postgres=False)
    row = sql.claim(conn, key=digest("default", "t")).first()
    row = scope.sql.claim(conn, **scope.key("t")).first()     # the same, through a Scope

Building a SQLAlchemy Core statement costs more than SQLite takes to run it (about 0.5 ms of
a 0.75 ms append); built once, a statement only pays the compiled-cache lookup. So the
statements of ``put``, ``get``, the log operations and the leases live here, and only rare or
shape-changing queries (listing with filters, pruning by age, purging) are built per call.
Every value is a bound parameter: nothing here is built from user strings.

Rows are found by digests (:func:`digest`): ``key`` names a thread (namespace and id),
``name_key`` a log of it, ``id_key`` a checkpoint of it. A :class:`Scope` is one store's
statements with what their parameters come from: its namespace, TTL, codec and label.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.sql.elements import ColumnElement

if TYPE_CHECKING:
    from sqlalchemy.sql.compiler import SQLCompiler

from ...codecs import PayloadCodec
from .._records import PLAIN_FRAME, describe
from ._put_function import put_call
from ._schema import Tables

__all__ = ["Scope", "Statements", "Stmt", "digest"]

_PREFIX = "p_"


@functools.lru_cache(maxsize=4096)
def digest(*parts: str) -> bytes:
    """The 32-byte key of an id (or a namespace and id): any length, any character.

    Cached: every operation digests its thread and log, and the same few recur.
    """
    return hashlib.sha256(json.dumps(parts).encode("ascii")).digest()


def _b(name: str, **options: Any) -> sa.BindParameter[Any]:
    """A named parameter, prefixed: INSERT and UPDATE reserve column names for their own."""
    return sa.bindparam(_PREFIX + name, **options)


class Stmt:
    """A prebuilt statement, executed with its parameters as keywords."""

    __slots__ = ("_driver", "statement")

    def __init__(self, statement: sa.Executable) -> None:
        self.statement = statement
        self._driver: tuple[str, tuple[str | tuple[Any], ...]] | None = None

    def __call__(self, conn: Connection, /, **values: Any) -> CursorResult[Any]:
        """Execute once."""
        return conn.execute(self.statement, {_PREFIX + k: v for k, v in values.items()})

    def tuples(self, conn: Connection, /, **values: Any) -> list[tuple[Any, ...]]:
        """Execute once and return the driver's plain tuples.

        Skips SQLAlchemy's per-row ``Row`` objects, which cost more than the query itself
        when a log of thousands of items is read; only for columns needing no conversion.
        """
        result = self(conn, **values)
        try:
            return list(result.cursor.fetchall())  # pyright: ignore[reportOptionalMemberAccess]
        finally:
            result.close()

    def rows(self, conn: Connection, /, **values: Any) -> list[Any]:
        """:meth:`tuples`, straight on the ``sqlite3`` connection when the database is SQLite.

        The SQL text is compiled once; a hot read then skips SQLAlchemy's execution context,
        which costs more than SQLite takes to answer a short read. Only for statements whose
        parameters and columns need no type conversion.
        """
        if conn.dialect.name != "sqlite":
            return self.tuples(conn, **values)
        sql, slots = self._compiled(conn)
        raw: Any = conn.connection.driver_connection
        params = [values[slot] if type(slot) is str else slot[0] for slot in slots]
        return raw.execute(sql, params).fetchall()

    def many(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """Execute once per row: one ``executemany`` (on SQLite, on the driver, as :meth:`rows`)."""
        if conn.dialect.name == "sqlite":
            sql, slots = self._compiled(conn)
            params = [[row[s] if type(s) is str else s[0] for s in slots] for row in rows]
            raw: Any = conn.connection.driver_connection
            raw.executemany(sql, params)
            return
        params = [{_PREFIX + k: v for k, v in row.items()} for row in rows]
        conn.execute(self.statement, params)

    def _compiled(self, conn: Connection) -> tuple[str, tuple[str | tuple[Any], ...]]:
        if self._driver is None:
            self._driver = _positional(self.statement, conn)
        return self._driver


def _positional(
    statement: sa.Executable, conn: Connection
) -> tuple[str, tuple[str | tuple[Any], ...]]:
    """The SQL text for the driver and, per ``?``, our parameter's name or a fixed value."""
    compiled = cast(
        "SQLCompiler", cast("sa.ClauseElement", statement).compile(dialect=conn.dialect)
    )
    slots: list[str | tuple[Any]] = []
    for name in compiled.positiontup or ():
        if name.startswith(_PREFIX):
            slots.append(name[len(_PREFIX) :])
        else:  # a constant SQLAlchemy binds itself, such as LIMIT -1 before an OFFSET
            value: Any = compiled.binds[name].effective_value
            slots.append((value,))
    return str(compiled), tuple(slots)


def _line(data: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """An item's JSON text if it is plain JSON, else NULL.

    The database strips the codec frame (``json:``) while it reads the item, so a JSON
    Lines read joins the values as they come; a NULL sends it to the decoding read.
    Canonical JSON holds no raw newline, so none is looked for (a scan of every item).
    """
    frame = sa.literal(PLAIN_FRAME, sa.LargeBinary())
    plain = sa.func.substr(data, 1, len(PLAIN_FRAME)) == frame
    return sa.case((plain, sa.func.substr(data, len(PLAIN_FRAME) + 1)), else_=sa.null())


def _insert(table: sa.Table, postgres: bool) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with this dialect's ``ON CONFLICT`` clauses."""
    return postgresql.insert(table) if postgres else sqlite.insert(table)


class Statements:
    """The prebuilt statements of one store (one set of tables, one dialect)."""

    def __init__(self, tables: Tables, *, postgres: bool) -> None:
        self._threads(tables, postgres)
        self._logs(tables, postgres)
        self._items(tables)
        self.read_many = self._read_many(tables) if postgres else None
        self._checkpoints(tables, postgres)
        self._leases(tables, postgres)
        self.put_call = put_call(tables.metadata.schema) if postgres else None
        """PostgreSQL: a whole ``put`` in one statement, for the driver (:mod:`._server_put`)."""

    def _threads(self, tables: Tables, postgres: bool) -> None:
        t = tables.threads
        columns = (t.c.pk, t.c.head_id, t.c.checkpoint_count, t.c.next_position, t.c.updated_at)
        self.claim = Stmt(sa.select(*columns).where(t.c.key == _b("key")).with_for_update())
        """Lock a thread row (PostgreSQL; SQLite writers hold the database lock already)."""
        self.find = Stmt(
            sa.select(*columns).where(t.c.key == _b("key"), t.c.updated_at > _b("alive_after"))
        )
        self.insert_thread = Stmt(
            _insert(t, postgres)
            .values(
                key=_b("key", type_=sa.LargeBinary()),
                namespace=_b("namespace"),
                thread_id=_b("thread_id"),
                **_fresh(),
            )
            .on_conflict_do_nothing(index_elements=[t.c.key])
            .returning(t.c.pk)
        )
        self.reset_thread = Stmt(t.update().where(t.c.pk == _b("pk")).values(**_fresh()))
        self.touch = Stmt(t.update().where(t.c.pk == _b("pk")).values(updated_at=_b("now")))
        self.claim_live_and_touch = Stmt(
            t.update()
            .where(t.c.key == _b("key"), t.c.updated_at > _b("alive_after"))
            .values(updated_at=_b("now"))
            .returning(*columns)
        )
        """Lock and touch a live thread in one round trip (the common case of an append)."""
        new_head = {
            "head_id": _b("head_id"),
            "kind": _b("kind"),
            "schema_version": _b("schema_version"),
            "step": _b("step"),
            "status": _b("status"),
            "metadata": _b("metadata", type_=t.c.metadata.type),
            "checkpoint_count": t.c.checkpoint_count + 1,
            "next_position": t.c.next_position + 1,
            "updated_at": _b("now"),
        }
        after = (t.c.pk, t.c.checkpoint_count, t.c.next_position)
        self.set_head = Stmt(
            t.update().where(t.c.pk == _b("pk")).values(**new_head).returning(*after)
        )
        """Make a new checkpoint the head of a claimed thread."""
        self.advance_head = Stmt(
            t.update()
            .where(
                t.c.key == _b("key"),
                t.c.head_id == _b("parent_id"),
                t.c.updated_at > _b("alive_after"),
            )
            .values(**new_head)
            .returning(*after)
        )
        """Check and move the head in one statement: no row back means another writer won.

        On PostgreSQL a concurrent writer waits for the row lock, then re-reads the row and
        finds a head it did not expect."""
        self.uncount = Stmt(
            t.update()
            .where(t.c.pk == _b("pk"))
            .values(checkpoint_count=t.c.checkpoint_count - _b("removed"))
        )

    @staticmethod
    def _append_to_logs(tables: Tables) -> Stmt:
        """PostgreSQL: bump several logs and insert all their new items in one round trip.

        Parameters: ``thread_pk``; per log ``name_keys``, ``names``, ``counts``; per item
        ``item_keys`` (its log's name key), ``datas`` and ``backs`` (how many of its log's
        new items come after it), so an item's ``seq`` is its log's new version - back.
        """
        logs = tables.logs
        blobs, big = postgresql.ARRAY(sa.LargeBinary()), postgresql.ARRAY(sa.BigInteger())
        wanted = (
            sa.func.unnest(
                _b("name_keys", type_=blobs),
                _b("names", type_=postgresql.ARRAY(sa.String())),
                _b("counts", type_=big),
            )
            .table_valued(
                sa.column("name_key", sa.LargeBinary()),
                sa.column("name", sa.String()),
                sa.column("count", sa.BigInteger()),
            )
            .render_derived()
        )
        insert = postgresql.insert(logs)
        bumped = (
            insert.from_select(
                ["thread_pk", "name_key", "name", "version", "pinned", "length"],
                sa.select(
                    _b("thread_pk", type_=sa.BigInteger()),
                    wanted.c.name_key,
                    wanted.c.name,
                    wanted.c.count,
                    sa.literal(0, sa.BigInteger()),
                    wanted.c.count,
                ).select_from(wanted),
            )
            .on_conflict_do_update(
                index_elements=[logs.c.thread_pk, logs.c.name_key],
                set_={
                    "version": logs.c.version + insert.excluded.version,
                    "length": logs.c.length + insert.excluded.length,
                },
            )
            .returning(logs.c.pk, logs.c.name_key, logs.c.version)
            .cte("bumped_all")
        )
        new = (
            sa.func.unnest(
                _b("item_keys", type_=blobs), _b("datas", type_=blobs), _b("backs", type_=big)
            )
            .table_valued(
                sa.column("name_key", sa.LargeBinary()),
                sa.column("data", sa.LargeBinary()),
                sa.column("back", sa.BigInteger()),
            )
            .render_derived()
        )
        return Stmt(
            tables.items.insert().from_select(
                ["log_pk", "seq", "data"],
                sa.select(bumped.c.pk, bumped.c.version - new.c.back, new.c.data)
                .select_from(bumped)
                .join(new, new.c.name_key == bumped.c.name_key),
            )
        )

    @staticmethod
    def _read_many(tables: Tables) -> Stmt:
        """PostgreSQL: several logs' items as their versions saw them, in one statement.

        Parameters: ``key``, ``alive_after``; per log ``name_keys``, ``versions``, ``starts``
        and ``counts`` (``NULL``: to the end). Rows are ``(name_key, seq, data)``:
        :data:`read_seen_slice` once per log, through a ``LATERAL`` join. They are not sorted
        here: sorting the items' data in the server took longer than the rest of the query,
        so the caller puts each log's rows in ``seq`` order.
        """
        items, logs, t = tables.items, tables.logs, tables.threads
        big = postgresql.ARRAY(sa.BigInteger())
        wanted = (
            sa.func.unnest(
                _b("name_keys", type_=postgresql.ARRAY(sa.LargeBinary())),
                _b("versions", type_=big),
                _b("starts", type_=big),
                _b("counts", type_=big),
            )
            .table_valued(
                sa.column("name_key", sa.LargeBinary()),
                sa.column("version", sa.BigInteger()),
                sa.column("start", sa.BigInteger()),
                sa.column("count", sa.BigInteger()),
            )
            .render_derived()
        )
        thread_pk = (
            sa.select(t.c.pk)
            .where(t.c.key == _b("key"), t.c.updated_at > _b("alive_after"))
            .scalar_subquery()
        )
        seen = (
            sa.select(items.c.seq, items.c.data)
            .where(
                items.c.log_pk == logs.c.pk,
                items.c.seq <= wanted.c.version,
                sa.or_(items.c.removed_at.is_(None), items.c.removed_at > wanted.c.version),
            )
            .order_by(items.c.seq)
            .offset(wanted.c.start)
            .limit(wanted.c.count)
            .lateral("seen")
        )
        return Stmt(
            sa.select(wanted.c.name_key, seen.c.seq, seen.c.data)
            .select_from(wanted)
            .join(
                logs, sa.and_(logs.c.name_key == wanted.c.name_key, logs.c.thread_pk == thread_pk)
            )
            .join(seen, sa.true())
        )

    def _logs(self, tables: Tables, postgres: bool) -> None:
        logs, t = tables.logs, tables.threads
        insert = _insert(logs, postgres)
        upsert = (
            insert.values(
                thread_pk=_b("thread_pk"),
                name_key=_b("name_key", type_=sa.LargeBinary()),
                name=_b("name"),
                version=_b("count"),
                pinned=0,
                length=_b("count"),
            )
            .on_conflict_do_update(
                index_elements=[logs.c.thread_pk, logs.c.name_key],
                set_={
                    "version": logs.c.version + insert.excluded.version,
                    "length": logs.c.length + insert.excluded.length,
                },
            )
            .returning(logs.c.pk, logs.c.version)
        )
        self.upsert_log = Stmt(upsert)
        """Create a log or bump its version (and length) by the count of new items."""
        self.append_to_log: Stmt | None = None
        self.append_to_logs: Stmt | None = None
        self.append_if_live: Stmt | None = None
        if postgres:
            bumped = upsert.cte("bumped")
            new = (
                sa.func.unnest(_b("datas", type_=postgresql.ARRAY(sa.LargeBinary())))
                .table_valued("data", with_ordinality="ord")
                .render_derived()
            )
            seq = bumped.c.version - _b("count", type_=sa.BigInteger()) + new.c.ord
            self.append_to_log = Stmt(
                tables.items.insert().from_select(
                    ["log_pk", "seq", "data"],
                    sa.select(bumped.c.pk, seq, new.c.data)
                    .select_from(bumped)
                    .join(new, sa.true()),
                )
            )
            """PostgreSQL: bump the log and insert its new items in one round trip."""
            t = tables.threads
            claimed = (
                t.update()
                .where(t.c.key == _b("key"), t.c.updated_at > _b("alive_after"))
                .values(updated_at=_b("now"))
                .returning(t.c.pk)
                .cte("claimed")
            )
            log_insert = postgresql.insert(logs)
            bumped_live = (
                log_insert.from_select(
                    ["thread_pk", "name_key", "name", "version", "pinned", "length"],
                    sa.select(
                        claimed.c.pk,
                        _b("name_key", type_=sa.LargeBinary()),
                        _b("name", type_=sa.String()),
                        _b("count", type_=sa.BigInteger()),
                        sa.literal(0, sa.BigInteger()),
                        _b("count", type_=sa.BigInteger()),
                    ),
                )
                .on_conflict_do_update(
                    index_elements=[logs.c.thread_pk, logs.c.name_key],
                    set_={
                        "version": logs.c.version + log_insert.excluded.version,
                        "length": logs.c.length + log_insert.excluded.length,
                    },
                )
                .returning(logs.c.pk, logs.c.version)
                .cte("bumped_live")
            )
            seq_live = bumped_live.c.version - _b("count", type_=sa.BigInteger()) + new.c.ord
            self.append_if_live = Stmt(
                tables.items.insert()
                .from_select(
                    ["log_pk", "seq", "data"],
                    sa.select(bumped_live.c.pk, seq_live, new.c.data)
                    .select_from(bumped_live)
                    .join(new, sa.true()),
                )
                .returning(tables.items.c.seq)
            )
            """PostgreSQL: lock and touch a live thread, bump its log, insert the items: one
            round trip for the common append; no row back means the thread is not live."""
            self.append_to_logs = self._append_to_logs(tables)
        self.pin_logs = Stmt(
            logs.update()
            .where(logs.c.thread_pk == _b("thread_pk"))
            .values(pinned=logs.c.version)
            .returning(logs.c.name, logs.c.version)
        )
        """Record every log's version for a new checkpoint and return them, in one statement."""
        self.log_row = Stmt(
            sa.select(logs.c.pk, logs.c.version, logs.c.pinned, logs.c.length).where(
                logs.c.thread_pk == _b("thread_pk"), logs.c.name_key == _b("name_key")
            )
        )
        self.bump_log = Stmt(
            logs.update()
            .where(logs.c.pk == _b("pk"))
            .values(version=_b("version"), length=_b("length"))
        )
        self.log_names = Stmt(
            sa.select(logs.c.name).where(
                logs.c.thread_pk == t.c.pk,
                t.c.key == _b("key"),
                t.c.updated_at > _b("alive_after"),
            )
        )
        self.log_length = Stmt(
            sa.select(logs.c.length).where(
                logs.c.thread_pk == t.c.pk,
                logs.c.name_key == _b("name_key"),
                t.c.key == _b("key"),
                t.c.updated_at > _b("alive_after"),
            )
        )

    def _items(self, tables: Tables) -> None:
        items, logs, t = tables.items, tables.logs, tables.threads
        self.insert_item = Stmt(
            items.insert().values(
                log_pk=_b("log_pk"), seq=_b("seq"), data=_b("data", type_=sa.LargeBinary())
            )
        )
        # The log's pk as a scalar subquery: the planner then walks the (log_pk, seq) index
        # in order and stops at LIMIT, instead of joining every item to its thread first.
        log_pk = (
            sa.select(logs.c.pk)
            .join(t, logs.c.thread_pk == t.c.pk)
            .where(
                logs.c.name_key == _b("name_key"),
                t.c.key == _b("key"),
                t.c.updated_at > _b("alive_after"),
            )
            .scalar_subquery()
        )
        of_log = items.c.log_pk == log_pk
        live = items.c.removed_at.is_(None)
        seen = sa.and_(
            items.c.seq <= _b("version"),
            sa.or_(live, items.c.removed_at > _b("version")),
        )
        base = sa.select(items.c.seq, items.c.data).order_by(items.c.seq)
        read_live = base.where(of_log, live).offset(_b("start", type_=sa.Integer))
        read_seen = base.where(of_log, seen).offset(_b("start", type_=sa.Integer))
        self.read_live = Stmt(read_live)
        self.read_live_slice = Stmt(read_live.limit(_b("count", type_=sa.Integer)))
        self.read_seen = Stmt(read_seen)
        """The items checkpoint version ``:version`` saw."""
        self.read_seen_slice = Stmt(read_seen.limit(_b("count", type_=sa.Integer)))
        tail = (
            sa.select(items.c.seq, items.c.data)
            .where(of_log, live)
            .order_by(items.c.seq.desc())
            .limit(_b("count", type_=sa.Integer))
        )
        self.tail = Stmt(tail)
        data, count = _line(items.c.data), _b("count", type_=sa.Integer)
        self.lines_live = Stmt(read_live.with_only_columns(data))
        """The reads again, each item's JSON text alone (see :func:`_line`)."""
        self.lines_live_slice = Stmt(read_live.limit(count).with_only_columns(data))
        self.lines_seen = Stmt(read_seen.with_only_columns(data))
        self.lines_seen_slice = Stmt(read_seen.limit(count).with_only_columns(data))
        self.lines_tail = Stmt(tail.with_only_columns(data))
        self.newest_live = Stmt(
            sa.select(items.c.seq, items.c.data)
            .where(items.c.log_pk == _b("log_pk"), live)
            .order_by(items.c.seq.desc())
            .limit(1)
        )
        mine = sa.and_(items.c.log_pk == _b("log_pk"), live, items.c.seq >= _b("from_seq"))
        self.delete_unseen = Stmt(items.delete().where(mine, items.c.seq > _b("pinned")))
        """Removing items no checkpoint saw (``seq > pinned``) deletes them..."""
        self.stamp_removed = Stmt(items.update().where(mine).values(removed_at=_b("version")))
        """...the others stay, stamped with the version that removed them."""
        self.removed_items = Stmt(
            sa.select(logs.c.name, items.c.log_pk, items.c.seq, items.c.removed_at).where(
                items.c.log_pk == logs.c.pk,
                logs.c.thread_pk == _b("thread_pk"),
                items.c.removed_at.is_not(None),
            )
        )
        self.delete_item = Stmt(
            items.delete().where(items.c.log_pk == _b("log_pk"), items.c.seq == _b("seq"))
        )

    def _checkpoints(self, tables: Tables, postgres: bool) -> None:
        c, t = tables.checkpoints, tables.threads
        self.insert_checkpoint = Stmt(
            _insert(c, postgres)
            .values(
                thread_pk=_b("thread_pk"),
                id_key=_b("id_key", type_=sa.LargeBinary()),
                checkpoint_id=_b("checkpoint_id"),
                position=_b("position"),
                created_at=_b("created_at"),
                metadata=_b("metadata", type_=c.c.metadata.type),
                header=_b("header"),
                logs=_b("logs"),
                payload=_b("payload", type_=sa.LargeBinary()),
            )
            .on_conflict_do_nothing(index_elements=[c.c.thread_pk, c.c.id_key])
            .returning(c.c.position)
        )
        """Add a checkpoint; no row back means the id is taken."""
        alive = sa.and_(t.c.key == _b("key"), t.c.updated_at > _b("alive_after"))
        columns = (t.c.head_id, c.c.checkpoint_id, c.c.header, c.c.payload, c.c.logs)
        # The head is the newest checkpoint: the one at the last position handed out.
        on_head = sa.and_(c.c.thread_pk == t.c.pk, c.c.position == t.c.next_position - 1)
        on_id = sa.and_(c.c.thread_pk == t.c.pk, c.c.id_key == _b("id_key"))
        self.get_head = Stmt(sa.select(*columns).select_from(t.outerjoin(c, on_head)).where(alive))
        """The head in one query; a row without a checkpoint means no checkpoint yet."""
        self.get_by_id = Stmt(sa.select(*columns).select_from(t.outerjoin(c, on_id)).where(alive))
        self.position_of = Stmt(
            sa.select(c.c.position).where(
                c.c.thread_pk == _b("thread_pk"), c.c.id_key == _b("id_key")
            )
        )
        self.kth_newest = Stmt(
            sa.select(c.c.position)
            .where(c.c.thread_pk == _b("thread_pk"))
            .order_by(c.c.position.desc())
            .offset(_b("skip", type_=sa.Integer))
            .limit(1)
        )
        self.trim = Stmt(
            c.delete()
            .where(c.c.thread_pk == _b("thread_pk"), c.c.position < _b("position"))
            .returning(c.c.position)
        )
        """Drop the checkpoints older than a position (``keep_last``; the head is newer)."""
        self.recorded_versions = Stmt(
            sa.select(c.c.checkpoint_id, c.c.logs).where(c.c.thread_pk == _b("thread_pk"))
        )

    def _leases(self, tables: Tables, postgres: bool) -> None:
        leases = tables.leases
        key = leases.c.key == _b("key")
        insert = _insert(leases, postgres)
        self.take_lease = Stmt(
            insert.values(
                key=_b("key", type_=sa.LargeBinary()),
                namespace=_b("namespace"),
                thread_id=_b("thread_id"),
                owner=_b("owner"),
                token=_b("token"),
                expires_at=_b("expires_at"),
            )
            .on_conflict_do_update(
                index_elements=[leases.c.key],
                set_={
                    "owner": insert.excluded.owner,
                    "token": insert.excluded.token,
                    "expires_at": insert.excluded.expires_at,
                },
                where=sa.or_(
                    leases.c.expires_at <= _b("now"),
                    leases.c.owner == insert.excluded.owner,
                    leases.c.owner == _b("take_over"),  # NULL (no take-over) matches nothing
                ),
            )
            .returning(leases.c.token)
        )
        """Insert, or take over an expired lease, one of the same owner or of ``take_over``."""
        self.lease_holder = Stmt(sa.select(leases.c.owner, leases.c.expires_at).where(key))
        self.hold_lease = Stmt(
            sa.select(leases.c.token)
            .where(key, leases.c.token == _b("token"), leases.c.expires_at > _b("now"))
            .with_for_update(read=True)
        )
        """The lease row if this token holds it unexpired; locked (``FOR SHARE``) until the
        write commits, so no acquire can replace it in between (SQLite writers hold the
        database lock anyway)."""
        self.renew_lease = Stmt(
            leases.update()
            .where(key, leases.c.token == _b("token"), leases.c.expires_at > _b("now"))
            .values(expires_at=_b("expires_at"))
            .returning(leases.c.token)
        )
        self.release_lease = Stmt(leases.delete().where(key, leases.c.token == _b("token")))
        self.drop_lease = Stmt(leases.delete().where(key))


def _fresh() -> dict[str, Any]:
    """A thread with logs and no checkpoint yet; ``:now`` is its first write."""
    return {
        "head_id": None,
        "kind": None,
        "schema_version": None,
        "step": -1,
        "status": None,
        "metadata": {},
        "checkpoint_count": 0,
        "next_position": 0,
        "updated_at": _b("now"),
    }


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
