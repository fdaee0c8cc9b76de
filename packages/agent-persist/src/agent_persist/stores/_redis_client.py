"""Connecting the Redis store: URLs, the client, and errors worth a clear message.

    client, shown = open_client("redis://:secret@cache:6379/0")
    shown   # 'redis://:***@cache:6379/0', safe to put in logs and error messages

Imported only by :mod:`agent_persist.stores.redis`, after it has checked that ``redis`` is
installed.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..errors import (
    AgentPersistError,
    CorruptCheckpointError,
    InvalidStoreURLError,
    StoreUnavailableError,
)

__all__ = ["SCHEMES", "describe_client", "mask_url", "open_client", "translate_error"]

SCHEMES = ("redis", "rediss", "unix")
"""The URL schemes redis-py understands, and so the only ones the store accepts."""

_MASK = "***"


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


def open_client(url: str) -> tuple[aioredis.Redis, str]:
    """A client for ``url`` (bytes in, bytes out) and the URL as it may be shown.

    The client does not retry a command after a dropped connection: the server may already
    have run it, and running a put, append or pop twice is worse than an error the caller
    can act on (``StoreUnavailableError``).

    Raises:
        InvalidStoreURLError: the scheme is not ``redis``, ``rediss`` or ``unix``, or
            redis-py cannot parse the rest.
    """
    shown = mask_url(url)
    problem = _url_problem(url)
    if problem:
        raise InvalidStoreURLError(f"{shown!r} is not a valid Redis URL: {problem}")
    try:
        client = aioredis.Redis.from_url(  # pyright: ignore[reportUnknownMemberType]
            url, decode_responses=False, retry=Retry(NoBackoff(), 0)
        )
    except ValueError as exc:
        raise InvalidStoreURLError(f"{shown!r} is not a valid Redis URL: {exc}") from exc
    return client, shown


def _url_problem(url: str) -> str | None:
    """What is wrong with ``url``, for the cases redis-py would silently accept."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        return "use redis://, rediss:// or unix://"
    if parts.scheme == "unix":
        return None if parts.path else "a unix:// URL needs the socket's path"
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        return str(exc)
    database = parts.path.strip("/")
    if database and not database.isdigit():
        return f"the path must be a database number, got {parts.path!r}"
    return None


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


def translate_error(exc: Exception, shown: str) -> AgentPersistError | None:
    """The agent-persist error for a redis-py error, or ``None`` if there is none.

    A lost or refused connection, a timeout (redis-py's or the socket's), a server still
    loading its data, a read-only replica and a server out of memory mean the server is
    unavailable: the client reconnects on the next call. ``WRONGTYPE`` means something
    other than this store wrote one of its keys.
    """
    if isinstance(
        exc,
        redis_errors.ConnectionError
        | redis_errors.TimeoutError
        | redis_errors.ReadOnlyError
        | OSError
        | asyncio.TimeoutError,
    ):
        return StoreUnavailableError(
            f"Redis at {shown} is unavailable: {type(exc).__name__}: {exc}"
        )
    if isinstance(exc, redis_errors.ResponseError) and str(exc).startswith("OOM"):
        return StoreUnavailableError(f"Redis at {shown} is out of memory: {exc}")
    if isinstance(exc, redis_errors.ResponseError) and "WRONGTYPE" in str(exc):
        return CorruptCheckpointError(
            f"Redis at {shown}: a key of the store holds a value of another type ({exc}); "
            "something else wrote under the store's prefix"
        )
    return None
