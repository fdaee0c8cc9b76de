"""The SQL store: SQLite embedded (no extra needed) or PostgreSQL (``agent-persist[postgres]``).

    from agent_persist.stores.sql import SQLStore

    async with SQLStore.from_url("sqlite:///agents.db") as store:
        saved = await store.put(envelope, appends={"transcript": [message]})

:class:`SQLStore` is this package's public name (with :class:`AuditBackfill`, what its
``backfill_audit`` returns); its modules are internal
(``_``-prefixed, as pydantic-ai names its durable-execution back ends' modules) and may
change in any release. One concern each, the same file names as the Redis store's where
the concern is the same:

* ``_store.py``: the facade; each method runs one function below in one transaction
* ``_checkpoints.py``, ``_logs.py``, ``_leases.py``, ``_retention.py``: the operations
* ``_audit.py``: the audit projection (audit log items mirrored into the audit tables)
* ``_threads.py``: finding, claiming (locking) and purging a thread's row
* ``_statements.py``: the prebuilt statements, and the :class:`~._statements.Scope` binding them
  to one store's namespace, TTL and codec
* ``_schema.py``: the tables, their append-only ``DDL_STEPS`` and ``migrate``
* ``_engine.py``: the runners (one sync function, one transaction) and ``_url.py``, PostgreSQL
  URL parameters; ``_errors.py``: the drivers' errors as agent-persist's
"""

from __future__ import annotations

from ._store import AuditBackfill, SQLStore

__all__ = ["AuditBackfill", "SQLStore"]
