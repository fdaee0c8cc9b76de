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
* ``put`` with ``appends`` adds the items and the checkpoint in one atomic transaction;
  ``clear_logs`` empties logs in it first, so the checkpoint pins none of their items (a
  per-turn journal is freed, not kept for the checkpoint's sake).
* **Leases** give one owner a thread for a while; an expired lease can be taken over, and
  so can one whose holder the caller proved dead (``take_over=``). A write given a
  ``lease`` checks, in its own transaction, that the lease still holds the thread: a worker
  that lost its lease can never write.
* **Retention**: ``ttl`` expires a thread that has not been written for that long (expired
  threads are invisible at once and deleted by the backend or :meth:`purge_expired`);
  ``keep_last`` keeps only the newest N checkpoints of each thread (the head always stays).
* A ``namespace`` (tenant) sees only its own threads.

Identifiers are data: any string (quotes, ``%``, ``_``, ``*``, braces, colons, newlines,
unicode, up to 4,096 characters) round-trips and never matches another thread; one that no
store could hold (a NUL, a lone surrogate, longer) is refused by all (see ``_limits``).
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from typing_extensions import Self

from .. import _otel
from .._json import JSON, MAX_JSON_DEPTH, canonical_json
from ..codecs import PayloadCodec
from ..envelope import Envelope
from ..errors import (
    AgentPersistError,
    ConflictError,
    CorruptCheckpointError,
    EncryptionError,
    NotFoundError,
    StoreError,
)
from ._arguments import (
    check_age,
    check_appends,
    check_count,
    check_envelope,
    check_int,
    check_items,
    check_lease,
    check_lease_arg,
    check_log_names,
    check_mapping,
    check_namespace,
    check_optional_text,
    check_range,
    check_ranges,
    check_text,
    check_ttl,
    version_at,
)
from ._audit import AUDIT_LOG, check_audit_events
from ._positions import MAX_ATTEMPTS, PositionCache, PositionsMoved
from ._records import (
    EncodedCheckpoint,
    StoredValue,
    canonical_payload,
    check_metadata_filter,
    describe,
    encode_checkpoint,
    json_lines,
    load_json,
)
from ._types import Lease, ThreadInfo

if TYPE_CHECKING:
    from ..crypto import Encryption
    from ..crypto._codec import SealingCodec

__all__ = ["BaseStore", "CheckpointStore", "Lease", "ThreadInfo"]

T = TypeVar("T")
logger = logging.getLogger("agent_persist")


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
        self,
        envelope: Envelope,
        *,
        appends: Mapping[str, Sequence[Any]] | None = None,
        lease: Lease | None = None,
        clear_logs: Sequence[str] | None = (),
    ) -> Envelope:
        """Append items to logs and add ``envelope`` as the new head, atomically.

        Returns the envelope as stored: ``logs`` holds the version of every log of the thread.
        Raises ``ConflictError`` when ``envelope.parent_id`` is not the current head (or, on
        an encrypted store, when other writers kept appending to its logs through 16
        attempts to seal the items where they land), and ``LeaseLostError`` when ``lease``
        is given and no longer holds the thread.

        ``clear_logs`` names logs to empty in the same transaction, *before* the new
        checkpoint records the log versions: it sees them empty, so it pins none of their
        items. A log emptied right after a put would stay pinned by that checkpoint and its
        items kept for as long as it exists (a per-turn journal would never be freed). As
        with ``clear_log``, items no checkpoint recorded are deleted and those an older
        checkpoint recorded are only stamped removed, so it still reads them. A log named in
        both ``clear_logs`` and ``appends`` is cleared first: the appended items are its new
        content. A name without a log is no-op, and a repeated name counts once. A refused
        put (conflict, lost lease, bad argument) clears nothing; a put of an envelope that
        is already stored returns it and clears nothing either.
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

    async def append(
        self, thread_id: str, log: str, items: Sequence[Any], *, lease: Lease | None = None
    ) -> None:
        """Append items to a log, atomically, creating the thread and log if needed.

        With ``lease``, ``LeaseLostError`` if it no longer holds the thread. On an encrypted
        store, ``ConflictError`` (nothing written) if other writers kept appending to the log
        through 16 attempts to seal the items where they land.
        """
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

    async def list_logs(self, thread_id: str) -> list[str]:
        """The names of the thread's logs, sorted (``[]`` for a thread that does not exist).

        A log stays listed after ``clear_log`` (its checkpoints may still read it).
        """
        ...

    async def pop(self, thread_id: str, log: str) -> JSON | None:
        """Remove and return the newest item (``None`` if empty); never the same one twice."""
        ...

    async def clear_log(self, thread_id: str, log: str) -> None:
        """Remove every item of the log (checkpoints that saw them still see them)."""
        ...

    async def acquire_lease(
        self, thread_id: str, owner: str, *, ttl: timedelta, take_over: str | None = None
    ) -> Lease:
        """Hold the thread for ``ttl``; ``LeaseHeldError`` if another owner holds it.

        The thread is taken when it is free, its lease expired or ``owner`` holds it (a new
        token either way). ``take_over`` names a holder the caller proved dead
        (:func:`agent_persist.leases.owner_is_dead`): a lease still held by exactly that
        owner is replaced at once, compared and set in one step, so of several workers
        taking over the same dead holder only one succeeds. The ``LeaseHeldError`` names the
        holder (``holder``, ``expires_at``).
        """
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
    """The abstract base of the built-in stores: the contract's checks and errors, once.

    Every public method here checks its arguments, seals what it writes, runs the back end's
    ``_``-prefixed twin and turns anything the back end raises that is not an
    :class:`~agent_persist.errors.AgentPersistError` into one (:meth:`_translate_error`), so
    a back end only does I/O and the same input gets the same answer from every store. A
    wrong argument type is a ``TypeError`` and a wrong value a ``ValueError``, naming it.
    """

    def __init__(
        self,
        *,
        namespace: str = "default",
        ttl: timedelta | None = None,
        keep_last: int | None = None,
        codec: PayloadCodec | None = None,
        encryption: Encryption | None = None,
    ) -> None:
        check_namespace(namespace)
        if ttl is not None:
            check_ttl(ttl)
        if keep_last is not None:
            check_int("keep_last", keep_last, minimum=1)
        if codec is not None and not isinstance(codec, PayloadCodec):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"codec must be a PayloadCodec, got {type(codec).__name__}")
        self.namespace = namespace
        self.ttl = ttl
        self.keep_last = keep_last
        self.codec = codec or PayloadCodec()
        self.encryption = encryption
        self._sealing: SealingCodec | None = None
        if encryption is not None:
            from ..crypto import Encryption  # only here: the crypto extra may be absent

            if not isinstance(encryption, Encryption):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise TypeError(
                    f"encryption must be an Encryption, got {type(encryption).__name__}"
                )
            self._sealing = encryption.codec(self.codec, namespace)
            self.codec = self._sealing
        self._positions = PositionCache()

    @property
    def backend(self) -> str:
        """What holds the data, for logs and telemetry: the class name without ``Store``."""
        return type(self).__name__.removesuffix("Store").lower()

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

    # -- errors --------------------------------------------------------------------------

    def _translate_error(self, exc: Exception) -> AgentPersistError | None:
        """The agent-persist error for a back end's exception, or ``None`` for the default.

        Back ends override this for their driver's errors (a lost connection is
        :class:`StoreUnavailableError`); what they leave becomes a :class:`StoreError`.
        """
        return None

    async def _guarded(self, operation: Awaitable[T]) -> T:
        """Await a back-end operation; nothing but an ``AgentPersistError`` escapes it."""
        try:
            return await operation
        except AgentPersistError:
            raise
        except Exception as exc:
            translated = self._translate_error(exc) or StoreError(
                f"{self!r} failed: {type(exc).__name__}: {exc}"
            )
            raise translated from exc

    # -- lifecycle -----------------------------------------------------------------------

    async def setup(self) -> None:
        """See :meth:`CheckpointStore.setup`; sets the key store up too when encrypting.

        Also imports OpenTelemetry when installed, which the first checkpoint call would
        otherwise do while every call in flight waits on the event loop.
        """
        _otel.prepare()
        await self._guarded(self._setup())
        if self._sealing is not None:
            await self._sealing.key_store.setup()

    async def close(self) -> None:
        """See :meth:`CheckpointStore.close`; closes a key store this store opened."""
        try:
            await self._guarded(self._close())
        finally:
            if self._sealing is not None:
                await self._sealing.key_store.close()

    async def _data_key(self, thread_id: str, *, create: bool = False) -> None:
        """Have the thread's data key at hand before sealing or opening its data."""
        if self._sealing is not None:
            await self._guarded(self._sealing.load(thread_id, create=create))

    async def seal_thread(self, thread_id: str, *, dry_run: bool = False) -> int:
        """Seal in place every payload and log item of the thread still stored in clear.

        Log items sealed before their positions were bound are sealed again, with them.
        For turning encryption on for an existing store (see
        :func:`agent_persist.crypto.seal`). What reads back, checkpoint ids, headers and log
        versions stay as they were; only the stored bytes change. Each value is replaced
        only if it still holds the bytes read (compare-and-set), so a concurrent writer is
        never overwritten: a value it removed is skipped, one it added is sealed by the
        next run. Returns how many values were sealed (would be, with ``dry_run``).

        Raises:
            ValueError: The store does not encrypt.
            CodecError: A clear value is damaged; nothing of the thread was sealed.
            DecryptionError: An item sealed before positions were bound does not open
                (tampered, or moved); nothing of the thread was sealed.
        """
        check_text("thread_id", thread_id)
        if self._sealing is None:
            raise ValueError("seal_thread needs a store opened with encryption=")
        codec = self._sealing
        values = await self._guarded(self._stored_values(thread_id))
        clear = [value for value in values if not codec.sealed_in_place(value)]
        if dry_run or not clear:
            return len(clear)
        await self._data_key(thread_id)  # items sealed before positions were bound open
        opened: list[tuple[StoredValue, PayloadCodec, bytes]] = []
        for value in clear:
            if value.log is not None:
                where = describe(self.backend, thread_id) + f": log {value.log!r}"
                bound = codec.for_log(thread_id, value.log)
                assert value.position is not None  # noqa: S101 - every back end places items
                plain = bound.unseal_item(value.data, value.position, where=where)
            else:
                checkpoint_id = value.checkpoint_id or ""
                where = describe(self.backend, thread_id, checkpoint_id)
                header = load_json(
                    value.header or "", where=f"{where}: header", max_depth=MAX_JSON_DEPTH + 1
                )
                if not isinstance(header, dict):
                    raise CorruptCheckpointError(f"{where}: the header is not an object")
                bound = codec.for_checkpoint(thread_id, checkpoint_id, header)
                plain = codec.inner.unseal(value.data, where=where)
            opened.append((value, bound, plain))
        await self._data_key(thread_id, create=True)  # only once every value opened
        changes = [
            (
                value,
                bound.seal_bytes(plain)
                if value.log is None
                else bound.seal_items([plain], first=value.position or 0, what="a log item")[0],
            )
            for value, bound, plain in opened
        ]
        return await self._guarded(self._replace_values(thread_id, changes))

    async def _stored_values(self, thread_id: str) -> list[StoredValue]:
        """Every payload and log item of the live thread, as stored (for :meth:`seal_thread`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot seal values in place")

    async def _replace_values(
        self, thread_id: str, changes: Sequence[tuple[StoredValue, bytes]]
    ) -> int:
        """Replace each value that still holds its bytes; returns how many were replaced."""
        raise NotImplementedError(f"{type(self).__name__} cannot seal values in place")

    async def _opened(self, thread_id: str, read: Callable[[], Awaitable[T]]) -> T:
        """Run a read of the thread's sealed data; once more if the key held was stale.

        A store holds the data keys it used; if another store deleted the thread since
        (and perhaps started it again under a new key), the read fails to open and the
        key store says so: the key is reloaded and the read runs again.
        """
        await self._data_key(thread_id)
        try:
            return await self._guarded(read())
        except EncryptionError:
            if self._sealing is None or not await self._guarded(self._sealing.stale(thread_id)):
                raise
        await self._data_key(thread_id)
        return await self._guarded(read())

    async def shred_thread(self, thread_id: str) -> bool:
        """Destroy the thread's data key: its ciphertext, wherever a copy is, is unreadable.

        ``delete_thread`` does this itself unless the store's ``Encryption`` was built with
        ``shred_on_delete=False`` (a legal hold); this is how the hold ends. ``False`` if
        the thread had no data key.

        Raises:
            ValueError: The store does not encrypt.
        """
        check_text("thread_id", thread_id)
        if self._sealing is None:
            raise ValueError("shred_thread needs a store opened with encryption=")
        shredded = await self._guarded(self._sealing.key_store.delete(thread_id))
        self._sealing.forget(thread_id)
        return shredded

    # -- history -------------------------------------------------------------------------

    async def put(
        self,
        envelope: Envelope,
        *,
        appends: Mapping[str, Sequence[Any]] | None = None,
        lease: Lease | None = None,
        clear_logs: Sequence[str] | None = (),
    ) -> Envelope:
        """See :meth:`CheckpointStore.put`.

        Idempotent by checkpoint id: putting an envelope that is already stored (a retry of
        a write whose commit outcome was unknown) returns the stored checkpoint instead of
        a :class:`ConflictError`, without clearing ``clear_logs`` again: whatever was
        appended to them since belongs to the next checkpoint.
        """
        check_envelope(envelope)
        checked = check_appends(appends)
        check_lease(lease, envelope.thread_id)
        clear = check_log_names("clear_logs", clear_logs)
        with _otel.checkpoint_write(self, envelope) as scope:
            # Everything refusable is refused before a data key is made (the key store too
            # stays as it was), then sealed under that key.
            payload = canonical_payload(envelope)
            plain = {n: self._encode(f"appends[{n!r}]", items) for n, items in checked.items()}
            await self._data_key(envelope.thread_id, create=True)
            encoded = encode_checkpoint(envelope, self.codec, encoded=payload)
            size = -1
            measure = scope.recording or logger.isEnabledFor(logging.DEBUG)

            async def write(
                sealed: dict[str, list[bytes]], first: dict[str, int] | None
            ) -> Envelope:
                nonlocal size
                if measure:
                    size = len(encoded.payload) + sum(sum(map(len, s)) for s in sealed.values())
                    scope.set(_otel.CHECKPOINT_BYTES, size)
                return await self._put_encoded(envelope, encoded, sealed, lease, clear, first)

            stored = await self._write_items(envelope.thread_id, plain, write, clearing=clear)
            if self.codec.seals_logs:  # where the logs it did not append to stand now
                untouched = {n: v for n, v in stored.logs.items() if n not in plain}
                self._positions.learn(
                    envelope.thread_id,
                    {n: v for n, v in untouched.items() if n in clear},
                    live=False,
                )
                self._positions.learn(
                    envelope.thread_id, {n: v for n, v in untouched.items() if n not in clear}
                )
        logger.debug(
            "thread %r: wrote checkpoint %r (step %d, %d bytes)",
            stored.thread_id,
            stored.checkpoint_id,
            stored.step,
            size,
        )
        return stored

    async def _put_encoded(
        self,
        envelope: Envelope,
        encoded: EncodedCheckpoint,
        sealed: Mapping[str, Sequence[bytes]],
        lease: Lease | None,
        clear: Sequence[str],
        first: Mapping[str, int] | None,
    ) -> Envelope:
        """Write; a conflict with the same checkpoint already stored (a retry) returns it."""
        try:
            return await self._guarded(self._put(envelope, encoded, sealed, lease, clear, first))
        except ConflictError:
            stored = await self._stored_twin(envelope, encoded)
            if stored is None:
                raise
            logger.info(
                "put of checkpoint %r of thread %r was already committed; returning it",
                envelope.checkpoint_id,
                envelope.thread_id,
            )
            return stored

    async def _stored_twin(self, envelope: Envelope, encoded: EncodedCheckpoint) -> Envelope | None:
        """The stored checkpoint with ``envelope``'s id and header, if there is one."""
        try:
            stored = await self._guarded(self._get(envelope.thread_id, envelope.checkpoint_id))
        except NotFoundError:
            return None
        if encode_checkpoint(stored, self.codec).header != encoded.header:
            return None
        return stored

    async def get(self, thread_id: str, checkpoint_id: str | None = None) -> Envelope:
        """See :meth:`CheckpointStore.get`."""
        check_text("thread_id", thread_id)
        check_optional_text("checkpoint_id", checkpoint_id)
        with _otel.checkpoint_read(self, thread_id, checkpoint_id) as scope:
            envelope = await self._opened(thread_id, lambda: self._get(thread_id, checkpoint_id))
            scope.checkpoint(envelope)
        if checkpoint_id is None and self.codec.seals_logs:  # where a resumed writer appends
            self._positions.suppose(thread_id, envelope.logs)
        logger.debug(
            "thread %r: read checkpoint %r (step %d)",
            thread_id,
            envelope.checkpoint_id,
            envelope.step,
        )
        return envelope

    async def list_checkpoints(
        self,
        thread_id: str,
        *,
        limit: int | None = None,
        before: str | None = None,
        metadata: Mapping[str, JSON] | None = None,
    ) -> list[Envelope]:
        """See :meth:`CheckpointStore.list_checkpoints`."""
        check_text("thread_id", thread_id)
        check_count("limit", limit)
        check_optional_text("before", before)
        wanted = check_metadata_filter(metadata)
        return await self._opened(
            thread_id,
            lambda: self._list_checkpoints(thread_id, limit=limit, before=before, wanted=wanted),
        )

    async def list_threads(
        self, *, metadata: Mapping[str, JSON] | None = None, limit: int | None = None
    ) -> list[ThreadInfo]:
        """See :meth:`CheckpointStore.list_threads`."""
        check_count("limit", limit)
        wanted = check_metadata_filter(metadata)
        return await self._guarded(self._list_threads(wanted=wanted, limit=limit))

    async def delete_thread(self, thread_id: str) -> bool:
        """See :meth:`CheckpointStore.delete_thread`."""
        check_text("thread_id", thread_id)
        if self._sealing is not None and self._shreds():
            await self.shred_thread(thread_id)
        self._positions.forget(thread_id)
        return await self._guarded(self._delete_thread(thread_id))

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
        check_text("thread_id", thread_id)
        check_text("new_thread_id", new_thread_id)
        check_optional_text("checkpoint_id", checkpoint_id)
        check_mapping("metadata", metadata)
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

    # -- logs ----------------------------------------------------------------------------

    @staticmethod
    def _encode(name: str, items: Sequence[Any]) -> list[bytes]:
        """A write's items as canonical JSON, refusing what is not a sequence of JSON items."""
        what = f"an item of {name}"
        return [canonical_json(item, what=what) for item in check_items(name, items)]

    async def _write_items(
        self,
        thread_id: str,
        plain: Mapping[str, Sequence[bytes]],
        write: Callable[[dict[str, list[bytes]], dict[str, int] | None], Awaitable[T]],
        *,
        clearing: Sequence[str] = (),
    ) -> T:
        """Seal each log's encoded items (a codec may refuse one: too large, say), then write.

        An encrypting codec binds each item to its position, so the items are sealed where
        the store's last known versions say they will land; the back end refuses the write
        (:class:`PositionsMoved`, nothing written) if another writer moved a log since, and
        they are sealed again where it says. A codec that binds nothing writes unchecked.
        """
        codec = self.codec

        def seal(first: Mapping[str, int]) -> dict[str, list[bytes]]:
            return {
                name: codec.for_log(thread_id, name).seal_items(
                    items, first=first.get(name, 0), what=f"an item of log {name!r}"
                )
                for name, items in plain.items()
            }

        if not codec.seals_logs or not plain:
            return await write(seal({}), None)
        first = self._positions.guess(thread_id, {name: name in clearing for name in plain})
        for _ in range(MAX_ATTEMPTS):
            sealed = seal(first)
            try:
                written = await write(sealed, first)
            except PositionsMoved as moved:
                logger.debug("thread %r: logs moved, sealing again at %r", thread_id, moved.first)
                first = {name: moved.first.get(name, at) for name, at in first.items()}
                continue
            except AgentPersistError:
                self._positions.forget(thread_id)
                raise
            self._positions.learn(
                thread_id, {name: first[name] + len(items) - 1 for name, items in plain.items()}
            )
            return written
        raise ConflictError(
            f"{describe(self.backend, thread_id)}: other writers kept appending to its logs; "
            f"the write was refused {MAX_ATTEMPTS} times and nothing was written"
        )

    async def append(
        self, thread_id: str, log: str, items: Sequence[Any], *, lease: Lease | None = None
    ) -> None:
        """See :meth:`CheckpointStore.append`."""
        check_text("thread_id", thread_id)
        check_text("log", log)
        check_lease(lease, thread_id)
        await self._append_encoded(thread_id, log, self._encode("items", items), lease)

    async def _append_encoded(
        self, thread_id: str, log: str, encoded: list[bytes], lease: Lease | None
    ) -> None:
        """Seal and append encoded items (none: nothing to do)."""
        if not encoded:
            return
        await self._data_key(thread_id, create=True)

        async def write(sealed: dict[str, list[bytes]], first: dict[str, int] | None) -> None:
            at = None if first is None else first[log]
            await self._guarded(self._append(thread_id, log, sealed[log], lease, at))

        await self._write_items(thread_id, {log: encoded}, write)

    async def append_audit(
        self, thread_id: str, events: Sequence[Mapping[str, Any]], *, lease: Lease | None = None
    ) -> None:
        """Append audit events to the thread's ``audit`` log; on SQL, to the audit tables too.

        Every store keeps the events as log items (read them with ``read_log(thread_id,
        "audit")``); the SQL stores also write one row per message or tool call, and the
        thread's session row, in the same transaction, so the tables never disagree with
        the log (they project every write to a log named ``audit``: ``append``, a ``put``
        that appends to it, ``fork`` and ``import``; items that are not audit events stay
        log items only). This method checks the events first, so a bad one is refused.

        Each event is a dict with ``event`` one of ``message`` (``role``, ``content``,
        ``model``, ``input_tokens``, ``output_tokens``, ``cost_usd``), ``llm`` (a model call
        with no message: ``model``, tokens, cost), ``tool_call`` (``name``, ``call_id``,
        ``input``, ``output``, ``duration_ms``) or ``session`` (``user``), and ``at`` in
        seconds since the epoch (the current time when missing). A refused event
        (``TypeError``/``ValueError`` naming it) writes nothing. On an encrypted store the
        items are sealed and the rows' ``content``, ``input`` and ``output`` too (under the
        thread's data key); names and numbers stay in clear columns.
        """
        check_text("thread_id", thread_id)
        check_lease(lease, thread_id)
        checked = check_audit_events(events)
        now = time.time()
        stamped = [event if "at" in event else {**event, "at": now} for event in checked]
        await self._append_encoded(thread_id, AUDIT_LOG, self._encode("events", stamped), lease)

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
        version = self._check_read(thread_id, log, start, stop, at)
        if version == -1 or (stop is not None and stop <= start):
            return []
        with _otel.log_read(self, _otel.READ_LOG, thread_id, log) as scope:
            items = await self._opened(
                thread_id,
                lambda: self._read_log(thread_id, log, start=start, stop=stop, version=version),
            )
            scope.set(_otel.LOG_ITEMS, len(items))
        return items

    async def read_logs(
        self,
        thread_id: str,
        logs: Sequence[str] | Mapping[str, tuple[int, int | None]],
        *,
        at: Envelope,
    ) -> dict[str, list[JSON]]:
        """Several logs as checkpoint ``at`` saw them, in one call to the store.

        What :meth:`read_log` with ``at=`` gives for each log, read together: a resume
        reads every log of its checkpoint at once, one round trip where the back end can
        (one query on SQL, one pipeline on Redis) instead of one per log. ``logs`` names
        whole logs, or maps each name to the ``(start, stop)`` wanted; the answer has a key
        per name, ``[]`` for a log ``at`` did not see.
        """
        check_text("thread_id", thread_id)
        ranges = check_ranges(logs)
        if not isinstance(at, Envelope):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"at must be an Envelope, got {type(at).__name__}")
        found: dict[str, list[JSON]] = {name: [] for name in ranges}
        wanted: dict[str, tuple[int, int | None, int]] = {}
        for name, (start, stop) in ranges.items():
            version = version_at(thread_id, name, at)
            assert version is not None  # noqa: S101 - ``at`` is given
            if version != -1 and (stop is None or stop > start):
                wanted[name] = (start, stop, version)
        if not wanted:
            return found
        with _otel.log_read(self, _otel.READ_LOGS, thread_id, ",".join(wanted)) as scope:
            found.update(await self._opened(thread_id, lambda: self._read_logs(thread_id, wanted)))
            scope.set(_otel.LOG_ITEMS, sum(map(len, found.values())))
        return found

    def _check_read(
        self, thread_id: str, log: str, start: int, stop: int | None, at: Envelope | None
    ) -> int | None:
        check_text("thread_id", thread_id)
        check_text("log", log)
        check_range(start, stop)
        return version_at(thread_id, log, at)

    async def tail(self, thread_id: str, log: str, count: int) -> list[JSON]:
        """See :meth:`CheckpointStore.tail`."""
        self._check_tail(thread_id, log, count)
        if count == 0:
            return []
        with _otel.log_read(self, _otel.TAIL, thread_id, log) as scope:
            items = await self._opened(thread_id, lambda: self._tail(thread_id, log, count))
            scope.set(_otel.LOG_ITEMS, len(items))
        return items

    @staticmethod
    def _check_tail(thread_id: str, log: str, count: int) -> None:
        check_text("thread_id", thread_id)
        check_text("log", log)
        check_int("count", count)

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
        version = self._check_read(thread_id, log, start, stop, at)
        if version == -1 or (stop is not None and stop <= start):
            return b""
        with _otel.log_read(self, _otel.READ_LOG_LINES, thread_id, log) as scope:
            lines = await self._opened(
                thread_id,
                lambda: self._read_log_lines(
                    thread_id, log, start=start, stop=stop, version=version
                ),
            )
            scope.set(_otel.LOG_BYTES, len(lines))
        return lines

    async def tail_lines(self, thread_id: str, log: str, count: int) -> bytes:
        """:meth:`tail` as JSON Lines, like :meth:`read_log_lines`."""
        self._check_tail(thread_id, log, count)
        if count == 0:
            return b""
        with _otel.log_read(self, _otel.TAIL_LINES, thread_id, log) as scope:
            lines = await self._opened(thread_id, lambda: self._tail_lines(thread_id, log, count))
            scope.set(_otel.LOG_BYTES, len(lines))
        return lines

    async def log_length(self, thread_id: str, log: str) -> int:
        """See :meth:`CheckpointStore.log_length`."""
        check_text("thread_id", thread_id)
        check_text("log", log)
        return await self._guarded(self._log_length(thread_id, log))

    async def list_logs(self, thread_id: str) -> list[str]:
        """See :meth:`CheckpointStore.list_logs`."""
        check_text("thread_id", thread_id)
        return sorted(await self._guarded(self._list_logs(thread_id)))

    async def pop(self, thread_id: str, log: str) -> JSON | None:
        """See :meth:`CheckpointStore.pop`."""
        check_text("thread_id", thread_id)
        check_text("log", log)
        # Every back end opens the item before removing it: a retry under a reloaded key
        # (see _opened) never pops twice.
        try:
            item = await self._opened(thread_id, lambda: self._pop(thread_id, log))
        except AgentPersistError:
            self._positions.forget(thread_id, log)
            raise
        if item is not None:
            self._positions.popped(thread_id, log)
        return item

    async def clear_log(self, thread_id: str, log: str) -> None:
        """See :meth:`CheckpointStore.clear_log`."""
        check_text("thread_id", thread_id)
        check_text("log", log)
        try:
            await self._guarded(self._clear_log(thread_id, log))
        except AgentPersistError:
            self._positions.forget(thread_id, log)
            raise
        self._positions.cleared(thread_id, log)

    # -- leases --------------------------------------------------------------------------

    async def acquire_lease(
        self, thread_id: str, owner: str, *, ttl: timedelta, take_over: str | None = None
    ) -> Lease:
        """See :meth:`CheckpointStore.acquire_lease`."""
        check_text("thread_id", thread_id)
        check_text("owner", owner)
        check_ttl(ttl)
        check_optional_text("take_over", take_over)
        taking = take_over is not None
        with _otel.lease_call(self, _otel.ACQUIRE_LEASE, thread_id, take_over=taking):
            return await self._guarded(
                self._acquire_lease(thread_id, owner, ttl=ttl, take_over=take_over)
            )

    async def renew_lease(self, lease: Lease, *, ttl: timedelta) -> Lease:
        """See :meth:`CheckpointStore.renew_lease`."""
        check_lease_arg(lease)
        check_ttl(ttl)
        with _otel.lease_call(self, _otel.RENEW_LEASE, lease.thread_id):
            return await self._guarded(self._renew_lease(lease, ttl=ttl))

    async def release_lease(self, lease: Lease) -> None:
        """See :meth:`CheckpointStore.release_lease`."""
        check_lease_arg(lease)
        with _otel.lease_call(self, _otel.RELEASE_LEASE, lease.thread_id):
            await self._guarded(self._release_lease(lease))

    # -- retention -----------------------------------------------------------------------

    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        older_than: timedelta | None = None,
    ) -> int:
        """See :meth:`CheckpointStore.prune`."""
        check_text("thread_id", thread_id)
        check_count("keep_last", keep_last)
        check_age("older_than", older_than)
        return await self._guarded(
            self._prune(thread_id, keep_last=keep_last, older_than=older_than)
        )

    async def purge_expired(self) -> int:
        """See :meth:`CheckpointStore.purge_expired`.

        On an encrypted store with a ``ttl`` and ``shred_on_delete`` (the default), the
        data keys of expired threads are destroyed first (crypto-shredding, as
        ``delete_thread`` does): every key older than the ``ttl`` whose thread is not live.
        That also catches threads a back end expired by itself (Redis key expiry).
        """
        if self._sealing is not None and self.ttl is not None and self._shreds():
            await self._shred_expired(self.ttl)
        return await self._guarded(self._purge_expired())

    def _shreds(self) -> bool:
        return self.encryption is not None and self.encryption.shred_on_delete

    async def _shred_expired(self, ttl: timedelta) -> int:
        """Destroy the data keys of threads that expired; returns how many.

        A key younger than the ``ttl`` is kept even if its thread is not live yet: its
        first write may be in flight. Each older key's thread is checked to be absent
        right before the key is deleted; only a thread written again in the instant
        between that check and the deletion could lose that write (a writer holding the
        key then gets :class:`~agent_persist.errors.ShreddedThreadError`).
        """
        assert self._sealing is not None  # noqa: S101 - checked by the caller
        key_store = self._sealing.key_store
        cutoff = time.time() - ttl.total_seconds()
        keyed = await self._guarded(key_store.store.list_threads())
        old = [info.thread_id for info in keyed if info.updated_at.timestamp() <= cutoff]
        shredded = 0
        for thread_id in old:
            # Asked of each thread just before its key goes, never inferred from a listing:
            # a paged listing misses a thread written while it runs.
            if not await self._guarded(self._thread_exists(thread_id)):
                shredded += await self.shred_thread(thread_id)
        if shredded:
            logger.info("shredded the data keys of %d expired threads", shredded)
        return shredded

    # -- what each back end implements: I/O only, arguments already checked --------------

    @abc.abstractmethod
    async def _setup(self) -> None:
        """Create or upgrade the store's own schema."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    async def _put(
        self,
        envelope: Envelope,
        encoded: EncodedCheckpoint,
        sealed: Mapping[str, Sequence[bytes]],
        lease: Lease | None,
        clear: Sequence[str],
        first: Mapping[str, int] | None,
    ) -> Envelope:
        """Store ``encoded`` as the new head with the sealed appends, atomically.

        With ``lease``, in the same transaction: ``LeaseLostError`` and nothing written
        unless it is the thread's current, unexpired lease (same token). The logs named in
        ``clear`` (distinct names, maybe none, maybe missing) are emptied first, as
        :meth:`_clear_log` does, then the appends made, then the versions recorded.
        With ``first`` (an encrypting codec), each log's first appended item must take
        that ``seq`` (:func:`~._positions.first_after`): else :class:`PositionsMoved`
        naming the ones it would take, and nothing written.
        """

    @abc.abstractmethod
    async def _get(self, thread_id: str, checkpoint_id: str | None) -> Envelope:
        """The head or one checkpoint."""

    @abc.abstractmethod
    async def _list_checkpoints(
        self, thread_id: str, *, limit: int | None, before: str | None, wanted: dict[str, JSON]
    ) -> list[Envelope]:
        """Checkpoints newest first, filtered on checked metadata."""

    @abc.abstractmethod
    async def _list_threads(
        self, *, wanted: dict[str, JSON], limit: int | None
    ) -> list[ThreadInfo]:
        """Threads, most recently updated first."""

    async def _thread_exists(self, thread_id: str) -> bool:
        """Whether the thread is live now (not missing, not expired); one cheap query."""
        return any(
            info.thread_id == thread_id for info in await self._list_threads(wanted={}, limit=None)
        )

    @abc.abstractmethod
    async def _delete_thread(self, thread_id: str) -> bool:
        """Delete everything of the thread."""

    @abc.abstractmethod
    async def _append(
        self,
        thread_id: str,
        log: str,
        sealed: Sequence[bytes],
        lease: Lease | None,
        first: int | None,
    ) -> None:
        """Append sealed items (at least one); ``lease``, then ``first``, checked as in _put."""

    @abc.abstractmethod
    async def _read_log(
        self, thread_id: str, log: str, *, start: int, stop: int | None, version: int | None
    ) -> list[JSON]:
        """Items ``[start:stop]`` now (``version`` None) or as log version ``version`` was."""

    async def _read_logs(
        self, thread_id: str, wanted: Mapping[str, tuple[int, int | None, int]]
    ) -> dict[str, list[JSON]]:
        """Several logs' items as :meth:`_read_log` gives them, one log after the other.

        ``wanted`` maps at least one log name to ``(start, stop, version)``. Back ends that
        can read them all in one round trip override this.
        """
        return {
            name: await self._read_log(thread_id, name, start=start, stop=stop, version=version)
            for name, (start, stop, version) in wanted.items()
        }

    @abc.abstractmethod
    async def _tail(self, thread_id: str, log: str, count: int) -> list[JSON]:
        """The last ``count`` (at least one) items."""

    async def _read_log_lines(
        self, thread_id: str, log: str, *, start: int, stop: int | None, version: int | None
    ) -> bytes:
        """:meth:`_read_log` as JSON Lines; back ends join stored text instead when they can."""
        return json_lines(
            await self._read_log(thread_id, log, start=start, stop=stop, version=version)
        )

    async def _tail_lines(self, thread_id: str, log: str, count: int) -> bytes:
        """:meth:`_tail` as JSON Lines."""
        return json_lines(await self._tail(thread_id, log, count))

    @abc.abstractmethod
    async def _log_length(self, thread_id: str, log: str) -> int:
        """How many items the log holds now."""

    @abc.abstractmethod
    async def _list_logs(self, thread_id: str) -> list[str]:
        """The names of the live thread's logs, in any order."""

    @abc.abstractmethod
    async def _pop(self, thread_id: str, log: str) -> JSON | None:
        """Remove and return the newest item."""

    @abc.abstractmethod
    async def _clear_log(self, thread_id: str, log: str) -> None:
        """Remove every item."""

    @abc.abstractmethod
    async def _acquire_lease(
        self, thread_id: str, owner: str, *, ttl: timedelta, take_over: str | None
    ) -> Lease:
        """Take the thread's lease: free, expired, ``owner``'s or held by ``take_over``."""

    @abc.abstractmethod
    async def _renew_lease(self, lease: Lease, *, ttl: timedelta) -> Lease:
        """Extend a lease still held."""

    @abc.abstractmethod
    async def _release_lease(self, lease: Lease) -> None:
        """Give a lease up."""

    @abc.abstractmethod
    async def _prune(
        self, thread_id: str, *, keep_last: int | None, older_than: timedelta | None
    ) -> int:
        """Delete old checkpoints (never the head)."""

    @abc.abstractmethod
    async def _purge_expired(self) -> int:
        """Delete expired threads."""
