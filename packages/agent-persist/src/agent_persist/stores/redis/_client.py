"""Connecting the Redis store: URLs checked before any I/O, and the client they open.

    client, shown = open_client("redis://:secret@cache:6379/0")
    shown   # 'redis://:***@cache:6379/0', safe to put in logs and error messages

Imported only through :mod:`agent_persist.stores.redis`, which checks first that ``redis``
is installed.
"""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ...errors import InvalidStoreURLError
from .._gate import FairGate

__all__ = [
    "POOL_SIZE",
    "POOL_TIMEOUT",
    "SCHEMES",
    "describe_client",
    "describe_pool",
    "mask_url",
    "open_client",
]

SCHEMES = ("redis", "rediss", "unix")
"""The URL schemes redis-py understands, and so the only ones the store accepts."""

_MASK = "***"

POOL_SIZE = 16
"""Connections one client opens at most per event loop by default: Redis runs commands one
at a time, so more connections only lengthen the queue at the server (at 4 processes of 32
conversations, a pool of 32 had p99 5-7x p50 where 8 or 16 had 2x), and 600 processes stay
within Redis's default ``maxclients`` of 10,000."""
POOL_TIMEOUT = 30.0
"""Seconds a command waits for a free connection before ``StoreUnavailableError``."""


def mask_url(url: str) -> str:
    """``url`` with its password (in the authority or the query string) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        name = user.partition(":")[0]
        netloc = f"{name}:{_MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, _MASK if k == "password" else v) for k, v in pairs], safe="*")
    if "://" not in url:  # not a URL redis-py reads; hide anything that may be a credential
        return f"{_MASK}@{url.rpartition('@')[2]}" if "@" in url else url
    tail = (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"


class _FairPool(aioredis.BlockingConnectionPool):
    """redis-py's blocking pool behind a :class:`.._gate.FairGate`: waiters served in order."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # pyright: ignore[reportUnknownMemberType]
        self._gate = FairGate(
            self.max_connections,
            timeout=self.timeout,
            timed_out=lambda: redis_errors.ConnectionError("No connection available."),
        )
        self._handed: set[Any] = set()

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:  # pyright: ignore[reportIncompatibleMethodOverride]
        await self._gate.acquire()
        try:
            connection = await super().get_connection(*args, **kwargs)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        except BaseException:
            self._gate.release()
            raise
        self._handed.add(connection)
        return connection  # pyright: ignore[reportUnknownVariableType]

    async def release(self, connection: Any) -> None:
        await super().release(connection)
        if connection in self._handed:  # not one the pool dropped while handing it out
            self._handed.discard(connection)
            self._gate.release()


def open_client(
    url: str, *, pool_size: int = POOL_SIZE, pool_timeout: float = POOL_TIMEOUT
) -> tuple[aioredis.Redis, str]:
    """A client for ``url`` (bytes in, bytes out) and the URL as it may be shown.

    The client does not retry a command after a dropped connection: the server may already
    have run it, and running a put, append or pop twice is worse than an error the caller
    can act on (``StoreUnavailableError``).

    Its pool blocks: it opens at most ``pool_size`` connections, and a command that finds
    them all busy waits up to ``pool_timeout`` seconds for one, in the order they came
    (redis-py's default pool raises ``Too many connections`` at once instead).

    Everything that can be checked without the server is checked here, before any I/O: the
    scheme, the port (1-65535), the database number (a path or ``?db=`` that is not a
    number), and each query parameter, which must be one redis-py's connection takes
    (``socket_timeout``, ``ssl_cert_reqs``, ...) with a value it can parse. A database
    number the server does not have (``/99`` with ``databases 16``) shows at the first
    operation as ``StoreUnavailableError`` (see :func:`.errors.translate_error`).

    Raises:
        InvalidStoreURLError: any of the above is wrong; the message names it.
    """
    shown = mask_url(url)
    problem = _url_problem(url)
    if problem:
        raise InvalidStoreURLError(f"{shown!r} is not a valid Redis URL: {problem}")
    try:
        pool = _FairPool.from_url(  # pyright: ignore[reportUnknownMemberType]
            url,
            max_connections=pool_size,
            timeout=pool_timeout,
            decode_responses=False,
            retry=Retry(NoBackoff(), 0),
        )
        client = aioredis.Redis.from_pool(pool)
    except ValueError as exc:
        raise InvalidStoreURLError(f"{shown!r} is not a valid Redis URL: {exc}") from exc
    unknown = _unknown_parameters(client)
    if unknown:
        raise InvalidStoreURLError(
            f"{shown!r} is not a valid Redis URL: unknown parameter {unknown[0]!r} (redis-py "
            "takes the keyword arguments of its connection class, e.g. socket_timeout)"
        )
    return client, shown


def _url_problem(url: str) -> str | None:
    """What is wrong with ``url``, for the cases redis-py would silently accept."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        return "use redis://, rediss:// or unix://"
    pool_options = {"max_connections", "timeout"} & {k for k, _ in parse_qsl(parts.query)}
    if pool_options:
        name = sorted(pool_options)[0]
        return f"{name!r} is a pool setting: open the store with pool_size= and pool_timeout="
    if parts.scheme == "unix":
        return None if parts.path else "a unix:// URL needs the socket's path"
    try:
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if port == 0:  # redis-py would silently connect to 6379 instead
        return "port 0 is not in 1-65535"
    database = parts.path.strip("/")
    if database and not database.isdigit():
        return f"the path must be a database number, got {parts.path!r}"
    return None


def _unknown_parameters(client: aioredis.Redis) -> list[str]:
    """URL parameters no connection would accept (redis-py would fail on first use).

    redis-py passes each query parameter it does not know to the connection class as a
    keyword; the class's ``__init__`` chain (through ``**kwargs`` forwarding) says which
    names it takes.
    """
    pool = client.connection_pool
    accepted: set[str] = set()
    for cls in pool.connection_class.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        accepted.update(p.name for p in parameters if p.kind is not p.VAR_KEYWORD)
        if all(p.kind is not p.VAR_KEYWORD for p in parameters):
            break
    options: dict[str, Any] = pool.connection_kwargs
    return sorted(set(options) - accepted)


def describe_pool(client: aioredis.Redis) -> str | None:
    """A blocking pool's limits as store options, for the message of a pool timeout."""
    pool = client.connection_pool
    if not isinstance(pool, aioredis.BlockingConnectionPool):
        return f"max_connections={pool.max_connections}, a pool that does not wait"
    timeout = "none" if pool.timeout is None else f"{pool.timeout:g} s"
    return f"pool_size={pool.max_connections}, pool_timeout={timeout}"


def describe_client(client: aioredis.Redis) -> str:
    """A URL-like name for a client the caller built, for error messages (no password).

    Raises:
        ValueError: the client decodes responses to ``str``; the store reads bytes
            (sealed payloads are binary), so it needs ``decode_responses=False``.
    """
    options: dict[str, Any] = client.connection_pool.connection_kwargs
    if options.get("decode_responses"):
        raise ValueError(
            "the Redis store needs a client built with decode_responses=False: it stores "
            "binary payloads"
        )
    if "path" in options:
        return f"unix://{options['path']}?db={options.get('db', 0)}"
    host, port = options.get("host", "localhost"), options.get("port", 6379)
    return f"redis://{host}:{port}/{options.get('db', 0)}"
