"""The store contract: checkpoint history, append-only logs, leases and retention.

Every store, built in or third party, offers the :class:`CheckpointStore` protocol; ours
derive from :class:`BaseStore`, which adds what can be written once for all of them::

    async with open_store("sqlite:///agents.db") as store:
        first = await store.put(envelope, appends={"transcript": [msg1, msg2]})
        latest = await store.get("thread-1")
        messages = await store.read_log("thread-1", "transcript", at=latest)

The model:

* A **thread** has a linear history of checkpoints (envelopes). ``put`` takes the
  envelope's ``parent_id`` as the head it expects: ``None`` for a thread's first checkpoint,
  else the current head's id. Anything else raises :class:`~agent_persist.errors.ConflictError`,
  so of N concurrent writers exactly one wins and the others learn it.
* A thread has named **logs**: append-only lists of JSON items (a transcript, a model
  context, session items). Every change (an appended item, a pop, a clear) bumps the log's
  *version*. A checkpoint records the version of each of the thread's logs when it was
  written (``Envelope.logs``), and ``read_log(..., at=envelope)`` gives the log exactly as it
  was then, even after later pops, clears or a prune of other checkpoints. So a checkpoint
  writes only what is new since its parent: its cost does not grow with the history.
* ``put`` with ``appends`` adds the items and the checkpoint in one atomic transaction.
* **Leases** give one owner a thread for a while; an expired lease can be taken over.
* **Retention**: ``ttl`` expires a thread that has not been written for that long (expired
  threads are invisible at once and deleted by the backend or :meth:`purge_expired`);
  ``keep_last`` keeps only the newest N checkpoints of each thread (the head always stays).
* A ``namespace`` (tenant) sees only its own threads.

Identifiers are data: any string (quotes, ``%``, ``_``, ``*``, braces, colons, newlines,
unicode, a kilobyte long) round-trips and never matches another thread.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from typing_extensions import Self

from .._json import JSON
from ..envelope import Envelope, Status
from ._records import json_lines

__all__ = ["BaseStore", "CheckpointStore", "Lease", "ThreadInfo"]


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """A thread as listed by :meth:`CheckpointStore.list_threads`.

    A thread that has logs but no checkpoint yet (a session) has ``head_id`` and ``kind`` of
    ``None``, ``step`` of -1 and no metadata.
    """

    thread_id: str
    head_id: str | None
    kind: str | None
    schema_version: int | None
    step: int
    status: Status | None
    checkpoint_count: int
    metadata: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Lease:
    """Proof that ``owner`` holds ``thread_id`` until ``expires_at`` (UTC)."""

    thread_id: str
    owner: str
    token: str
    expires_at: datetime


@runtime_checkable
class CheckpointStore(Protocol):
    """What every store offers. Third-party stores implement this and pass the conformance suite.

    All methods are coroutines. Ids and log names are arbitrary strings. Reading a log of a
    thread that does not exist gives an empty list; reading checkpoints of one raises
    :class:`~agent_persist.errors.ThreadNotFoundError`.
    """

    async def setup(self) -> None:
        """Create or upgrade the store's own schema; idempotent and safe to run concurrently."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    async def put(
        self, envelope: Envelope, *, appends: Mapping[str, Sequence[Any]] | None = None
    ) -> Envelope:
        """Append items to logs and add ``envelope`` as the new head, atomically.

        Returns the envelope as stored: ``logs`` holds the version of every log of the thread.
        Raises ``ConflictError`` when ``envelope.parent_id`` is not the current head.
        """
        ...

    async def get(self, thread_id: str, checkpoint_id: str | None = None) -> Envelope:
        """The head (or the checkpoint with this id), checksum verified."""
        ...

    async def list_checkpoints(
        self,
        thread_id: str,
        *,
        limit: int | None = None,
        before: str | None = None,
        metadata: Mapping[str, JSON] | None = None,
    ) -> list[Envelope]:
        """Checkpoints newest first; ``before`` an id, ``metadata`` top-level equality filters."""
        ...

    async def list_threads(
        self, *, metadata: Mapping[str, JSON] | None = None, limit: int | None = None
    ) -> list[ThreadInfo]:
        """Threads, most recently updated first, filtered on their head's metadata."""
        ...

    async def delete_thread(self, thread_id: str) -> bool:
        """Delete the thread, its checkpoints, logs and lease; ``False`` if it did not exist."""
        ...

    async def fork(
        self,
        thread_id: str,
        new_thread_id: str,
        *,
        checkpoint_id: str | None = None,
        metadata: Mapping[str, JSON] | None = None,
    ) -> Envelope:
        """Start ``new_thread_id`` from a checkpoint of ``thread_id`` (the head by default)."""
        ...

    async def append(self, thread_id: str, log: str, items: Sequence[Any]) -> None:
        """Append items to a log, atomically, creating the thread and log if needed."""
        ...

    async def read_log(
        self,
        thread_id: str,
        log: str,
        *,
        start: int = 0,
        stop: int | None = None,
        at: Envelope | None = None,
    ) -> list[JSON]:
        """Items ``[start:stop]`` of the log now, or as checkpoint ``at`` saw it."""
        ...

    async def tail(self, thread_id: str, log: str, count: int) -> list[JSON]:
        """The last ``count`` items of the log, oldest first."""
        ...

    async def log_length(self, thread_id: str, log: str) -> int:
        """How many items the log holds now."""
        ...

    async def pop(self, thread_id: str, log: str) -> JSON | None:
        """Remove and return the newest item (``None`` if empty); never the same one twice."""
        ...

    async def clear_log(self, thread_id: str, log: str) -> None:
        """Remove every item of the log (checkpoints that saw them still see them)."""
        ...

    async def acquire_lease(self, thread_id: str, owner: str, *, ttl: timedelta) -> Lease:
        """Hold the thread for ``ttl``; ``LeaseHeldError`` if another owner holds it."""
        ...

    async def renew_lease(self, lease: Lease, *, ttl: timedelta) -> Lease:
        """Extend a lease still held; ``LeaseLostError`` if it expired or was taken over."""
        ...

    async def release_lease(self, lease: Lease) -> None:
        """Give the thread up; does nothing if the lease is no longer held."""
        ...

    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        older_than: timedelta | None = None,
    ) -> int:
        """Delete old checkpoints of a thread (never its head); returns how many."""
        ...

    async def purge_expired(self) -> int:
        """Delete the threads whose TTL ran out; returns how many."""
        ...


