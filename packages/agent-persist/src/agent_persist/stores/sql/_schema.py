"""The SQL store's own tables, and the append-only list of steps that builds them.

    with engine.begin() as conn:
        version = migrate(conn, schema=None)   # idempotent: applies only the missing steps
    tables = build_tables(schema=None)         # what queries use
    metadata = load_object(row.metadata, where="thread 't'")   # a column read back, checked

The tables carry their own version, separate from the envelope format: the
``agent_persist_schema_version`` table holds one row per applied step. :func:`migrate` applies
the steps a database lacks, inside the caller's transaction, and refuses a database that a
newer release already upgraded (:class:`~agent_persist.errors.StoreSchemaError`), so an old
worker never writes rows it does not understand.

Rules for changing the tables, so every database ever created can still be upgraded:

* never edit a step that was released; append a new one (``DDLStep(2, ...)``);
* a step builds its tables from its *own* frozen definition (``_define_v1``), never from
  :func:`build_tables`, which always describes the newest shape;
* a test reflects a freshly migrated database and compares it with :func:`build_tables`.

Keys stay small whatever the ids: a thread is found by ``key``, the SHA-256 of its namespace
and id, and numbered by a surrogate ``pk`` that its checkpoints, logs and items repeat; a log
is found by the digest of its name, a checkpoint by the digest of its id. So an id of a
kilobyte of any characters (3 KB of UTF-8) never meets PostgreSQL's 2.7 KB limit on an
index entry, and indexes hold 32 bytes where the ids could hold kilobytes.

Values come back through :func:`as_text`, :func:`as_blob` and :func:`load_object`: a SQLite
column holds whatever a raw ``UPDATE`` put there, so each read is checked, never trusted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import TypeEngine

from ..._json import canonical_json
from ...errors import CorruptCheckpointError, StoreSchemaError
from .._records import load_json
from ._put_function import create_put_function

__all__ = [
    "DDL_STEPS",
    "SCHEMA_VERSION",
    "DDLStep",
    "JSONDocument",
    "Tables",
    "as_blob",
    "as_text",
    "build_tables",
    "load_object",
    "migrate",
]

PREFIX = "agent_persist_"


class JSONDocument(sa.types.TypeDecorator[Any]):
    """A JSON object column: JSONB on PostgreSQL (filtered with ``@>``), TEXT elsewhere.

    Binding serialises canonically on SQLite, so ``json_each`` sees exactly what was written
    whatever JSON settings the engine has. Reads select the column as text (see
    ``checkpoints.json_text``) so a damaged value surfaces as a typed error naming its thread.
    """

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """JSONB on PostgreSQL, plain TEXT elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """PostgreSQL's JSONB serialises by itself; elsewhere store canonical JSON text."""
        if value is None or dialect.name == "postgresql":
            return value
        return canonical_json(value, what="metadata").decode("utf-8")


def as_text(value: Any) -> str | bytes:
    """A column value as JSON text; SQLite columns hold whatever a raw UPDATE put there."""
    return value if isinstance(value, str | bytes) else str(value)


def as_blob(value: Any) -> bytes:
    """A column value as bytes, for the codec to judge (a damaged row may hold text)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(cast("bytes", value))
    return str(value).encode("utf-8")


def load_object(text: Any, *, where: str) -> dict[str, Any]:
    """Parse a JSON object column; :class:`CorruptCheckpointError` if it is not one."""
    value = load_json(as_text(text), where=where)
    if not isinstance(value, dict):
        raise CorruptCheckpointError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return cast("dict[str, Any]", value)


def _pk() -> sa.Column[Any]:
    """An auto-numbered surrogate key: ``INTEGER PRIMARY KEY`` is the rowid on SQLite."""
    return sa.Column(
        "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.Identity(), primary_key=True
    )


@dataclass(frozen=True, slots=True)
class Tables:
    """The store's tables, all in one :class:`sqlalchemy.MetaData` (one schema)."""

    metadata: sa.MetaData
    threads: sa.Table
    checkpoints: sa.Table
    logs: sa.Table
    items: sa.Table
    leases: sa.Table
    audit_sessions: sa.Table
    audit_messages: sa.Table
    audit_tool_calls: sa.Table


