"""What a driver's exception means for the SQL store: the one translation of its errors.

    error = translate_error(exc, label="sqlite+pysqlite:///agents.db", busy_timeout=30.0)

:meth:`SQLStore._translate_error` calls this for anything a back-end operation raises that
is not already an agent-persist error, whichever layer it comes from: SQLAlchemy's wrappers
(``DBAPIError`` and its ``OperationalError``, ``InterfaceError``, ``InternalError``), the
drivers' own exceptions that escape them (``sqlite3`` at the runner's driver-level ``BEGIN``
and ``COMMIT``, asyncpg's ``ConnectionDoesNotExistError`` or ``InterfaceError``), and the
socket's (``OSError``, ``TimeoutError``). The answer:

* :class:`StoreUnavailableError` for a connection refused, lost or timed out, a server
  shutting down or full, a SQLite database locked by another connection past the busy
  timeout, and tables that do not exist (a store opened with ``auto_setup=False`` that
  nobody set up, a schema dropped under it). The store stays usable: SQLAlchemy discards
  a connection it saw fail, so the next call opens a new one.
* :class:`CorruptCheckpointError` for a SQLite file that is not a database or is malformed:
  the stored data cannot be read back, and retrying will not help.
* ``None`` for the rest (a bug, a constraint the store did not expect), which the base class
  reports as a plain :class:`StoreError` with the driver's exception as its cause.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

from ...errors import AgentPersistError, CorruptCheckpointError, StoreUnavailableError

__all__ = ["translate_error"]

_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
_SQLITE_UNREACHABLE = ("unable to open database file", "disk i/o error", "readonly database")
_SQLITE_DAMAGED = ("file is not a database", "database disk image is malformed")
_MISSING_TABLES = ("42P01", "3F000")
"""PostgreSQL's undefined table and invalid schema name: the store's tables are not there."""

_POSTGRES_UNAVAILABLE_STATES = ("08", "28", "3D000", "57P01", "57P02", "57P03", "53300", "53000")
"""SQLSTATEs of a server that is gone or refusing: connection exceptions (class 08), a role or
password refused (28), no such database, admin or crash shutdown, cannot connect now, too
many connections, insufficient resources."""

_CONNECTION_WORDS = (
    "connection is closed",
    "connection was closed",
    "connection has been released",
    "another operation is in progress",
    "cannot perform operation",
    "unexpected connection_lost",
    "connection reset",
    "server closed the connection",
)
"""asyncpg's messages for a connection that broke mid-call (some come as ``InternalError``)."""


def translate_error(
    exc: BaseException, *, label: str, busy_timeout: float | None = None, pool: str | None = None
) -> AgentPersistError | None:
    """The agent-persist error for ``exc`` raised by a SQL store at ``label``, or ``None``.

    Args:
        exc: What the back-end operation raised.
        label: The database as it may be shown (password masked).
        busy_timeout: SQLite's busy timeout in seconds, to name in a "locked" message.
        pool: The pool's limits (``pool_size=4, max_overflow=0, pool_timeout=30 s``), to name
            when no pooled connection came free in time.
    """
    for cause in _causes(exc):
        found = _classify(cause, label=label, busy_timeout=busy_timeout, pool=pool)
        if found is not None:
            return found
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return _unavailable(label, exc)
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: SQLAlchemy's ``orig``, then each ``__cause__``.

    Only explicit causes are followed (the wrappers all chain with ``raise ... from``): an
    error merely raised while another was being handled says nothing about the connection.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException) and id(orig) not in seen:
            current = orig
        else:
            current = current.__cause__


def _classify(
    exc: BaseException, *, label: str, busy_timeout: float | None, pool: str | None
) -> AgentPersistError | None:
    if isinstance(exc, sqlite3.Error):
        return _sqlite(exc, label=label, busy_timeout=busy_timeout)
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return _pool_timeout(label, exc, pool)
    if isinstance(exc, OSError | asyncio.TimeoutError | EOFError):
        return _unavailable(label, exc)
    if type(exc).__module__.startswith(("asyncpg", "sqlalchemy.dialects.postgresql")):
        return _asyncpg(exc, label=label)  # or SQLAlchemy's adapter of its errors
    return None


def _sqlite(
    exc: sqlite3.Error, *, label: str, busy_timeout: float | None
) -> AgentPersistError | None:
    message = str(exc).lower()
    if any(word in message for word in _SQLITE_BUSY):
        waited = f" for busy_timeout ({busy_timeout:g} s)" if busy_timeout is not None else ""
        return StoreUnavailableError(
            f"{label} is locked: another connection held its write lock{waited}; retry "
            f"later, or open the store with a longer busy_timeout ({exc})"
        )
    if "no such table" in message:
        return _not_set_up(label, exc)
    if any(word in message for word in _SQLITE_UNREACHABLE):
        return StoreUnavailableError(f"{label} is unavailable: {exc}")
    if any(word in message for word in _SQLITE_DAMAGED):
        return CorruptCheckpointError(
            f"{label} cannot be read: {exc}; the file is not an agent-persist SQLite "
            "database or it is damaged (restore it from a backup)"
        )
    return None


def _asyncpg(exc: BaseException, *, label: str) -> AgentPersistError | None:
    state = str(getattr(exc, "sqlstate", "") or "")
    if state and state.startswith(_POSTGRES_UNAVAILABLE_STATES):
        return _unavailable(label, exc)
    if state in _MISSING_TABLES:
        return _not_set_up(label, exc)
    message = str(exc).lower()
    if type(exc).__name__ == "ConnectionDoesNotExistError" or any(
        word in message for word in _CONNECTION_WORDS
    ):
        return _unavailable(label, exc)
    return None


def _pool_timeout(label: str, exc: sa_exc.TimeoutError, pool: str | None) -> AgentPersistError:
    """Every pooled connection stayed busy past ``pool_timeout``: too much at once."""
    limits = pool or _first_line(exc).partition(" (Background")[0]
    return StoreUnavailableError(
        f"{label} is unavailable: no pooled connection came free in time ({limits}); "
        "open the store with a larger pool_size (within the server's max_connections) or "
        "a longer pool_timeout, or run fewer operations at once"
    )


def _not_set_up(label: str, exc: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(
        f"{label} is unavailable: its tables do not exist ({_first_line(exc)}); run setup(), "
        "or open the store with auto_setup=True"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _unavailable(label: str, exc: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(
        f"{label} is unavailable: {type(exc).__name__}: {_first_line(exc)}"
    )
