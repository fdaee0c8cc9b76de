"""The stores, opened by URL.

    async with open_store("sqlite:///agents.db") as store:      # the embedded default
        ...
    open_store("postgresql://user@host/db", namespace="tenant-1")  # extra: postgres
    open_store("redis://localhost:6379/0", ttl=timedelta(days=7))  # extra: redis
    open_store("memory://")                                         # tests

``open_store`` does no I/O; the store sets itself up (creating or upgrading its schema) on
first use or on ``async with``.

The layout: ``base.py`` holds the protocol and :class:`BaseStore`, which validates
arguments and translates errors once for every store; ``memory.py`` is the reference store;
the ``_``-prefixed modules are shared internals (argument checks, record encoding, event
loop helpers). Each other back end is a package whose only public name is its store,
``sql`` (:class:`~agent_persist.stores.sql.SQLStore`, SQLite and PostgreSQL) and ``redis``
(:class:`~agent_persist.stores.redis.RedisStore`); inside both, the same file names hold the
same concerns, each ``_``-prefixed because it is internal (``_store``, the facade;
``_checkpoints``, ``_logs``, ``_leases``, ``_retention``; ``_schema``, the versioned tables or
key layout with their upgrade steps; ``_errors``, the driver's errors translated).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias, TypeVar
from urllib.parse import urlsplit

from ..errors import InvalidStoreURLError
from .base import BaseStore, CheckpointStore, Lease, ThreadInfo
from .memory import MemoryStore

__all__ = [
    "BaseStore",
    "CheckpointStore",
    "Lease",
    "MemoryStore",
    "StoreOrURL",
    "ThreadInfo",
    "open_store",
    "opened_store",
]

StoreOrURL: TypeAlias = "CheckpointStore | str"
"""What a ``store=`` argument takes: a store the caller owns, or the URL of one."""
_Store = TypeVar("_Store", bound=CheckpointStore)

DEFAULT_URL = "sqlite:///agent_persist.db"
"""Where state goes when nothing else is said: a SQLite file in the working directory."""

_SQL_SCHEMES = ("sqlite", "postgresql", "postgres")
_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
_memory_spaces: dict[str, dict[str, Any]] = {}
_DATA_ONLY_OPTIONS = frozenset({"namespace", "ttl", "keep_last", "codec", "encryption"})
"""Options of the data store a default key store does not take (keys never expire)."""


def open_store(url: str = DEFAULT_URL, **options: Any) -> BaseStore:
    """Build the store a URL names; ``options`` go to its constructor (namespace, ttl, ...).

    ``memory://NAME`` stores with the same NAME share their data within the process.
    With ``encryption=`` (:class:`agent_persist.crypto.Encryption`) and no key store named,
    the data keys live on the same back end under namespace ``<namespace>.keys``.
    """
    scheme = urlsplit(url).scheme.lower()
    base_scheme = scheme.split("+", 1)[0]
    encryption = options.get("encryption")
    if encryption is not None and getattr(encryption, "key_store", None) is None:
        # The default key store: the same back end, under a namespace of its own.
        shared = {k: v for k, v in options.items() if k not in _DATA_ONLY_OPTIONS}
        options["encryption"] = encryption.with_default_key_store(
            url, options.get("namespace", "default"), shared
        )
    if base_scheme == "memory":
        name = url.split("://", 1)[1] if "://" in url else ""
        shared = _memory_spaces.setdefault(name, {}) if name else None
        return MemoryStore(shared=shared, **options)
    if base_scheme in _SQL_SCHEMES:
        from .sql import SQLStore

        return SQLStore.from_url(url, **options)
    if base_scheme in _REDIS_SCHEMES:
        from .redis import RedisStore

        return RedisStore.from_url(url, **options)
    raise InvalidStoreURLError(
        f"no store for URL scheme {scheme!r} in {url.split('@')[-1]!r}; use memory://, "
        "sqlite:///path.db, postgresql://... or redis://..."
    )


@asynccontextmanager
async def opened_store(
    store: _Store | str, **options: Any
) -> AsyncGenerator[_Store | BaseStore, None]:
    """The store given, as is; or the store a URL names, set up here and closed on exit.

        async with opened_store(store_or_url) as store:   # what a `store=` argument means
            head = await store.get(thread_id)

    ``options`` go to :func:`open_store` when ``store`` is a URL.
    """
    if not isinstance(store, str):
        yield store
        return
    async with open_store(store, **options) as own:
        yield own
