"""Retrying a checkpoint write that the connection broke: ``put`` is idempotent, so it is safe.

    saved = await put_retrying(store, envelope, appends={"transcript": new}, logger=logger)

When the connection breaks during a ``put``, the store raises
:class:`~agent_persist.errors.StoreUnavailableError` and nobody knows whether the write was
committed (the reply to ``COMMIT`` may be what was lost). Putting the *same* envelope again
settles it: if the first attempt was committed, the store recognises the checkpoint by its
id and returns the stored one (see :meth:`agent_persist.BaseStore.put`); if it was not, the
retry writes it. Either way the appends are written exactly once, because they commit with
the checkpoint.

A plain log ``append`` is different: it carries no id, so a retry after an unknown outcome
could add its items twice. It is never retried here; callers that need a retryable write
put a checkpoint with ``appends``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from .envelope import Envelope
from .errors import StoreUnavailableError
from .stores import CheckpointStore, Lease

__all__ = ["DEFAULT_WRITE_ATTEMPTS", "check_attempts", "put_retrying"]

DEFAULT_WRITE_ATTEMPTS = 3
"""How many times the durable layers try a checkpoint write before giving up."""

_BACKOFF = 0.05
"""Seconds before the first retry; each later one waits twice as long as the one before."""


def check_attempts(attempts: int) -> int:
    """``attempts`` if it is an int of at least 1; else ``TypeError``/``ValueError`` naming it."""
    if isinstance(attempts, bool) or not isinstance(attempts, int):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(f"write_attempts must be an int, got {type(attempts).__name__}")
    if attempts < 1:
        raise ValueError(f"write_attempts must be at least 1, got {attempts}")
    return attempts


async def put_retrying(
    store: CheckpointStore,
    envelope: Envelope,
    *,
    appends: Mapping[str, Sequence[Any]] | None = None,
    lease: Lease | None = None,
    clear_logs: Sequence[str] | None = (),
    attempts: int = DEFAULT_WRITE_ATTEMPTS,
    logger: logging.Logger,
) -> Envelope:
    """``store.put(envelope, ...)``, tried up to ``attempts`` times while the store is unavailable.

    Every attempt puts the same envelope (same checkpoint id), so an attempt whose commit
    went through but whose reply was lost is found by the next one rather than written
    twice. Each retry logs a warning on ``logger`` (the calling package's) and waits a
    little longer than the one before (50 ms, 100 ms, ...). ``clear_logs`` is the store's:
    a retry of a put that was committed returns it and clears nothing again. ``lease`` and
    ``clear_logs`` reach the store only when given, so a store without them still works.

    Raises:
        StoreUnavailableError: Every attempt failed; the last error, whose outcome is still
            unknown (read the thread's head to find out).
        ConflictError: Another writer moved the head (not retried: a retry cannot help).
    """
    check_attempts(attempts)
    options: dict[str, Any] = {}
    if lease is not None:
        options["lease"] = lease
    if clear_logs != ():
        options["clear_logs"] = clear_logs  # the store checks it (a str is a TypeError)
    for attempt in range(1, attempts + 1):
        try:
            return await store.put(envelope, appends=appends, **options)
        except StoreUnavailableError as exc:
            if attempt == attempts:
                raise
            delay = _BACKOFF * 2 ** (attempt - 1)
            logger.warning(
                "checkpoint %r of thread %r: write failed (%s); retrying in %.2f s "
                "(attempt %d of %d)",
                envelope.checkpoint_id,
                envelope.thread_id,
                exc,
                delay,
                attempt + 1,
                attempts,
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
