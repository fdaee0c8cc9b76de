"""The SQL store: SQLite embedded (no extra needed) or PostgreSQL (``agent-persist[postgres]``).

    async with SQLStore.from_url("sqlite:///agents.db") as store:
        saved = await store.put(envelope, appends={"transcript": [message]})
        latest = await store.get(envelope.thread_id)

    store = SQLStore("postgresql://app:secret@db/agents", schema="agents", ttl=timedelta(days=30))

Both databases run the same code: every operation is one sync SQLAlchemy Core function over a
``Connection``, run as one transaction. SQLite drives the standard ``sqlite3`` module from a
worker thread, one hop per transaction, in WAL mode with ``synchronous=NORMAL`` (a commit
survives a process crash; an OS crash or power loss can lose the last few). PostgreSQL uses
an asyncpg async engine and ``run_sync``; its checkpoint ``put`` is one call of a
server-side function in autocommit, one round trip (:mod:`._server_put`). Each method here
hands one function of :mod:`._checkpoints`, :mod:`._logs`, :mod:`._leases` or
:mod:`._retention` to the runner of :mod:`._engine`; those functions run the prebuilt
statements of :mod:`._statements` on the tables of :mod:`._schema`. Nothing is ever built
from user strings: ids, log names and metadata keys are bound parameters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..._json import JSON
from ...codecs import PayloadCodec
from ...envelope import Envelope
from ...errors import AgentPersistError
from .._arguments import check_bool, check_pool_size, check_pool_timeout, check_text
from .._audit import AUDIT_LOG
from .._loops import LoopLock
from .._records import EncodedCheckpoint, StoredValue
from ..base import BaseStore, Lease, ThreadInfo
from . import _audit as audit
from . import _checkpoints as checkpoints
from . import _leases as leases
from . import _logs as logs
from . import _retention as retention
from . import _seal as sealing
from ._audit import AuditBackfill
from ._engine import (
    POOL_TIMEOUT,
    EngineOptions,
    PostgresRunner,
    Runner,
    describe_pool,
    open_runner,
    parse_url,
    wrap_engine,
)
from ._errors import translate_error
from ._schema import build_tables, migrate
from ._server_put import SlowPath, send_put
from ._statements import Scope, Statements
from ._threads import find_thread
from ._warm import direct_put, prime, settle

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ...crypto import Encryption

__all__ = ["AuditBackfill", "SQLStore"]

T = TypeVar("T")


class SQLStore(BaseStore):
    """Checkpoints, logs and leases in SQLite or PostgreSQL tables.

    A PostgreSQL URL works as a hosting console prints it: the libpq query parameters
    ``sslmode`` (``disable``, ``allow``, ``prefer``, ``require``, ``verify-ca``,
    ``verify-full``), ``sslrootcert`` (a CA file, or ``system``), ``sslcert``, ``sslkey``,
    ``connect_timeout``, ``application_name``, ``options`` (``-c name=value`` pairs),
    ``target_session_attrs`` and ``host``/``port`` (a list, or a unix-socket directory) are
    translated into asyncpg's connect arguments, as are asyncpg's ``ssl``,
    ``command_timeout`` and ``statement_cache_size`` (``0`` behind PgBouncer or another
    pooler in transaction mode) and SQLAlchemy's ``prepared_statement_cache_size``; see
    :mod:`._url`. Another parameter or a wrong value is an ``InvalidStoreURLError``
    naming it, raised here, before any I/O.

    Args:
        url: ``sqlite:///path.db``, ``sqlite:///:memory:`` (one private in-memory database),
            ``postgresql://``, ``postgres://`` or ``postgresql+asyncpg://`` URLs; or an engine
            the caller owns: a sync SQLite ``Engine`` or an asyncpg ``AsyncEngine`` (then
            :meth:`close` leaves it open). An ``AsyncEngine`` serves the first event loop
            the store runs on only (another raises ``EventLoopMismatchError``); from a
            PostgreSQL URL the store opens one pool per loop, so any thread and any loop
            (``asyncio.run`` per call, ``Runner.run_sync``) can use it.
        namespace: The tenant; stores in different namespaces never see each other's threads.
        ttl: Threads not written for this long are invisible, and deleted by
            :meth:`purge_expired`.
        keep_last: Keep only the newest N checkpoints of each thread, trimmed on every put.
        schema: PostgreSQL only: the schema holding the tables, created if missing.
        codec: How payloads and log items are sealed (compression, encryption).
        auto_setup: Run :meth:`setup` before the first operation.
        pool_size: Connections kept open, per event loop (PostgreSQL default: 10; SQLite:
            SQLAlchemy's). The pool never opens more than ``pool_size + max_overflow``;
            a transaction that finds them all busy waits for one.
        max_overflow: Extra connections opened under load and closed again (PostgreSQL
            default: 0, so connections are never churned; SQLite: SQLAlchemy's).
        pool_timeout: Seconds (or a ``timedelta``) a transaction waits for a free pooled
            connection; then ``StoreUnavailableError`` naming the pool's limits.
        busy_timeout: SQLite: seconds to wait for another writer's lock.
        connect_timeout: PostgreSQL: seconds to wait for a connection (the URL's
            ``connect_timeout`` wins).
        warm_pool: PostgreSQL: :meth:`setup` also opens the running loop's pool to
            ``pool_size``, runs the hot statements once on each connection and then one
            full garbage collection, so the first burst of calls on a new process does
            not pay for that (a first call 2-3x a later one otherwise, with many calls in
            flight). Off by default: it holds ``pool_size`` connections from setup on. A
            pool passed in is not warmed.

    Raises:
        InvalidStoreURLError: A URL or engine this store does not serve, or a URL parameter
            that is unknown or wrong.
        MissingDependencyError: A PostgreSQL URL without the ``postgres`` extra installed.

    Operations raise ``StoreUnavailableError`` (one line, the password masked) when the
    server cannot be reached, the connection times out or TLS fails, and when the database,
    role or password is refused.
    """

    def __init__(
        self,
        url: str | sa.URL | Engine | AsyncEngine,
        *,
        namespace: str = "default",
        ttl: timedelta | None = None,
        keep_last: int | None = None,
        schema: str | None = None,
        codec: PayloadCodec | None = None,
        auto_setup: bool = True,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        pool_timeout: float | timedelta = POOL_TIMEOUT,
        busy_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        encryption: Encryption | None = None,
        warm_pool: bool = False,
    ) -> None:
        super().__init__(
            namespace=namespace, ttl=ttl, keep_last=keep_last, codec=codec, encryption=encryption
        )
        warm = check_bool("warm_pool", warm_pool)
        options = EngineOptions(
            pool_size=check_pool_size("pool_size", pool_size),
            max_overflow=check_pool_size("max_overflow", max_overflow, minimum=0),
            busy_timeout=busy_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=check_pool_timeout(pool_timeout),
        )
        if isinstance(url, str | sa.URL):
            backend, _ = parse_url(url)
            self._check_schema(backend, schema)
            self._runner: Runner = open_runner(url, options)
        else:
            self._runner = wrap_engine(url, options)
            self._check_schema(self._runner.backend, schema)
        self._schema = schema
        self._label = self._runner.label + (f" (schema {schema!r})" if schema else "")
        tables = build_tables(schema)
        postgres = self._runner.backend == "postgresql"
        self._scope = Scope(
            tables=tables,
            sql=Statements(tables, postgres=postgres),
            namespace=namespace,
            ttl=None if ttl is None else ttl.total_seconds(),
            codec=self.codec,
            label=self._label,
            postgres=postgres,
        )
        self._busy_timeout = busy_timeout if self._runner.backend == "sqlite" else None
        self._pool = describe_pool(self._runner.engine)
        self._auto_setup = auto_setup
        self._warm_pool = warm
        self._ready = False
        self._setup_lock = LoopLock()

    @staticmethod
    def _check_schema(backend: str, schema: str | None) -> None:
        if schema is not None and backend != "postgresql":
            raise ValueError("schema= is a PostgreSQL option; SQLite keeps one set of tables")

    @classmethod
    def from_url(cls, url: str | sa.URL, **options: Any) -> SQLStore:
        """Open the store a URL names; ``options`` are the constructor's keywords."""
        return cls(url, **options)

    def __repr__(self) -> str:
        return f"SQLStore({self._label!r}, namespace={self.namespace!r})"

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._runner.backend

    @property
    def schema(self) -> str | None:
        """The PostgreSQL schema holding the tables (``None``: the default one)."""
        return self._schema

    @property
    def engine(self) -> Engine | AsyncEngine:
        """The SQLAlchemy engine: a sync ``Engine`` (SQLite) or an ``AsyncEngine`` (PostgreSQL).

        For maintenance and tests (raw SQL, dropping a schema); the store's tables are its own.
        On PostgreSQL it is the running event loop's (outside a loop, the first one).
        """
        return self._runner.engine

    def _translate_error(self, exc: Exception) -> AgentPersistError | None:
        """The driver's errors as agent-persist's (see :func:`._errors.translate_error`).

        A lost, refused or timed-out connection and a SQLite database locked past
        ``busy_timeout`` are :class:`~agent_persist.errors.StoreUnavailableError`; a SQLite
        file that is not a database or is malformed is
        :class:`~agent_persist.errors.CorruptCheckpointError`.
        """
        return translate_error(
            exc, label=self._label, busy_timeout=self._busy_timeout, pool=self._pool
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def _setup(self) -> None:
        """Create or upgrade the tables; idempotent, and safe when many workers start at once.

        With ``warm_pool`` (PostgreSQL) it then opens the running loop's pool, readies each
        connection and collects the startup garbage (:mod:`._warm`), so the first burst of
        calls does not wait for that.

        Raises:
            StoreSchemaError: A newer agent-persist already upgraded the tables.
            StoreUnavailableError: The database cannot be reached.
        """
        async with self._setup_lock.get():  # per loop: migrate is safe run concurrently
            if self._ready:
                return
            schema, where, scope = self._schema, self._label, self._scope
            await self._runner.write(lambda conn: migrate(conn, schema=schema, where=where))
            if self._warm_pool and isinstance(self._runner, PostgresRunner):
                await self._runner.warm(lambda conn: prime(conn, scope), lambda: direct_put(scope))
                settle()
            self._ready = True

    async def _close(self) -> None:
        """Close the connection pools (unless the engine was passed in).

        The running loop's pool now; another loop's on that loop, when it next runs or
        shuts down. The store stays usable: the next call opens what it needs.
        """
        await self._runner.dispose()

    async def _set_up(self) -> None:
        if self._auto_setup and not self._ready:
            await self._setup()

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        await self._set_up()
        return await self._runner.write(fn)

    async def _read(self, fn: Callable[[Connection], T], *, snapshot: bool = False) -> T:
        """Run a read; ``snapshot=True`` when ``fn`` runs several statements."""
        await self._set_up()
        return await self._runner.read(fn, snapshot=snapshot)

    # -- checkpoints ---------------------------------------------------------------------

    async def _put(
        self,
        envelope: Envelope,
        encoded: EncodedCheckpoint,
        sealed: Mapping[str, Sequence[bytes]],
        lease: Lease | None,
        clear: Sequence[str],
        first: Mapping[str, int] | None,
    ) -> Envelope:
        """One round trip on PostgreSQL, unless ``keep_last`` trims or an audit log projects.

        The server-side function (:mod:`._server_put`) runs alone in autocommit, sent
        straight on the driver; what follows it in Python (trimming, the audit
        projection) makes it a transaction.
        """
        scope, keep_last = self._scope, self.keep_last
        audited = sealed.get(AUDIT_LOG)

        def put(conn: Connection, *, slow: bool = False) -> dict[str, int]:
            now = time.time()
            versions = checkpoints.put(
                conn,
                scope,
                envelope,
                encoded,
                sealed,
                now,
                keep_last=keep_last,
                lease=lease,
                clear=clear,
                first=first,
                slow=slow,
            )
            if audited:  # a fork or an import carries the audit log: project it too
                audit.project(conn, scope, envelope.thread_id, audited, now)
            return versions

        runner = self._runner
        try:
            direct = scope.sql.put_call is not None and keep_last is None and not audited
            if direct and isinstance(runner, PostgresRunner):
                await self._set_up()
                versions = await send_put(
                    runner, scope, envelope, encoded, sealed, lease=lease, clear=clear, first=first
                )
            else:
                versions = await self._write(put)
        except SlowPath:  # an expired thread or a race: nothing written, one statement at a time
            versions = await self._write(lambda conn: put(conn, slow=True))
        return envelope.model_copy(update={"logs": versions})

    async def _get(self, thread_id: str, checkpoint_id: str | None) -> Envelope:
        scope = self._scope
        return await self._read(
            lambda conn: checkpoints.get(conn, scope, thread_id, checkpoint_id, time.time())
        )

    async def _list_checkpoints(
        self, thread_id: str, *, limit: int | None, before: str | None, wanted: dict[str, JSON]
    ) -> list[Envelope]:
        scope = self._scope
        return await self._read(
            lambda conn: checkpoints.list_checkpoints(
                conn, scope, thread_id, time.time(), limit=limit, before=before, wanted=wanted
            ),
            snapshot=True,
        )

    async def _list_threads(
        self, *, wanted: dict[str, JSON], limit: int | None
    ) -> list[ThreadInfo]:
        scope = self._scope
        return await self._read(
            lambda conn: checkpoints.list_threads(
                conn, scope, time.time(), limit=limit, wanted=wanted
            )
        )

    async def _thread_exists(self, thread_id: str) -> bool:
        """One indexed SELECT of the live thread row."""
        scope = self._scope
        return await self._read(
            lambda conn: find_thread(conn, scope, thread_id, time.time()) is not None
        )

    async def _delete_thread(self, thread_id: str) -> bool:
        scope = self._scope
        return await self._write(
            lambda conn: checkpoints.delete_thread(conn, scope, thread_id, time.time())
        )

    # -- logs ----------------------------------------------------------------------------

    async def _append(
        self,
        thread_id: str,
        log: str,
        sealed: Sequence[bytes],
        lease: Lease | None,
        first: int | None,
    ) -> None:
        scope = self._scope
        write = audit.append if log == AUDIT_LOG else logs.append
        await self._write(
            lambda conn: write(
                conn, scope, thread_id, log, sealed, time.time(), lease=lease, first=first
            )
        )

    async def backfill_audit(
        self,
        thread_id: str | None = None,
        *,
        dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> AuditBackfill:
        """Fill the audit tables from audit log items written before them; idempotent.

        One transaction per thread; rows already there are kept, so running it again adds
        nothing. Items that do not decode or are not audit events are counted as
        ``skipped`` and left alone.

        Args:
            thread_id: Only this thread; every thread of the namespace by default.
            dry_run: Count what would be added; write nothing.
            progress: Called with ``(done, total)`` threads as the backfill goes.
        """
        if thread_id is not None:
            check_text("thread_id", thread_id)
        scope = self._scope
        if thread_id is None:
            ids = await self._guarded(
                self._read(lambda conn: audit.audit_threads(conn, scope, time.time()))
            )
        else:
            ids = [thread_id]
        total = AuditBackfill()
        if progress is not None:
            progress(0, len(ids))
        for done, one in enumerate(ids, start=1):
            # Sealed items open, and content columns seal, under the thread's data key.
            await self._data_key(one, create=not dry_run)

            def fill(conn: Connection, one: str = one) -> AuditBackfill:
                return audit.backfill(conn, scope, one, time.time(), dry_run=dry_run)

            run = self._read(fill, snapshot=True) if dry_run else self._write(fill)
            total.add(await self._guarded(run))
            if progress is not None:
                progress(done, len(ids))
        return total

    async def read_audit_rows(
        self, thread_id: str, table: Literal["messages", "tool_calls"]
    ) -> list[dict[str, Any]]:
        """The thread's rows of an audit table, oldest first, content opened.

        What a SQL or BI tool sees in ``agent_persist_audit_<table>`` (without the internal
        ``thread_key`` and ``log_pk``), except that on an encrypted store the sealed
        ``content``, ``input`` and ``output`` come back opened under the thread's data key.

        Raises:
            ValueError: ``table`` is not ``"messages"`` or ``"tool_calls"``.
            DecryptionError: A sealed column does not open (tampered, or copied from
                another row); ``ShreddedThreadError`` when the thread's key is gone.
        """
        check_text("thread_id", thread_id)
        if table not in ("messages", "tool_calls"):
            raise ValueError(f"table must be 'messages' or 'tool_calls', got {table!r}")
        scope = self._scope
        return await self._opened(
            thread_id,
            lambda: self._read(lambda conn: audit.read_rows(conn, scope, thread_id, table)),
        )

    async def _read_log(
        self, thread_id: str, log: str, *, start: int, stop: int | None, version: int | None
    ) -> list[JSON]:
        scope = self._scope
        return await self._read(
            lambda conn: logs.read_items(
                conn, scope, thread_id, log, time.time(), version=version, start=start, stop=stop
            )
        )

    async def _read_logs(
        self, thread_id: str, wanted: Mapping[str, tuple[int, int | None, int]]
    ) -> dict[str, list[JSON]]:
        """Every log in one read: one statement on PostgreSQL, one connection on SQLite."""
        scope = self._scope
        return await self._read(
            lambda conn: logs.read_many(conn, scope, thread_id, wanted, time.time()),
            snapshot=not scope.postgres,  # PostgreSQL reads them in one statement
        )

    async def _tail(self, thread_id: str, log: str, count: int) -> list[JSON]:
        scope = self._scope
        return await self._read(
            lambda conn: logs.tail(conn, scope, thread_id, log, count, time.time())
        )

    async def _read_log_lines(
        self, thread_id: str, log: str, *, start: int, stop: int | None, version: int | None
    ) -> bytes:
        """The stored text, joined without parsing."""
        scope = self._scope
        lines = await self._read(
            lambda conn: logs.read_lines(
                conn,
                scope,
                thread_id,
                log,
                time.time(),
                version=version,
                start=start,
                stop=stop,
            )
        )
        if lines is None:  # another codec, or a damaged row: decode item by item
            return await super()._read_log_lines(
                thread_id, log, start=start, stop=stop, version=version
            )
        return lines

    async def _tail_lines(self, thread_id: str, log: str, count: int) -> bytes:
        scope = self._scope
        lines = await self._read(
            lambda conn: logs.tail_lines(conn, scope, thread_id, log, count, time.time())
        )
        if lines is None:
            return await super()._tail_lines(thread_id, log, count)
        return lines

    async def _log_length(self, thread_id: str, log: str) -> int:
        scope = self._scope
        return await self._read(lambda conn: logs.length(conn, scope, thread_id, log, time.time()))

    async def _list_logs(self, thread_id: str) -> list[str]:
        scope = self._scope
        return await self._read(lambda conn: logs.names(conn, scope, thread_id, time.time()))

    async def _pop(self, thread_id: str, log: str) -> JSON | None:
        scope = self._scope
        return await self._write(lambda conn: logs.pop(conn, scope, thread_id, log, time.time()))

    async def _clear_log(self, thread_id: str, log: str) -> None:
        scope = self._scope
        await self._write(lambda conn: logs.clear(conn, scope, thread_id, log, time.time()))

    # -- leases --------------------------------------------------------------------------

    async def _acquire_lease(
        self, thread_id: str, owner: str, *, ttl: timedelta, take_over: str | None
    ) -> Lease:
        scope, seconds = self._scope, ttl.total_seconds()
        return await self._write(
            lambda conn: leases.acquire(
                conn, scope, thread_id, owner, time.time(), ttl=seconds, take_over=take_over
            )
        )

    async def _renew_lease(self, lease: Lease, *, ttl: timedelta) -> Lease:
        scope, seconds = self._scope, ttl.total_seconds()
        return await self._write(
            lambda conn: leases.renew(conn, scope, lease, time.time(), ttl=seconds)
        )

    async def _release_lease(self, lease: Lease) -> None:
        scope = self._scope
        await self._write(lambda conn: leases.release(conn, scope, lease))

    # -- retention -----------------------------------------------------------------------

    async def _prune(
        self, thread_id: str, *, keep_last: int | None, older_than: timedelta | None
    ) -> int:
        scope = self._scope
        age = None if older_than is None else older_than.total_seconds()
        return await self._write(
            lambda conn: retention.prune(
                conn, scope, thread_id, time.time(), keep_last=keep_last, older_than=age
            )
        )

    async def seal_thread(self, thread_id: str, *, dry_run: bool = False) -> int:
        """See :meth:`BaseStore.seal_thread`; also the audit tables' clear content columns.

        Rows projected before encryption was turned on hold their ``content``, ``input``
        and ``output`` in clear; each is sealed as a new row's would be, by compare-and-set.
        """
        count = await super().seal_thread(thread_id, dry_run=dry_run)
        scope = self._scope
        columns = await self._guarded(
            self._read(lambda conn: sealing.clear_audit_columns(conn, scope, thread_id))
        )
        if dry_run or not columns:
            return count + len(columns)
        await self._data_key(thread_id, create=True)
        changes = [
            (column, scope.codec.seal_text(thread_id, [column[0], column[1], column[2]], column[3]))
            for column in columns
        ]
        return count + await self._guarded(
            self._write(lambda conn: sealing.replace_audit_columns(conn, scope, thread_id, changes))
        )

    async def _stored_values(self, thread_id: str) -> list[StoredValue]:
        scope = self._scope
        return await self._read(
            lambda conn: sealing.stored_values(conn, scope, thread_id, time.time()), snapshot=True
        )

    async def _replace_values(
        self, thread_id: str, changes: Sequence[tuple[StoredValue, bytes]]
    ) -> int:
        scope = self._scope
        return await self._write(lambda conn: sealing.replace_values(conn, scope, changes))

    async def _purge_expired(self) -> int:
        """Also drops leases that ran out."""
        scope = self._scope
        return await self._write(lambda conn: retention.purge_expired(conn, scope, time.time()))