def _define_v1(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table, sa.Table, sa.Table]:
    """The tables as step 1 creates them. Frozen: later steps alter, they never edit this."""
    threads = sa.Table(
        f"{PREFIX}threads",
        metadata,
        _pk(),
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("thread_id", sa.Text, nullable=False),
        sa.Column("head_id", sa.Text),
        sa.Column("kind", sa.Text),
        sa.Column("schema_version", sa.Integer),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("status", sa.Text),
        sa.Column("metadata", JSONDocument(), nullable=False),
        sa.Column("checkpoint_count", sa.Integer, nullable=False),
        sa.Column("next_position", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.UniqueConstraint("key", name=f"{PREFIX}threads_key"),
        sa.Index(f"{PREFIX}threads_updated", "namespace", "updated_at"),
        sqlite_autoincrement=True,
    )
    checkpoints = sa.Table(
        f"{PREFIX}checkpoints",
        metadata,
        sa.Column("thread_pk", sa.BigInteger, primary_key=True),
        sa.Column("id_key", sa.LargeBinary, primary_key=True),
        sa.Column("checkpoint_id", sa.Text, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("metadata", JSONDocument(), nullable=False),
        sa.Column("header", sa.Text, nullable=False),
        sa.Column("logs", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Index(f"{PREFIX}checkpoints_position", "thread_pk", "position", unique=True),
    )
    logs = sa.Table(
        f"{PREFIX}logs",
        metadata,
        _pk(),
        sa.Column("thread_pk", sa.BigInteger, nullable=False),
        sa.Column("name_key", sa.LargeBinary, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("pinned", sa.BigInteger, nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("thread_pk", "name_key", name=f"{PREFIX}logs_key"),
        sqlite_autoincrement=True,
    )
    items = sa.Table(
        f"{PREFIX}log_items",
        metadata,
        sa.Column("log_pk", sa.BigInteger, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("removed_at", sa.BigInteger),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    live = items.c.removed_at.is_(None)
    removed = items.c.removed_at.is_not(None)
    sa.Index(
        f"{PREFIX}log_items_live",
        items.c.log_pk,
        items.c.seq,
        sqlite_where=live,
        postgresql_where=live,
    )
    sa.Index(
        f"{PREFIX}log_items_removed",
        items.c.log_pk,
        items.c.seq,
        sqlite_where=removed,
        postgresql_where=removed,
    )
    leases = sa.Table(
        f"{PREFIX}leases",
        metadata,
        sa.Column("key", sa.LargeBinary, primary_key=True),
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("thread_id", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Index(f"{PREFIX}leases_expiry", "namespace", "expires_at"),
    )
    return threads, checkpoints, logs, items, leases


def _define_audit_v2(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table]:
    """The audit projection as step 2 creates it (frozen): sessions, messages, tool calls.

    A message or tool call row is keyed like the log item it mirrors (``log_pk``, ``seq``),
    so projecting an item twice adds nothing. ``thread_key`` (the thread's 32-byte digest)
    joins the three and is what the indexes hold; ``namespace`` and ``thread_id`` are there
    in clear for people and BI tools. Times are seconds since the epoch, as elsewhere.
    """
    sessions = sa.Table(
        f"{PREFIX}audit_sessions",
        metadata,
        sa.Column("thread_key", sa.LargeBinary, primary_key=True),
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("thread_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text),
        sa.Column("first_at", sa.Double),
        sa.Column("last_at", sa.Double),
        sa.Index(f"{PREFIX}audit_sessions_user", "namespace", "user_id"),
        sa.Index(f"{PREFIX}audit_sessions_last", "namespace", "last_at"),
    )

    def common(name: str, *columns: sa.Column[Any], indexes: list[sa.Index]) -> sa.Table:
        return sa.Table(
            f"{PREFIX}audit_{name}",
            metadata,
            sa.Column("log_pk", sa.BigInteger, primary_key=True),
            sa.Column("seq", sa.BigInteger, primary_key=True),
            sa.Column("thread_key", sa.LargeBinary, nullable=False),
            sa.Column("namespace", sa.Text, nullable=False),
            sa.Column("thread_id", sa.Text, nullable=False),
            *columns,
            sa.Column("created_at", sa.Double),
            sa.Index(f"{PREFIX}audit_{name}_thread", "thread_key", "created_at"),
            *indexes,
        )

    messages = common(
        "messages",
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("model", sa.Text),
        sa.Column("content", sa.Text),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_usd", sa.Double, nullable=False),
        indexes=[sa.Index(f"{PREFIX}audit_messages_time", "namespace", "created_at")],
    )
    tool_calls = common(
        "tool_calls",
        sa.Column("call_id", sa.Text),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("input", sa.Text),
        sa.Column("output", sa.Text),
        sa.Column("duration_ms", sa.Double),
        indexes=[sa.Index(f"{PREFIX}audit_tool_calls_name", "namespace", "name", "created_at")],
    )
    return sessions, messages, tool_calls


def build_tables(schema: str | None) -> Tables:
    """The tables as the newest step leaves them: what every query is built from."""
    metadata = sa.MetaData(schema=schema)
    return Tables(metadata, *_define_v1(metadata), *_define_audit_v2(metadata))


def _version_table(schema: str | None) -> sa.Table:
    """One row per applied step. Its shape never changes, so any release can read it."""
    return sa.Table(
        f"{PREFIX}schema_version",
        sa.MetaData(schema=schema),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("applied_at", sa.Double, nullable=False),
    )


@dataclass(frozen=True, slots=True)
class DDLStep:
    """One released change to the tables: its version, a one-line summary, and the DDL."""

    version: int
    summary: str
    apply: Callable[[Connection, str | None], None]


def _step_1(conn: Connection, schema: str | None) -> None:
    metadata = sa.MetaData(schema=schema)
    metadata.create_all(conn, tables=list(_define_v1(metadata)), checkfirst=False)


def _step_2(conn: Connection, schema: str | None) -> None:
    metadata = sa.MetaData(schema=schema)
    metadata.create_all(conn, tables=list(_define_audit_v2(metadata)), checkfirst=False)


def _step_3(conn: Connection, schema: str | None) -> None:
    create_put_function(conn, schema, version=1)  # PostgreSQL only; SQLite records the version


def _step_4(conn: Connection, schema: str | None) -> None:
    create_put_function(conn, schema, version=2)


DDL_STEPS: tuple[DDLStep, ...] = (
    DDLStep(1, "threads, checkpoints, logs, log items and leases", _step_1),
    DDLStep(2, "audit projection: audit_sessions, audit_messages, audit_tool_calls", _step_2),
    DDLStep(3, "PostgreSQL: function agent_persist_put_1, a put in one round trip", _step_3),
    DDLStep(4, "PostgreSQL: function agent_persist_put_2, checking log positions", _step_4),
)
"""Every step ever released, oldest first. Append only."""

SCHEMA_VERSION = DDL_STEPS[-1].version
"""The table version this code reads and writes."""


def _check_steps() -> None:
    versions = [step.version for step in DDL_STEPS]
    if versions != list(range(1, len(DDL_STEPS) + 1)):
        raise RuntimeError(f"DDL steps must be numbered 1, 2, 3... without gaps: {versions}")
    if any(not step.summary or "\n" in step.summary for step in DDL_STEPS):
        raise RuntimeError("every DDL step needs a one-line summary")


_check_steps()


def _advisory_key(schema: str | None) -> int:
    """A stable signed 64-bit lock key per schema, so setups of different schemas never wait."""
    digest = hashlib.sha256(f"agent-persist setup {schema or ''}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _schema_exists(conn: Connection, schema: str) -> bool:
    """Look first: ``CREATE SCHEMA IF NOT EXISTS`` needs CREATE rights even when it exists."""
    namespaces = sa.table("pg_namespace", sa.column("nspname"), schema="pg_catalog")
    found = conn.execute(sa.select(sa.literal(1)).where(namespaces.c.nspname == schema))
    return found.first() is not None


def migrate(conn: Connection, *, schema: str | None, where: str) -> int:
    """Bring the tables to :data:`SCHEMA_VERSION` inside the caller's transaction.

    Concurrent callers serialise: PostgreSQL takes a transaction-scoped advisory lock first
    (DDL there is transactional, so a loser sees the winner's tables once it gets the lock);
    SQLite callers already hold the write lock (``BEGIN IMMEDIATE``).

    Args:
        conn: A connection inside a write transaction.
        schema: The PostgreSQL schema to create and use, or ``None``.
        where: The store's description, for error messages.

    Returns:
        The version the tables are at afterwards.

    Raises:
        StoreSchemaError: The tables were upgraded by a newer release than this one.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_advisory_key(schema))))
        if schema is not None and not _schema_exists(conn, schema):
            conn.execute(sa.schema.CreateSchema(schema))
    versions = _version_table(schema)
    versions.create(conn, checkfirst=True)
    current = conn.execute(sa.select(sa.func.max(versions.c.version))).scalar() or 0
    if current > SCHEMA_VERSION:
        raise StoreSchemaError(
            f"{where}: the tables are at version {current}, newer than the {SCHEMA_VERSION} "
            "this agent-persist understands; upgrade agent-persist (the data is untouched)"
        )
    for step in DDL_STEPS[current:]:
        step.apply(conn, schema)
        conn.execute(
            versions.insert().values(
                version=step.version, summary=step.summary, applied_at=time.time()
            )
        )
    return SCHEMA_VERSION
