"""Engines and transaction runners: how one sync transaction function reaches each database.

    runner = open_runner("sqlite:///agents.db", options)
    count = await runner.write(lambda conn: conn.execute(stmt).rowcount)
    await runner.dispose()

Every store operation is a plain function over a :class:`sqlalchemy.Connection`. A runner
executes it as one transaction:

* **SQLite**: a sync engine over the standard ``sqlite3`` module, the whole transaction in a
  single hop to one of the store's own worker threads (about 0.2 ms per commit against 1 ms
  through aiosqlite, which hops once per statement). Each worker keeps one pooled connection
  for the store's life, so a transaction pays no pool checkout. WAL with
  ``synchronous=NORMAL``: a commit survives a process crash; only an OS crash or power loss
  can lose the last commits. Writers open with ``BEGIN IMMEDIATE``, so two writers never
  deadlock upgrading read locks; readers with a deferred ``BEGIN`` see one consistent
  snapshot and never block writers.
* **PostgreSQL**: an async engine over asyncpg runs the same function through
  ``AsyncConnection.run_sync``; reads run at REPEATABLE READ, read only, so a multi-statement
  read sees one snapshot. asyncpg connections belong to their event loop, so there is one
  engine (pool) per loop (:mod:`.._loops`): the store works from any thread and any loop.
  Each pool keeps ``pool_size`` connections (default 10) with no overflow, so it never
  opens and closes connections under load; transactions wait for one in arrival order
  (:mod:`.._gate`), up to ``pool_timeout``. Behind a pooler in transaction mode the URL
  says ``statement_cache_size=0`` (:mod:`._url`) and single statements run in a
  transaction too. ``fetch_one`` sends one write statement (the checkpoint ``put``
  function) in autocommit on the asyncpg connection: no ``BEGIN`` and ``COMMIT``.
  ``warm`` (at setup, with ``warm_pool``) opens the pool to its size and runs the hot
  statements on each connection once (:mod:`._warm`), so a first burst does not pay that.

Both runners serve any event loop in any thread: SQLite's workers are threads of the store,
and each transaction's future belongs to the loop that awaits it.

Runners let every failure of a statement through: the store translates them in one place
(:mod:`._errors`), a lost connection into ``StoreUnavailableError`` naming the URL with
its password masked. Opening a PostgreSQL connection goes through a hook that says why it
failed, on one line: a refused connection, a DNS failure, a timeout, a TLS failure, a missing
database or role or a wrong password. A PostgreSQL URL's libpq parameters (``sslmode`` and
friends) are checked and translated by :mod:`._url` before any connection is tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import PoolProxiedConnection, QueuePool, StaticPool
from sqlalchemy.util import greenlet_spawn

from ...errors import (
    CorruptCheckpointError,
    InvalidStoreURLError,
    MissingDependencyError,
    StoreUnavailableError,
)
from .._gate import FairGate
from .._loops import LoopBound, PerLoop, Pinned
from ._url import asyncpg_arguments, behind_pooler

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "POOL_TIMEOUT",
    "POSTGRES_POOL_SIZE",
    "EngineOptions",
    "PostgresRunner",
    "Runner",
    "describe_pool",
    "mask",
    "open_runner",
    "parse_url",
    "wrap_engine",
]

T = TypeVar("T")
logger = logging.getLogger("agent_persist")
Backend = Literal["sqlite", "postgresql"]

_SQLITE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite"})
_POSTGRES_DRIVERS = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})
_READY = "agent_persist_ready"
_MIN_SQLITE = (3, 35, 0)  # RETURNING
_SQLITE_WORKERS = 4
"""Worker threads of one SQLite store: WAL readers run side by side, writers take turns."""


POSTGRES_POOL_SIZE = 10
"""Connections a PostgreSQL pool keeps per event loop by default: 9 processes fit in the
server's default ``max_connections = 100`` (3 of them reserved for superusers)."""
POOL_TIMEOUT = 30.0
"""Seconds a transaction waits for a free pooled connection before StoreUnavailableError."""
POOL_RECYCLE = 1800.0
"""Seconds after which a pooled PostgreSQL connection is replaced when next checked out, so
a long-lived pool outlives idle timeouts of proxies and firewalls."""


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Pool and timeout settings for engines the store creates itself.

    ``None`` means the back end's default: on PostgreSQL :data:`POSTGRES_POOL_SIZE`
    connections and no overflow (a pool that waits, never one that opens and closes
    connections under load); on SQLite, SQLAlchemy's.
    """

    pool_size: int | None = None
    max_overflow: int | None = None
    busy_timeout: float = 30.0
    connect_timeout: float = 10.0
    pool_timeout: float = POOL_TIMEOUT


def mask(url: sa.URL) -> str:
    """The URL as safe to print: the password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def parse_url(url: str | sa.URL) -> tuple[Backend, sa.URL]:
    """Recognise a store URL and pin its driver (pysqlite or asyncpg).

    A PostgreSQL URL is checked whole here (port range, every query parameter and its
    value, certificate files), so a wrong one fails when the store is built, before any I/O.

    Raises:
        InvalidStoreURLError: Not a URL, a scheme or driver this store does not serve, or a
            PostgreSQL URL parameter that is unknown or has a wrong value.
    """
    try:
        parsed = sa.make_url(url)
    except (sa_exc.ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise InvalidStoreURLError(
            "not a database URL; the SQL store takes sqlite:///path.db, sqlite:///:memory: "
            "or postgresql://user@host/db"
        ) from exc
    if parsed.drivername in _SQLITE_DRIVERS:
        return "sqlite", parsed.set(drivername="sqlite+pysqlite")
    if parsed.drivername in _POSTGRES_DRIVERS:
        parsed = parsed.set(drivername="postgresql+asyncpg")
        asyncpg_arguments(parsed, timeout=EngineOptions().connect_timeout)  # the checks only
        return "postgresql", parsed
    raise InvalidStoreURLError(
        f"{mask(parsed)}: the SQL store serves sqlite://, sqlite+pysqlite://, postgresql://, "
        f"postgres:// and postgresql+asyncpg:// URLs, not {parsed.drivername}://"
    )


class Runner(Protocol):
    """Runs one sync function as one transaction on the store's database."""

    backend: Backend
    label: str

    @property
    def engine(self) -> Any:
        """The engine the runner drives."""
        ...

    async def read(self, fn: Callable[[Connection], T], *, snapshot: bool = True) -> T:
        """Run ``fn`` reading one consistent snapshot.

        ``snapshot=False`` promises ``fn`` runs a single statement (atomic by itself), so
        no transaction is opened: two round trips fewer on PostgreSQL.
        """
        ...

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction; commit if it returns, roll back if it raises."""
        ...

    async def dispose(self) -> None:
        """Close the engine's connections if this runner created the engine."""
        ...


_SETTING_SQLSTATES = ("42704", "22023")
"""At connect time: a setting from ``options`` or ``application_name`` the server refuses."""


def _origin(exc: BaseException) -> BaseException:
    """The driver's own exception under SQLAlchemy's wrappers (``orig``, then the cause)."""
    detail: BaseException = getattr(exc, "orig", None) or exc
    cause = detail.__cause__
    if type(detail).__module__.startswith("sqlalchemy") and cause is not None:
        return cause
    return detail


def _sqlstate(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None) or getattr(_origin(exc), "sqlstate", None)
    return state if isinstance(state, str) else ""


def _server_refused(exc: BaseException) -> bool:
    """Whether the server refused a statement on a connection that is still sound.

    Its errors carry a SQLSTATE; connection exceptions (class 08, which asyncpg also gives
    a connection it found closed) and shutdowns (``57P01``-``57P03``) end the connection.
    """
    state = getattr(exc, "sqlstate", None)
    return (
        isinstance(exc, Exception)
        and type(exc).__module__.startswith("asyncpg")
        and isinstance(state, str)
        and not _ends_connection(state)
    )


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the server, or the way to it, went away."""
    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, OSError) or (isinstance(state, str) and _ends_connection(state))


def _ends_connection(state: str) -> bool:
    return state.startswith(("08", "57P0"))


async def _discard(
    engine: AsyncEngine, pooled: PoolProxiedConnection, exc: BaseException, *, lost: bool
) -> None:
    """Close a connection a call left in an unknown state, as SQLAlchemy's own calls do.

    In a greenlet, so the close is graceful (bounded by SQLAlchemy at 2 s): the request
    cancelling a cancelled or timed-out statement, which asyncpg sends in the background,
    reaches the server first, so the statement cannot commit later. Shielded, so a second
    cancellation does not cut that short. A ``lost`` connection means the server went away
    (a restart, a failover): as SQLAlchemy does, every connection the pool opened before
    now is replaced at its next checkout, instead of each failing one call.
    """
    error = exc if isinstance(exc, Exception) else None
    if lost:
        pool = engine.sync_engine.pool
        close = functools.partial(pool._invalidate, pooled, error)  # pyright: ignore[reportPrivateUsage]
    else:
        close = functools.partial(pooled.invalidate, error)
    with contextlib.suppress(Exception):  # the call's own error is the one to raise
        await asyncio.shield(greenlet_spawn(close))


def _reason(exc: BaseException) -> str:
    """Why a connection failed, on one line, with the driver's exception type named."""
    origin = _origin(exc)
    text = " ".join(str(origin).split())
    if not text and isinstance(origin, TimeoutError | asyncio.TimeoutError):
        text = "no answer before the connect timeout"
    elif isinstance(origin, socket.gaierror):
        text = f"cannot resolve the host name: {text}"
    elif isinstance(origin, ssl.SSLError):
        text = f"TLS failed: {text}"
    return f"{text} ({type(origin).__name__})" if text else type(origin).__name__


def _unavailable(label: str, exc: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(f"{label} is unavailable: {_reason(exc)}")


def _connect_error(label: str, exc: Exception) -> Exception:
    """What a failure to open one PostgreSQL connection becomes.

    Everything is :class:`StoreUnavailableError` (the server, the role, the database or
    the network said no), except a setting from the URL the server refuses (an unknown
    or wrong ``options`` name or value) and asyncpg refusing its configuration: those are
    :class:`InvalidStoreURLError`.
    """
    state, origin = _sqlstate(exc), _origin(exc)
    config = type(origin).__name__ == "ClientConfigurationError"
    if state in _SETTING_SQLSTATES or config:
        return InvalidStoreURLError(f"{label}: the connection settings are refused: {_reason(exc)}")
    return _unavailable(label, exc)


def _report_connect_failures(engine: AsyncEngine) -> None:
    """Open each new connection through a hook that translates its failures.

    Errors raised while connecting are told apart from errors of statements only here:
    a ``ProgrammingError`` at connect time is a refused setting, not a bug in a query.
    """
    label = mask(engine.url)

    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            raise _connect_error(label, exc) from exc

    event.listen(engine.sync_engine, "do_connect", connect)


class SQLiteRunner:
    """A sync SQLite engine driven from asyncio with one thread hop per transaction."""

    backend: Backend = "sqlite"

    def __init__(self, engine: Engine, *, owned: bool, busy_timeout: float) -> None:
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise StoreUnavailableError(
                f"the SQLite store needs SQLite 3.35 or newer (RETURNING); this Python links "
                f"SQLite {sqlite3.sqlite_version}"
            )
        self.engine = engine
        self._owned = owned
        self._busy_ms = int(busy_timeout * 1000)
        self._memory = engine.url.database in (None, "", ":memory:")
        # An in-memory database is one shared connection: transactions must take turns.
        self._serial: threading.Lock | None = threading.Lock() if self._memory else None
        self.label = mask(engine.url)
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        # A caller's engine may serve others: check out per transaction, keep nothing.
        self._keep = owned
        self._local = threading.local()
        self._kept: list[Connection] = []
        self._kept_lock = threading.Lock()

    def _prepare(self, conn: Connection) -> None:
        """Configure a DBAPI connection once, whoever created the engine.

        ``isolation_level = None`` stops ``sqlite3`` from opening transactions by itself,
        so the ``BEGIN`` this runner emits is the one that counts.
        """
        if conn.info.get(_READY):
            return
        raw: Any = conn.connection.driver_connection
        raw.isolation_level = None
        raw.execute(f"PRAGMA busy_timeout = {self._busy_ms:d}")
        if not self._memory and str(raw.execute("PRAGMA journal_mode").fetchone()[0]) != "wal":
            self._switch_to_wal(raw)
        raw.execute("PRAGMA synchronous = NORMAL")
        conn.info[_READY] = True

    def _switch_to_wal(self, raw: Any) -> None:
        """Turn a new database to WAL; several workers opening it at once take turns.

        The switch needs the database to itself and SQLite may answer "locked" at once
        instead of waiting, so it is retried until the busy timeout runs out.
        """
        deadline = time.monotonic() + self._busy_ms / 1000
        while True:
            try:
                raw.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _connection(self) -> Connection:
        """This worker thread's connection, checked out of the pool once and kept."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.invalidated or conn.closed:
            conn = self.engine.connect()
            try:
                self._prepare(conn)
            except BaseException:  # e.g. locked: give it back, the next call tries anew
                conn.invalidate()
                conn.close()
                raise
            self._local.conn = conn
            with self._kept_lock:
                self._kept.append(conn)
        return conn

    def _drop(self, conn: Connection) -> None:
        """Give back a kept connection whose transaction could not be ended cleanly."""
        self._local.conn = None
        with self._kept_lock:
            if conn in self._kept:
                self._kept.remove(conn)
        conn.invalidate()

    def _hop(self, fn: Callable[[Connection], T], begin: str | None) -> asyncio.Future[T]:
        """Hand ``fn`` to a worker; the future belongs to the running loop, whichever it is."""
        executor = self._executor or self._start()
        return asyncio.get_running_loop().run_in_executor(executor, self._run, fn, begin)

    def _start(self) -> ThreadPoolExecutor:
        """The workers, started on first use (or again after dispose()), once across threads."""
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=_workers(self.engine) if self._keep else _SQLITE_WORKERS,
                    thread_name_prefix="agent-persist-sqlite",
                )
            return self._executor

    def _close(self) -> None:
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        with self._kept_lock:
            kept, self._kept = self._kept, []
        for conn in kept:
            conn.close()
        if self._owned:
            self.engine.dispose()

    def _run(self, fn: Callable[[Connection], T], begin: str | None) -> T:
        with self._serial or contextlib.nullcontext():
            if self._keep:
                return self._transaction(self._connection(), fn, begin, kept=True)
            with self.engine.connect() as conn:
                self._prepare(conn)
                return self._transaction(conn, fn, begin, kept=False)

    def _transaction(
        self, conn: Connection, fn: Callable[[Connection], T], begin: str | None, *, kept: bool
    ) -> T:
        """One transaction; ``BEGIN`` and the final ``COMMIT`` go straight to ``sqlite3``.

        SQLAlchemy's execution context costs more than SQLite's ``BEGIN`` itself, and
        SQLite has one transaction per connection, so the driver's ``in_transaction`` says
        whether one is still open after SQLAlchemy's own commit (a no-op when ``fn`` ran
        only driver-level statements). Whatever fails, commit included, rolls back; a kept
        connection that cannot even roll back is dropped, never reused mid-transaction.
        """
        raw: Any = conn.connection.driver_connection
        try:
            if begin is not None:
                raw.execute(begin)
            result = fn(conn)
            conn.commit()
            if raw.in_transaction:
                raw.commit()
            return result
        except BaseException as exc:
            try:
                conn.rollback()
                if raw.in_transaction:
                    raw.rollback()
            except Exception:
                if kept:
                    self._drop(conn)
            else:
                if kept and isinstance(exc, CorruptCheckpointError):
                    # Seen in the conformance suite (about 1 run in 25 under load): the next
                    # read on a connection whose read hit damaged data saw the database as
                    # of that read. Damage is rare; a fresh connection costs little.
                    self._drop(conn)
            raise

    async def read(self, fn: Callable[[Connection], T], *, snapshot: bool = True) -> T:
        """Run ``fn`` after a deferred ``BEGIN``: a snapshot that never blocks writers."""
        return await self._hop(fn, "BEGIN" if snapshot else None)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` after ``BEGIN IMMEDIATE``: the write lock first, then the reads."""
        return await self._hop(fn, "BEGIN IMMEDIATE")

    async def dispose(self) -> None:
        """Stop the workers and close their connections (the last close checkpoints the WAL).

        A caller's engine (``owned=False``) gets its connections back and stays open.
        """
        await asyncio.to_thread(self._close)


def describe_pool(engine: Any) -> str | None:
    """The pool's limits as store options (``pool_size=10, ...``), for a timeout's message."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return None
    overflow = max(pool._max_overflow, 0)  # pyright: ignore[reportPrivateUsage]
    timeout: float = pool._timeout  # pyright: ignore[reportPrivateUsage]
    return f"pool_size={pool.size()}, max_overflow={overflow}, pool_timeout={timeout:g} s"


def _workers(engine: Engine) -> int:
    """As many workers as the pool can give each one a connection to keep."""
    pool = engine.pool
    if isinstance(pool, QueuePool):
        capacity = pool.size() + max(pool._max_overflow, 0)  # pyright: ignore[reportPrivateUsage]
        return max(1, min(_SQLITE_WORKERS, capacity))
    return _SQLITE_WORKERS


@dataclass(frozen=True, slots=True)
class _PostgresEngines:
    """One engine (pool) and the two option views every transaction picks from."""

    engine: AsyncEngine
    reader: AsyncEngine
    single: AsyncEngine
    gate: FairGate | None = None

    @classmethod
    def of(
        cls, engine: AsyncEngine, *, pooler: bool = False, gate: FairGate | None = None
    ) -> _PostgresEngines:
        """The views of ``engine``; behind a pooler, single statements run in a transaction.

        Outside a transaction asyncpg prepares a statement and runs it in two exchanges,
        which a pooler in transaction mode may send to two different server connections.
        """
        reader = engine.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        single = engine if pooler else engine.execution_options(isolation_level="AUTOCOMMIT")
        return cls(engine, reader, single, gate)


async def _dispose(engines: _PostgresEngines) -> None:
    await engines.engine.dispose()


class PostgresRunner:
    """asyncpg engines, one per event loop; each transaction runs ``fn`` via ``run_sync``.

    asyncpg connections belong to the loop that opened them (another loop's use fails, and
    from another thread can crash the interpreter), so the runner opens one engine (pool)
    per event loop from the same URL and options, and disposes each on its own loop
    (:mod:`.._loops`). ``pool_size`` therefore counts per loop. An engine the caller passed
    in is used on the first loop the store runs on only; from another loop the store raises
    :class:`~agent_persist.errors.EventLoopMismatchError`.
    """

    backend: Backend = "postgresql"

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        owned: bool,
        make: Callable[[], AsyncEngine] | None = None,
        pooler: bool = False,
        gate: Callable[[], FairGate] | None = None,
    ) -> None:
        first = _PostgresEngines.of(engine, pooler=pooler, gate=gate() if gate else None)
        self._engines: LoopBound[_PostgresEngines]
        if owned and make is not None:
            self._engines = PerLoop(
                lambda: _PostgresEngines.of(make(), pooler=pooler, gate=gate() if gate else None),
                _dispose,
                first=first,
            )
        else:
            self._engines = Pinned(first, what=f"the AsyncEngine for {mask(engine.url)}")
        self._first = engine
        self._owned = owned
        self.label = mask(engine.url)

    @property
    def engine(self) -> AsyncEngine:
        """The running event loop's engine; outside a loop, the one the store was built with."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._first
        return self._engines.get().engine

    async def read(self, fn: Callable[[Connection], T], *, snapshot: bool = True) -> T:
        """Run ``fn`` in a REPEATABLE READ, READ ONLY transaction (or none for one statement)."""
        engines = self._engines.get()
        async with (
            engines.gate or contextlib.nullcontext(),
            (engines.reader if snapshot else engines.single).connect() as conn,
        ):
            return await conn.run_sync(fn)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a READ COMMITTED transaction; row locks order the writers."""
        engines = self._engines.get()
        # Not engine.begin(): an async generator, which a loop that Runner.run_sync keeps
        # between calls (after shutdown_asyncgens) warns about on every later run.
        async with (
            engines.gate or contextlib.nullcontext(),
            engines.engine.connect() as conn,
            conn.begin(),
        ):
            return await conn.run_sync(fn)

    async def fetch_one(
        self, statement: str, arguments: Callable[[], Sequence[Any]]
    ) -> Sequence[Any]:
        """Send one write statement (atomic by itself) and return the one row it answers.

        In autocommit, straight on the pooled connection's asyncpg connection: no ``BEGIN``
        and ``COMMIT`` round trips, and none of SQLAlchemy's execution machinery (nor its
        ``echo`` and cursor events). ``arguments`` is called once a connection is at hand,
        so a time among them is taken after any wait for one. A failure other than the
        server refusing the statement leaves the connection in an unknown state: it is
        discarded (:func:`_discard`). Behind a pooler in transaction mode, in a transaction
        all the same (see :meth:`_PostgresEngines.of`).
        """
        engines = self._engines.get()
        if engines.single is engines.engine:  # behind a pooler
            return await self.write(
                lambda conn: conn.exec_driver_sql(statement, tuple(arguments())).one()
            )
        async with engines.gate or contextlib.nullcontext():
            pooled = await engines.single.raw_connection()
            try:
                driver: Any = pooled.driver_connection
                try:
                    row: Sequence[Any] = await driver.fetchrow(statement, *arguments())
                except BaseException as exc:
                    if driver.is_closed() or not _server_refused(exc):
                        lost = driver.is_closed() or _connection_lost(exc)
                        await _discard(engines.engine, pooled, exc, lost=lost)
                    raise
            finally:
                pooled.close()
            return row

    async def warm(
        self,
        fn: Callable[[Connection], object],
        statement: Callable[[], tuple[str, Sequence[Any]]] | None = None,
    ) -> None:
        """Open the running loop's pool to its size, running ``fn`` on each connection.

        Each ``fn`` runs in a transaction that is then rolled back (see :mod:`._warm`),
        followed in it by the statement ``statement`` makes (SQL and arguments, for each
        connection its own) sent as :meth:`fetch_one` sends it, on the driver, so the
        driver's prepared statement is cached too.
        The checkouts start together, so the pool opens a connection for each; one that
        finishes first may hand its connection on, which then runs ``fn`` twice (harmless).
        A pool the caller passed in is left as it is: it may serve others. Warming only
        saves time later, so a failure (a deadlock with a worker still creating the
        tables, the server out of connections) is logged and setup goes on: the calls
        that follow meet any lasting fault themselves.
        """
        if not self._owned:
            return
        engines = self._engines.get()
        pool = engines.engine.pool
        size = pool.size() if isinstance(pool, QueuePool) else 1

        async def one() -> None:
            async with engines.gate or contextlib.nullcontext(), engines.engine.connect() as conn:
                transaction = await conn.begin()
                try:
                    await conn.run_sync(fn)
                    if statement is not None:
                        driver: Any = (await conn.get_raw_connection()).driver_connection
                        sql, arguments = statement()
                        await driver.fetchrow(sql, *arguments)
                finally:
                    await transaction.rollback()

        results = await asyncio.gather(*(one() for _ in range(size)), return_exceptions=True)
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            logger.warning("%s: warming the pool failed, going on: %s", self.label, failed[0])
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result  # a cancellation is not a failure to warm

    async def dispose(self) -> None:
        """Close every loop's pool if this runner created them (another loop's on that loop)."""
        await self._engines.close()


def _require(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError("PostgreSQL store", "postgres", module) from exc


def _sqlite_engine(url: sa.URL, options: EngineOptions) -> Engine:
    memory = url.database in (None, "", ":memory:")
    pool: dict[str, Any] = {"poolclass": StaticPool} if memory else {}
    if not memory:
        pool["pool_timeout"] = options.pool_timeout
    if not memory and options.pool_size is not None:
        pool["pool_size"] = options.pool_size
    if not memory and options.max_overflow is not None:
        pool["max_overflow"] = options.max_overflow
    return sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": options.busy_timeout},
        **pool,
    )


def _postgres_engine(url: sa.URL, options: EngineOptions) -> AsyncEngine:
    _require("asyncpg")
    _require("greenlet")
    from sqlalchemy.ext.asyncio import create_async_engine

    connect_url, connect_args = asyncpg_arguments(url, timeout=options.connect_timeout)
    engine = create_async_engine(
        connect_url,
        connect_args=connect_args,
        pool_size=POSTGRES_POOL_SIZE if options.pool_size is None else options.pool_size,
        max_overflow=0 if options.max_overflow is None else options.max_overflow,
        pool_timeout=options.pool_timeout,
        pool_recycle=POOL_RECYCLE,
    )
    _report_connect_failures(engine)
    return engine


def _fair_gate(options: EngineOptions) -> FairGate:
    """Transactions wait for the pool in arrival order (see :mod:`.._gate`)."""
    size = POSTGRES_POOL_SIZE if options.pool_size is None else options.pool_size
    overflow = 0 if options.max_overflow is None else options.max_overflow
    timeout = options.pool_timeout

    def timed_out() -> Exception:
        return sa_exc.TimeoutError(f"no pooled connection came free within {timeout:g} s")

    return FairGate(size + overflow, timeout=timeout, timed_out=timed_out)


def open_runner(url: str | sa.URL, options: EngineOptions) -> Runner:
    """Create the engine a URL names, and the runner that owns (and later disposes) it."""
    backend, parsed = parse_url(url)
    if backend == "sqlite":
        engine = _sqlite_engine(parsed, options)
        return SQLiteRunner(engine, owned=True, busy_timeout=options.busy_timeout)
    return PostgresRunner(
        _postgres_engine(parsed, options),
        owned=True,
        make=lambda: _postgres_engine(parsed, options),
        pooler=behind_pooler(parsed),
        gate=lambda: _fair_gate(options),
    )


def wrap_engine(engine: Any, options: EngineOptions) -> Runner:
    """A runner over an engine the caller made and keeps owning (it is never disposed here).

    Raises:
        InvalidStoreURLError: Neither a sync SQLite engine nor an async asyncpg engine.
    """
    if isinstance(engine, Engine) and engine.dialect.name == "sqlite":
        if engine.dialect.driver != "pysqlite":
            raise InvalidStoreURLError(
                f"{mask(engine.url)}: the SQLite store drives the standard sqlite3 module"
            )
        if engine.url.database in (None, "", ":memory:") and not isinstance(
            engine.pool, StaticPool
        ):
            raise InvalidStoreURLError(
                "an in-memory SQLite engine needs poolclass=StaticPool: each pooled "
                "connection would otherwise open its own empty database"
            )
        return SQLiteRunner(engine, owned=False, busy_timeout=options.busy_timeout)
    try:
        from sqlalchemy.ext.asyncio import AsyncEngine
    except ImportError:  # no greenlet: then no AsyncEngine can exist either
        AsyncEngine = None
    if AsyncEngine is not None and isinstance(engine, AsyncEngine):
        if engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg":
            return PostgresRunner(engine, owned=False, pooler=behind_pooler(engine.url))
        raise InvalidStoreURLError(
            f"{mask(engine.url)}: the PostgreSQL store needs a postgresql+asyncpg async engine"
        )
    raise InvalidStoreURLError(
        f"the SQL store takes a URL, a sync SQLite Engine or an asyncpg AsyncEngine, "
        f"not {type(engine).__name__}"
    )
