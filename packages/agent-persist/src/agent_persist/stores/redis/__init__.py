"""The Redis store (``agent-persist[redis]``): checkpoints, logs and leases in one Redis database.

    from agent_persist.stores.redis import RedisStore

    async with RedisStore.from_url("redis://localhost:6379/0", namespace="tenant-a") as store:
        saved = await store.put(envelope, appends={"transcript": [message]})
    RedisStore.from_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")   # a Redis Cluster

:class:`RedisStore` is this package's only public name; its modules are internal
(``_``-prefixed, as pydantic-ai names its durable-execution back ends' modules) and may
change in any release. One concern each, the same file names as the SQL store's where
the concern is the same:

* ``_store.py``: the facade; each method runs one script and decodes its reply
* ``_checkpoints.py``, ``_logs.py``, ``_leases.py``, ``_retention.py``: each concern's Lua
  scripts and the decoding of their replies
* ``_schema.py``: the key layout's append-only ``LAYOUT_STEPS`` and the upgrade in ``setup()``
* ``_keys.py``: the key names (ids hex-encoded) and how values cross into Redis
* ``_lua.py``: the Lua helpers every script starts with; ``_scripts.py``: the scripts
  registered on a client
* ``_client.py``: URLs and the client (one server's, or a cluster's); ``_errors.py``:
  redis-py's errors as agent-persist's

Importing it without ``redis`` installed raises ``MissingDependencyError`` naming the
command: ``pip install "agent-persist[redis]"``.
"""

from __future__ import annotations

from ...errors import MissingDependencyError

try:  # checked here, before any module below imports it
    import redis.asyncio  # noqa: F401  # pyright: ignore[reportUnusedImport]
except ImportError as exc:  # pragma: no cover - exercised by a test that hides redis
    raise MissingDependencyError("Redis store", "redis", "redis") from exc

from ._store import RedisStore

__all__ = ["RedisStore"]