class BaseStore(abc.ABC):
    """The abstract base of the built-in stores: the shared parts of the contract.

    Subclasses implement the abstract methods; the context manager, argument checks and
    :meth:`fork` live here once.
    """

    def __init__(
        self,
        *,
        namespace: str = "default",
        ttl: timedelta | None = None,
        keep_last: int | None = None,
    ) -> None:
        if ttl is not None and ttl <= timedelta(0):
            raise ValueError(f"ttl must be positive, got {ttl}")
        if keep_last is not None and keep_last < 1:
            raise ValueError(f"keep_last must be at least 1, got {keep_last}")
        self.namespace = namespace
        self.ttl = ttl
        self.keep_last = keep_last

    async def __aenter__(self) -> Self:
        await self.setup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def setup(self) -> None:
        """Create or upgrade the store's own schema."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    async def put(
        self, envelope: Envelope, *, appends: Mapping[str, Sequence[Any]] | None = None
    ) -> Envelope:
        """See :meth:`CheckpointStore.put`."""

    @abc.abstractmethod
    async def get(self, thread_id: str, checkpoint_id: str | None = None) -> Envelope:
        """See :meth:`CheckpointStore.get`."""

    @abc.abstractmethod
    async def list_checkpoints(
        self,
        thread_id: str,
        *,
        limit: int | None = None,
        before: str | None = None,
        metadata: Mapping[str, JSON] | None = None,
    ) -> list[Envelope]:
        """See :meth:`CheckpointStore.list_checkpoints`."""

    @abc.abstractmethod
    async def list_threads(
        self, *, metadata: Mapping[str, JSON] | None = None, limit: int | None = None
    ) -> list[ThreadInfo]:
        """See :meth:`CheckpointStore.list_threads`."""

    @abc.abstractmethod
    async def delete_thread(self, thread_id: str) -> bool:
        """See :meth:`CheckpointStore.delete_thread`."""

    async def fork(
        self,
        thread_id: str,
        new_thread_id: str,
        *,
        checkpoint_id: str | None = None,
        metadata: Mapping[str, JSON] | None = None,
    ) -> Envelope:
        """See :meth:`CheckpointStore.fork`: the new thread's first checkpoint copies the source.

        The copy holds the payload and every log as the source checkpoint saw them; its
        metadata gains ``forked_from`` (thread and checkpoint) unless ``metadata`` replaces it.
        """
        source = await self.get(thread_id, checkpoint_id)
        logs = {name: await self.read_log(thread_id, name, at=source) for name in source.logs}
        fork_metadata = (
            dict(metadata)
            if metadata is not None
            else {
                **source.metadata,
                "forked_from": {"thread_id": thread_id, "checkpoint_id": source.checkpoint_id},
            }
        )
        first = Envelope.create(
            kind=source.kind,
            schema_version=source.schema_version,
            thread_id=new_thread_id,
            payload=source.payload,
            producer=source.producer,
            fingerprint=source.fingerprint,
            status=source.status,
            stop_reason=source.stop_reason,
            metadata=fork_metadata,
            step=source.step,
        )
        return await self.put(first, appends=logs)

    @abc.abstractmethod
    async def append(self, thread_id: str, log: str, items: Sequence[Any]) -> None:
        """See :meth:`CheckpointStore.append`."""

    @abc.abstractmethod
    async def read_log(
        self,
        thread_id: str,
        log: str,
        *,
        start: int = 0,
        stop: int | None = None,
        at: Envelope | None = None,
    ) -> list[JSON]:
        """See :meth:`CheckpointStore.read_log`."""

    @abc.abstractmethod
    async def tail(self, thread_id: str, log: str, count: int) -> list[JSON]:
        """See :meth:`CheckpointStore.tail`."""

    async def read_log_lines(
        self,
        thread_id: str,
        log: str,
        *,
        start: int = 0,
        stop: int | None = None,
        at: Envelope | None = None,
    ) -> bytes:
        """:meth:`read_log` as JSON Lines: each item's canonical JSON, one per line.

        For readers that parse a whole log at once (one ``json.loads``, not one per item).
        The SQL and Redis stores return the stored text without parsing it, so a damaged
        item shows as a line that does not parse; :meth:`read_log` names it. ``b""`` when
        there is no item.
        """
        return json_lines(await self.read_log(thread_id, log, start=start, stop=stop, at=at))

    async def tail_lines(self, thread_id: str, log: str, count: int) -> bytes:
        """:meth:`tail` as JSON Lines, like :meth:`read_log_lines`."""
        return json_lines(await self.tail(thread_id, log, count))

    @abc.abstractmethod
    async def log_length(self, thread_id: str, log: str) -> int:
        """See :meth:`CheckpointStore.log_length`."""

    @abc.abstractmethod
    async def pop(self, thread_id: str, log: str) -> JSON | None:
        """See :meth:`CheckpointStore.pop`."""

    @abc.abstractmethod
    async def clear_log(self, thread_id: str, log: str) -> None:
        """See :meth:`CheckpointStore.clear_log`."""

    @abc.abstractmethod
    async def acquire_lease(self, thread_id: str, owner: str, *, ttl: timedelta) -> Lease:
        """See :meth:`CheckpointStore.acquire_lease`."""

    @abc.abstractmethod
    async def renew_lease(self, lease: Lease, *, ttl: timedelta) -> Lease:
        """See :meth:`CheckpointStore.renew_lease`."""

    @abc.abstractmethod
    async def release_lease(self, lease: Lease) -> None:
        """See :meth:`CheckpointStore.release_lease`."""

    @abc.abstractmethod
    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        older_than: timedelta | None = None,
    ) -> int:
        """See :meth:`CheckpointStore.prune`."""

    @abc.abstractmethod
    async def purge_expired(self) -> int:
        """See :meth:`CheckpointStore.purge_expired`."""


def check_range(start: int, stop: int | None) -> None:
    """Refuse negative slice bounds, which logs do not support."""
    if start < 0 or (stop is not None and stop < 0):
        raise ValueError(f"log ranges take non-negative bounds, got start={start}, stop={stop}")


def check_count(name: str, value: int | None) -> None:
    """Refuse a negative ``limit`` / ``count``."""
    if value is not None and value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def check_ttl(ttl: timedelta) -> None:
    """Refuse a lease of zero or negative length."""
    if ttl <= timedelta(0):
        raise ValueError(f"a lease ttl must be positive, got {ttl}")
