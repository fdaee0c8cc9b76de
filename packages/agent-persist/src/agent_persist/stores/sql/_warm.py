"""A PostgreSQL pool made ready at setup: its connections open, its hot statements run once.

    await runner.warm(lambda conn: prime(conn, scope), lambda: direct_put(scope))  # warm_pool

A cold pool pays on the first burst of calls for what each connection does once: opening
it, asyncpg preparing each statement on it (a round trip), and the server compiling the
put function and planning each of its statements in that session. With 32 calls in flight
on a cold process (a pool of 10), the first call of each conversation took 2-3x a later
one, so the slowest 1% of 1,024 turns were all first turns. With ``warm_pool``, ``setup()``
pays it instead, before any traffic: :func:`prime` runs the statements of a checkpoint
``get`` and ``put``, of log appends (one creating its thread) and of a log read, for
threads of its own, in a transaction rolled back after; in it, the ``put`` is also sent as
the store sends it, on the driver (:func:`direct_put`). Then :func:`settle` runs one full
garbage collection: the objects a new process piles up (imports, pools, caches) otherwise
make the first full collection land during traffic, a pause of 45-270 ms of the whole
event loop on a busy 2-core machine that every call in flight waits out.
"""

from __future__ import annotations

import contextlib
import gc
import time
import uuid
from typing import Any

from sqlalchemy.engine import Connection

from ...envelope import Envelope, Producer
from ...errors import NotFoundError
from .._records import EncodedCheckpoint
from . import _checkpoints as checkpoints
from . import _logs as logs
from ._server_put import put_arguments
from ._statements import Scope

__all__ = ["direct_put", "prime", "settle"]

_PRODUCER = Producer(package="agent-persist")
_LOG = "agent_persist.warm"
_ITEMS = [b"{}"]
_ENCODED = EncodedCheckpoint(header="{}", payload=b"{}")


def prime(conn: Connection, scope: Scope) -> None:
    """Run the hot statements once on ``conn``; the caller rolls the transaction back."""
    now, thread_id = time.time(), f"agent-persist-warm-{uuid.uuid4().hex}"
    with contextlib.suppress(NotFoundError):
        checkpoints.get(conn, scope, thread_id, None, now)
    envelope = _envelope(thread_id)
    checkpoints.put(conn, scope, envelope, _ENCODED, {_LOG: _ITEMS}, now, keep_last=None)
    logs.append(conn, scope, thread_id, _LOG, _ITEMS, now)  # to a thread that exists
    logs.append(conn, scope, f"{thread_id}-log", _LOG, _ITEMS, now)  # one that it creates
    if not scope.codec.seals_logs:  # an encrypted store would try to open the items
        logs.read_lines(conn, scope, thread_id, _LOG, now, version=None)


def direct_put(scope: Scope) -> tuple[str, tuple[Any, ...]]:
    """The checkpoint ``put`` as :func:`._server_put.send_put` sends it, for a warm thread.

    PostgreSQL only. A new thread each call, so connections warmed together do not wait on
    each other's row locks.
    """
    assert scope.sql.put_call is not None  # noqa: S101 - PostgreSQL only
    envelope = _envelope(f"agent-persist-warm-{uuid.uuid4().hex}")
    arguments = put_arguments(
        scope, envelope, _ENCODED, {_LOG: _ITEMS}, time.time(), lease=None, clear=(), first=None
    )
    return scope.sql.put_call, arguments


def _envelope(thread_id: str) -> Envelope:
    return Envelope.create(
        kind="agent_persist.warm",
        schema_version=1,
        thread_id=thread_id,
        payload={},
        producer=_PRODUCER,
    )


def settle() -> None:
    """Collect the startup garbage now, at setup, rather than in a pause during traffic."""
    gc.collect()
