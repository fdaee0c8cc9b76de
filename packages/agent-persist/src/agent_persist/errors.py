"""One exception hierarchy for everything agent-persist raises on purpose.

Catch :class:`AgentPersistError` to handle them all, or a subclass for one situation::

    try:
        envelope = await store.get("thread-1")
    except ThreadNotFoundError:
        envelope = None

Every message says what went wrong and where (kind, versions, thread, checkpoint, URL), so a
log line alone is enough to act on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

__all__ = [
    "AgentPersistError",
    "CheckpointNotFoundError",
    "ChecksumMismatchError",
    "CodecError",
    "ConfigDriftError",
    "ConflictError",
    "CorruptCheckpointError",
    "CorruptJournalError",
    "DecryptionError",
    "EncryptionError",
    "EventLoopMismatchError",
    "FutureVersionError",
    "InvalidPayloadError",
    "InvalidStoreURLError",
    "LeaseHeldError",
    "LeaseLostError",
    "MigrationError",
    "MigrationFailedError",
    "MigrationInvalidOutputError",
    "MissingDependencyError",
    "MissingMigrationError",
    "NotFoundError",
    "ShreddedThreadError",
    "StoreError",
    "StoreSchemaError",
    "StoreUnavailableError",
    "ThreadBusyError",
    "ThreadNotFoundError",
    "ToolOutcomeUnknownError",
    "UnknownKeyError",
    "UnknownKindError",
]


class AgentPersistError(Exception):
    """Base class of every error agent-persist raises on purpose."""


class MissingDependencyError(AgentPersistError, ImportError):
    """An optional dependency is not installed; the message holds the exact install command."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        self.install_command = f'pip install "agent-persist[{extra}]"'
        super().__init__(
            f"{feature} needs the '{module}' package, which is not installed. "
            f"Install it with: {self.install_command}"
        )


class InvalidPayloadError(AgentPersistError, TypeError):
    """A payload, metadata value or log item that is not plain JSON (or holds NaN)."""


class InvalidStoreURLError(AgentPersistError, ValueError):
    """A store URL that no store understands (unknown scheme, missing parts)."""


class StoreError(AgentPersistError):
    """The store failed in a way no other error names; the driver's exception is the cause."""


class StoreUnavailableError(StoreError, ConnectionError):
    """The store's server could not be reached, refused the connection or dropped it.

    The store stays usable: the next call opens a new connection.
    """


class EventLoopMismatchError(AgentPersistError, RuntimeError):
    """A connection the caller built (an ``AsyncEngine``, a Redis client) used on another loop.

    Such a connection belongs to one event loop; a store opened from a URL holds one pool per
    loop instead, so it works from any thread and any loop.
    """


class StoreSchemaError(AgentPersistError):
    """The store's own tables or keys are at a schema version this code cannot use."""


class CorruptCheckpointError(AgentPersistError, ValueError):
    """Stored data that cannot be read back: bad JSON, a truncated row, a wrong shape."""


class ChecksumMismatchError(CorruptCheckpointError):
    """A payload whose checksum does not match the one recorded when it was written."""


class CodecError(CorruptCheckpointError):
    """A payload encoded with a codec that is unknown here or that fails to decode it."""


class EncryptionError(AgentPersistError):
    """Base class of the errors of encrypted stores (:mod:`agent_persist.crypto`).

    Each names the thread; nothing stored is changed by the call that raises it.
    """


class DecryptionError(EncryptionError):
    """A sealed value that does not open: a wrong key, tampering, or a copy from elsewhere.

    Elsewhere is another row, thread or namespace; tampering includes an edited header.
    """


class UnknownKeyError(EncryptionError, LookupError):
    """A data key wrapped by a key id the key ring does not hold."""


class ShreddedThreadError(EncryptionError):
    """Sealed data of a thread whose data key was destroyed (crypto-shredded): unreadable."""


class UnknownKindError(AgentPersistError, LookupError):
    """A checkpoint kind, or a raw state shape, that nothing registered understands."""


class FutureVersionError(AgentPersistError):
    """Data written by a newer version of the code than this one; it is left untouched."""


class NotFoundError(AgentPersistError, LookupError):
    """Something asked for by id does not exist."""


class ThreadNotFoundError(NotFoundError):
    """No thread with this id exists in the store (or its namespace)."""


