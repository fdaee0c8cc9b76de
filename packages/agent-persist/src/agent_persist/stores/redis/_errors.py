"""What a redis-py exception means for the Redis store: the one translation of its errors.

    error = translate_error(exc, "redis://:***@cache:6379/0")   # or None: not a known fault

:meth:`RedisStore._translate_error` calls this for anything an operation raises that is not
already an agent-persist error; ``None`` is reported by the base class as a plain
``StoreError`` with the driver's exception as its cause.
"""

from __future__ import annotations

import asyncio

from redis import exceptions as redis_errors

from ...errors import AgentPersistError, CorruptCheckpointError, StoreUnavailableError

__all__ = ["translate_error"]


_POOL_EMPTY = ("No connection available.", "Too many connections")
"""The words for a pool with no free connection: our gate's after ``pool_timeout`` (as
redis-py's blocking pool says it), redis-py's default pool's at once (a caller's client)."""


def translate_error(
    exc: Exception, shown: str, pool: str | None = None
) -> AgentPersistError | None:
    """The agent-persist error for a redis-py error, or ``None`` if there is none.

    Every connection of the pool busy past its timeout (``pool`` names its limits) is
    ``StoreUnavailableError`` too, saying what to change.

    A lost or refused connection, a timeout (redis-py's or the socket's), a refused login,
    a server still loading its data, a read-only replica and a server out of memory mean
    the server is unavailable: the client reconnects on the next call. So does a database
    number the server does not have (``redis://host/99`` on a server with 16 databases
    answers ``ERR DB index is out of range`` when the connection selects it): the URL is
    well formed and the database is simply not there, as with a PostgreSQL database that
    does not exist, so it is ``StoreUnavailableError`` too, not ``InvalidStoreURLError``.
    ``WRONGTYPE`` means something other than this store wrote one of its keys.
    """
    if isinstance(exc, redis_errors.ConnectionError) and str(exc) in _POOL_EMPTY:
        limits = f" ({pool})" if pool else ""
        return StoreUnavailableError(
            f"Redis at {shown} is unavailable: no pooled connection came free in "
            f"time{limits}; open the store with a larger pool_size or a longer "
            "pool_timeout, or run fewer operations at once"
        )
    if isinstance(
        exc,
        redis_errors.ConnectionError
        | redis_errors.TimeoutError
        | redis_errors.ReadOnlyError
        | OSError
        | asyncio.TimeoutError,
    ):
        return StoreUnavailableError(f"Redis at {shown} is unavailable: {_one_line(exc)}")
    if isinstance(exc, redis_errors.ResponseError) and str(exc).startswith("OOM"):
        return StoreUnavailableError(f"Redis at {shown} is out of memory: {_one_line(exc)}")
    if isinstance(exc, redis_errors.ResponseError) and "DB index" in str(exc):
        return StoreUnavailableError(
            f"Redis at {shown} is unavailable: the server has no database of that number "
            f"({_one_line(exc)}; its 'databases' setting caps them)"
        )
    if isinstance(exc, redis_errors.AuthenticationWrongNumberOfArgsError):
        return StoreUnavailableError(
            f"Redis at {shown} is unavailable: the server refuses the login ({_one_line(exc)})"
        )
    if isinstance(exc, redis_errors.ResponseError) and "WRONGTYPE" in str(exc):
        return CorruptCheckpointError(
            f"Redis at {shown}: a key of the store holds a value of another type ({exc}); "
            "something else wrote under the store's prefix"
        )
    return None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
