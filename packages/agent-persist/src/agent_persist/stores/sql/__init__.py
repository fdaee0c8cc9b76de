"""The SQL store: SQLite embedded (no extra needed) or PostgreSQL (``agent-persist[postgres]``).

    from agent_persist.stores.sql import SQLStore

    async with SQLStore.from_url("sqlite:///agents.db") as store:
        saved = await store.put(envelope, appends={"transcript": [message]})

:class:`SQLStore` is this package's only public name; its modules are internal (no ``_``
prefix: the package is the boundary) and may change in any release. One concern each, the
same file names as the Redis store's where the concern is the same:

* ``store.py``: the facade; each method runs one function below in one transaction
* ``checkpoints.py``, ``logs.py``, ``leases.py``, ``retention.py``: the operations
* ``threads.py``: finding, claiming (locking) and purging a thread's row
* ``statements.py``: the prebuilt statements, and the :class:`~.statements.Scope` binding them
  to one store's namespace, TTL and codec
* ``schema.py``: the tables, their append-only ``DDL_STEPS`` and ``migrate``
* ``engine.py``: the runners (one sync function, one transaction) and ``url.py``, PostgreSQL
  URL parameters; ``errors.py``: the drivers' errors as agent-persist's
"""

from __future__ import annotations

from .store import SQLStore

__all__ = ["SQLStore"]