class CheckpointNotFoundError(NotFoundError):
    """The thread exists but holds no checkpoint with this id."""


class ConflictError(AgentPersistError):
    """A write lost a race: the head it expected is no longer the thread's head."""


class LeaseHeldError(AgentPersistError):
    """Another owner holds an unexpired lease on the thread.

    ``holder`` is that owner and ``expires_at`` (UTC) when its lease runs out unless
    renewed, when the store could tell; a caller that proves the holder dead
    (:func:`agent_persist.leases.owner_is_dead`) passes ``take_over=holder`` to
    ``acquire_lease`` instead of waiting.
    """

    def __init__(
        self, message: str, *, holder: str | None = None, expires_at: datetime | None = None
    ) -> None:
        super().__init__(message)
        self.holder = holder
        self.expires_at = expires_at

    def __reduce__(self) -> tuple[Any, ...]:
        """Keep ``holder`` and ``expires_at`` across pickling (process pools)."""
        return (_lease_held, (type(self), str(self), self.holder, self.expires_at))


def _lease_held(
    cls: type[LeaseHeldError], message: str, holder: str | None, expires_at: datetime | None
) -> LeaseHeldError:
    return cls(message, holder=holder, expires_at=expires_at)


class ThreadBusyError(LeaseHeldError):
    """Another live worker kept the thread's lease longer than a durable run's ``lease_wait``.

    ``holder`` names it and ``expires_at`` says when its lease runs out unless renewed.
    Raised by :class:`agent_persist.leases.LeaseHolder` for both adapters' durable runs.
    """


class LeaseLostError(AgentPersistError):
    """A lease this owner held has expired or been taken over: it cannot be renewed or write."""


class MigrationError(AgentPersistError):
    """Base class of the errors raised while upgrading a payload; stored data is unchanged."""


class MissingMigrationError(MigrationError):
    """No registered migration continues the chain from a version to the current one."""


class MigrationFailedError(MigrationError):
    """A registered migration raised; the original exception is chained as the cause."""


class MigrationInvalidOutputError(MigrationError):
    """A registered migration returned something that is not a valid payload."""


class ConfigDriftError(MigrationError):
    """The configuration changed since the checkpoint in ways the drift policy refuses.

    Attributes:
        changes: The refused differences (``agent_persist.drift.Change`` values).
    """

    def __init__(self, message: str, changes: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.changes = list(changes)


class CorruptJournalError(CorruptCheckpointError):
    """An entry of a thread's call journal cannot be read or replayed.

    Nothing was replayed from it. Run again with ``journal="discard"`` to drop the journal
    and make the turn's calls live again (completed calls are then paid again).
    """


class ToolOutcomeUnknownError(AgentPersistError):
    """A tool call was started before a crash and never recorded as finished.

    Whether its side effect happened is unknown, so it is neither run again nor skipped
    until someone decides: mark the tool idempotent (``"rerun"``), give a ``reconcile``
    function, or record its result by hand. The thread stays resumable.

    Attributes:
        thread_id: The thread whose run was interrupted.
        tool: The tool's name.
        arguments: The arguments it was called with.
        call_id: The model's id for the call, when it gave one.
        idempotency_key: The key the tool saw (the same on every resume of this call).
    """

    def __init__(
        self,
        message: str,
        *,
        thread_id: str,
        tool: str,
        arguments: Any,
        call_id: str | None,
        idempotency_key: str,
    ) -> None:
        super().__init__(message)
        self.thread_id = thread_id
        self.tool = tool
        self.arguments = arguments
        self.call_id = call_id
        self.idempotency_key = idempotency_key

    def __reduce__(self) -> tuple[Any, ...]:
        """Keep the attributes across pickling (process pools)."""
        return (
            _tool_outcome_unknown,
            (
                str(self),
                self.thread_id,
                self.tool,
                self.arguments,
                self.call_id,
                self.idempotency_key,
            ),
        )


def _tool_outcome_unknown(
    message: str, thread_id: str, tool: str, arguments: Any, call_id: str | None, key: str
) -> ToolOutcomeUnknownError:
    return ToolOutcomeUnknownError(
        message,
        thread_id=thread_id,
        tool=tool,
        arguments=arguments,
        call_id=call_id,
        idempotency_key=key,
    )
