"""The SQL store's one translation of driver errors, on the drivers' own exception types.

The fault tests reach these through real broken connections; this table pins the rest (a
server shutting down, a pool timeout, a damaged file) and what must *not* be called
unavailable (a constraint, a wrong argument), which would otherwise be retried in vain.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from agent_persist.errors import (
    AgentPersistError,
    CorruptCheckpointError,
    StoreUnavailableError,
)
from agent_persist.stores.sql._errors import translate_error

LABEL = "postgresql+asyncpg://app:***@db/agents"


def wrapped(
    orig: BaseException, kind: type[sa_exc.DBAPIError] = sa_exc.DBAPIError
) -> BaseException:
    """``orig`` as SQLAlchemy raises it: wrapped, with the original as cause."""
    error = kind("SELECT 1", None, orig)  # pyright: ignore[reportArgumentType]
    error.__cause__ = orig
    return error


def asyncpg_errors() -> list[tuple[BaseException, type[AgentPersistError] | None]]:
    asyncpg = pytest.importorskip("asyncpg")
    return [
        (
            asyncpg.ConnectionDoesNotExistError("connection was closed in the middle"),
            StoreUnavailableError,
        ),
        (
            asyncpg.AdminShutdownError("terminating connection due to administrator command"),
            StoreUnavailableError,
        ),
        (
            asyncpg.CannotConnectNowError("the database system is starting up"),
            StoreUnavailableError,
        ),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), StoreUnavailableError),
        (
            asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
            StoreUnavailableError,
        ),
        (asyncpg.UniqueViolationError("duplicate key value"), None),
        (
            asyncpg.InterfaceError("the server expects 2 arguments for this query, 1 was passed"),
            None,
        ),
    ]


@pytest.mark.needs_extras
def test_asyncpg_errors_bare_and_wrapped() -> None:
    for error, expected in asyncpg_errors():
        for raised in (error, wrapped(error), wrapped(error, sa_exc.InternalError)):
            found = translate_error(raised, label=LABEL)
            assert (type(found) if found else None) is expected, (raised, found)
            if found is not None:
                assert LABEL in str(found)
                assert "\n" not in str(found)  # one line, no SQL


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sqlite3.OperationalError("database is locked"), StoreUnavailableError),
        (sqlite3.OperationalError("database table is locked"), StoreUnavailableError),
        (sqlite3.OperationalError("unable to open database file"), StoreUnavailableError),
        (sqlite3.OperationalError("no such table: agent_persist_threads"), StoreUnavailableError),
        (sqlite3.DatabaseError("file is not a database"), CorruptCheckpointError),
        (sqlite3.DatabaseError("database disk image is malformed"), CorruptCheckpointError),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), None),
        (ConnectionResetError("reset by peer"), StoreUnavailableError),
        (OSError("network is unreachable"), StoreUnavailableError),
        (asyncio.TimeoutError(), StoreUnavailableError),
        (sa_exc.TimeoutError("QueuePool limit reached"), StoreUnavailableError),
        (ValueError("a bug"), None),
    ],
)
def test_sqlite_and_socket_errors(error: BaseException, expected: type | None) -> None:
    for raised in (error, wrapped(error, sa_exc.OperationalError)):
        found = translate_error(raised, label="sqlite+pysqlite:///a.db", busy_timeout=0.5)
        assert (type(found) if found else None) is expected, (raised, found)


def test_a_locked_database_names_the_busy_timeout() -> None:
    found = translate_error(
        sqlite3.OperationalError("database is locked"), label="sqlite:///a.db", busy_timeout=0.5
    )
    assert isinstance(found, StoreUnavailableError)
    assert "busy_timeout (0.5 s)" in str(found)
