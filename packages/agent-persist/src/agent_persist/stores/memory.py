"""An in-process store: the reference semantics, and a fast double for tests.

    store = MemoryStore()
    saved = await store.put(envelope, appends={"transcript": [message]})

It keeps encoded bytes, exactly like the persistent stores, so codecs, checksums and
corruption handling behave the same; nothing survives the process.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Awaitable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from .._json import JSON
from ..codecs import PayloadCodec
from ..envelope import Envelope
from ..errors import (
    CheckpointNotFoundError,
    ConflictError,
    LeaseHeldError,
    LeaseLostError,
    ThreadNotFoundError,
)
from ._positions import PositionsMoved, first_after
from ._records import (
    EncodedCheckpoint,
    StoredValue,
    decode_checkpoint,
    decode_items,
    describe,
    metadata_matches,
)
from .base import BaseStore, Lease, ThreadInfo

if TYPE_CHECKING:
    from ..crypto import Encryption

__all__ = ["MemoryStore"]

T = TypeVar("T")


@dataclass
class _Item:
    seq: int
    data: bytes
    removed_at: int | None = None


@dataclass
class _Log:
    version: int = 0
    pinned: int = 0
    items: list[_Item] = field(default_factory=list[_Item])

    def live(self) -> list[_Item]:
        return [item for item in self.items if item.removed_at is None]

    def seen_at(self, version: int) -> list[_Item]:
        return [
            item
            for item in self.items
            if item.seq <= version and (item.removed_at is None or item.removed_at > version)
        ]

    def remove(self, item: _Item) -> None:
        """Delete ``item`` if no checkpoint can have seen it, else stamp it removed."""
        if item.seq > self.pinned:
            self.items.remove(item)
        else:
            item.removed_at = self.version


@dataclass
class _Checkpoint:
    checkpoint_id: str
    created_at: datetime
    metadata: dict[str, JSON]
    header: str
    payload: bytes
    logs: dict[str, int]


@dataclass
class _Thread:
    updated_at: float
    checkpoints: list[_Checkpoint] = field(default_factory=list[_Checkpoint])
    ids: set[str] = field(default_factory=set[str])
    logs: dict[str, _Log] = field(default_factory=dict[str, _Log])
    head: Envelope | None = None


@dataclass
class _Namespace:
    threads: dict[str, _Thread] = field(default_factory=dict[str, _Thread])
    leases: dict[str, Lease] = field(default_factory=dict[str, Lease])
    lock: threading.RLock = field(default_factory=threading.RLock)
    """Held for each whole operation, by every store sharing the namespace, in any thread."""


class MemoryStore(BaseStore):
    """Every thread in a dict, opened with ``memory://``.

    Stores built with the same ``shared`` dict see the same data, per namespace.
    """

    def __init__(
        self,
        *,
        namespace: str = "default",
        ttl: timedelta | None = None,
        keep_last: int | None = None,
        codec: PayloadCodec | None = None,
        shared: dict[str, _Namespace] | None = None,
        encryption: Encryption | None = None,
    ) -> None:
        super().__init__(
            namespace=namespace, ttl=ttl, keep_last=keep_last, codec=codec, encryption=encryption
        )
        self._namespaces: dict[str, _Namespace] = {} if shared is None else shared

    @property
    def _space(self) -> _Namespace:
        space = self._namespaces.get(self.namespace)
        if space is None:  # setdefault is atomic: two threads get the same one
            space = self._namespaces.setdefault(self.namespace, _Namespace())
        return space

    @property
    def _threads(self) -> dict[str, _Thread]:
        return self._space.threads

    @property
    def _leases(self) -> dict[str, Lease]:
        return self._space.leases

    async def _guarded(self, operation: Awaitable[T]) -> T:
        """Run one operation atomically, whichever thread or event loop calls.

        No operation of this store ever suspends, so it runs start to end under its
        namespace's thread lock (an ``asyncio.Lock`` would serve one loop only); one that
        suspended would be a bug, and fails instead of blocking the loop.
        """
        with self._space.lock:
            done = _run_to_end(operation)
        return await super()._guarded(done)

    async def _setup(self) -> None:
        """Nothing to create."""

    async def _close(self) -> None:
        """Nothing to release."""

    # -- threads -------------------------------------------------------------------------

    def _expired(self, thread: _Thread) -> bool:
        return self.ttl is not None and time.time() - thread.updated_at >= self.ttl.total_seconds()

    def _find(self, thread_id: str) -> _Thread | None:
        thread = self._threads.get(thread_id)
        return None if thread is None or self._expired(thread) else thread

    def _require(self, thread_id: str) -> _Thread:
        thread = self._find(thread_id)
        if thread is None or not thread.checkpoints:
            raise ThreadNotFoundError(f"{describe('memory', thread_id)} does not exist")
        return thread

    def _touch(self, thread_id: str, *, found: _Thread | None = None) -> _Thread:
        """The live thread (``found`` by the caller, or looked up), its TTL started again.

        A caller that checked the thread passes what it found, so a thread expiring in
        between is not replaced by a fresh one after the check.
        """
        thread = found or self._find(thread_id)
        if thread is None:
            thread = self._threads[thread_id] = _Thread(updated_at=time.time())
        thread.updated_at = time.time()
        return thread

    async def _put(
        self,
        envelope: Envelope,
        encoded: EncodedCheckpoint,
        sealed: Mapping[str, Sequence[bytes]],
        lease: Lease | None,
        clear: Sequence[str],
        first: Mapping[str, int] | None,
    ) -> Envelope:
        with self._space.lock:  # re-entered: _guarded holds it already
            self._check_lease(lease)
            thread = self._find(envelope.thread_id)
            head = thread.head.checkpoint_id if thread and thread.head else None
            if head != envelope.parent_id:
                raise ConflictError(
                    f"{describe('memory', envelope.thread_id)}: expected head "
                    f"{envelope.parent_id!r} but the head is {head!r}"
                )
            if thread and envelope.checkpoint_id in thread.ids:
                raise ConflictError(
                    f"{describe('memory', envelope.thread_id, envelope.checkpoint_id)} exists"
                )
            if first is not None:
                self._check_positions(thread, first, clear)
            thread = self._touch(envelope.thread_id, found=thread)
            for name in clear:
                self._empty(thread, name)
            for name, items in sealed.items():
                self._add_items(thread, name, items)
            versions = {name: log.version for name, log in thread.logs.items()}
            for log in thread.logs.values():
                log.pinned = log.version
            stored = envelope.model_copy(update={"logs": versions})
            thread.ids.add(envelope.checkpoint_id)
            thread.checkpoints.append(
                _Checkpoint(
                    checkpoint_id=envelope.checkpoint_id,
                    created_at=envelope.created_at,
                    metadata=envelope.metadata,
                    header=encoded.header,
                    payload=encoded.payload,
                    logs=versions,
                )
            )
            thread.head = stored
            if self.keep_last is not None:
                self._trim(thread, keep_last=self.keep_last, older_than=None)
            return stored

    def _decode(self, thread_id: str, checkpoint: _Checkpoint) -> Envelope:
        return decode_checkpoint(
            checkpoint.header,
            checkpoint.payload,
            checkpoint.logs,
            codec=self.codec,
            where=describe("memory", thread_id, checkpoint.checkpoint_id),
            thread_id=thread_id,
            checkpoint_id=checkpoint.checkpoint_id,
        )

    def _checkpoint(self, thread_id: str, thread: _Thread, checkpoint_id: str) -> int:
        for index, checkpoint in enumerate(thread.checkpoints):
            if checkpoint.checkpoint_id == checkpoint_id:
                return index
        raise CheckpointNotFoundError(f"{describe('memory', thread_id, checkpoint_id)} not found")

    async def _get(self, thread_id: str, checkpoint_id: str | None) -> Envelope:
        thread = self._require(thread_id)
        if checkpoint_id is None:
            return self._decode(thread_id, thread.checkpoints[-1])
        index = self._checkpoint(thread_id, thread, checkpoint_id)
        return self._decode(thread_id, thread.checkpoints[index])

    async def _list_checkpoints(
        self, thread_id: str, *, limit: int | None, before: str | None, wanted: dict[str, JSON]
    ) -> list[Envelope]:
        thread = self._require(thread_id)
        end = len(thread.checkpoints)
        if before is not None:
            end = self._checkpoint(thread_id, thread, before)
        found: list[Envelope] = []
        for checkpoint in reversed(thread.checkpoints[:end]):
            if limit is not None and len(found) >= limit:
                break
            if metadata_matches(checkpoint.metadata, wanted):
                found.append(self._decode(thread_id, checkpoint))
        return found

    async def _list_threads(
        self, *, wanted: dict[str, JSON], limit: int | None
    ) -> list[ThreadInfo]:
        infos: list[ThreadInfo] = []
        for thread_id in list(self._threads):
            thread = self._find(thread_id)
            if thread is None:
                continue
            head = thread.head
            if not metadata_matches(head.metadata if head else {}, wanted):
                continue
            infos.append(
                ThreadInfo(
                    thread_id=thread_id,
                    head_id=head.checkpoint_id if head else None,
                    kind=head.kind if head else None,
                    schema_version=head.schema_version if head else None,
                    step=head.step if head else -1,
                    status=head.status if head else None,
                    checkpoint_count=len(thread.checkpoints),
                    metadata=dict(head.metadata) if head else {},
                    updated_at=datetime.fromtimestamp(thread.updated_at, timezone.utc),
                )
            )
        infos.sort(key=lambda info: info.updated_at, reverse=True)
        return infos if limit is None else infos[:limit]

    async def _thread_exists(self, thread_id: str) -> bool:
        return self._find(thread_id) is not None

    async def _delete_thread(self, thread_id: str) -> bool:
        self._leases.pop(thread_id, None)
        existed = self._find(thread_id) is not None
        self._threads.pop(thread_id, None)
        return existed

    async def _stored_values(self, thread_id: str) -> list[StoredValue]:
        thread = self._find(thread_id)
        if thread is None:
            return []
        values = [
            StoredValue(None, c.checkpoint_id, c.header, c, c.payload) for c in thread.checkpoints
        ]
        for name, log in thread.logs.items():
            values.extend(
                StoredValue(name, None, None, item, item.data, item.seq) for item in log.items
            )
        return values

    async def _replace_values(
        self, thread_id: str, changes: Sequence[tuple[StoredValue, bytes]]
    ) -> int:
        thread = self._find(thread_id)
        if thread is None:
            return 0
        present = {id(c) for c in thread.checkpoints}
        present.update(id(item) for log in thread.logs.values() for item in log.items)
        replaced = 0
        for value, data in changes:
            target = value.locator
            if id(target) not in present:
                continue  # removed since it was read
            if isinstance(target, _Checkpoint) and target.payload == value.data:
                target.payload = data
                replaced += 1
            elif isinstance(target, _Item) and target.data == value.data:
                target.data = data
                replaced += 1
        return replaced

    # -- logs ----------------------------------------------------------------------------

    @staticmethod
    def _add_items(thread: _Thread, name: str, items: Sequence[bytes]) -> None:
        log = thread.logs.setdefault(name, _Log())
        for data in items:
            log.version += 1
            log.items.append(_Item(seq=log.version, data=data))

    async def _append(
        self,
        thread_id: str,
        log: str,
        sealed: Sequence[bytes],
        lease: Lease | None,
        first: int | None,
    ) -> None:
        self._check_lease(lease)
        thread = self._find(thread_id)
        if first is not None:
            self._check_positions(thread, {log: first}, ())
        self._add_items(self._touch(thread_id, found=thread), log, sealed)

    @staticmethod
    def _check_positions(
        thread: _Thread | None, first: Mapping[str, int], clear: Sequence[str]
    ) -> None:
        """Refuse a write whose items were sealed for other positions than they would take."""
        now: dict[str, int] = {}
        for name in first:
            log = thread.logs.get(name) if thread is not None else None
            if log is None:
                now[name] = 1
                continue
            clearing = name in clear
            live = clearing and any(item.removed_at is None for item in log.items)
            now[name] = first_after(log.version, clearing=clearing, live=live)
        if now != first:
            raise PositionsMoved(now)

    def _items(self, thread_id: str, log: str, version: int | None = None) -> list[_Item]:
        """The live items, or those log version ``version`` held."""
        thread = self._find(thread_id)
        stored = thread.logs.get(log) if thread else None
        if stored is None:
            return []
        return stored.live() if version is None else stored.seen_at(version)

    def _decode_items(self, thread_id: str, log: str, items: list[_Item]) -> list[JSON]:
        where = f"{describe('memory', thread_id)}: log {log!r}"
        return decode_items(
            [item.data for item in items],
            self.codec.for_log(thread_id, log),
            positions=[item.seq for item in items],
            where=lambda i: f"{where} item {items[i].seq}",
        )

    async def _read_log(
        self, thread_id: str, log: str, *, start: int, stop: int | None, version: int | None
    ) -> list[JSON]:
        return self._decode_items(thread_id, log, self._items(thread_id, log, version)[start:stop])

    async def _tail(self, thread_id: str, log: str, count: int) -> list[JSON]:
        items = self._items(thread_id, log)
        return self._decode_items(thread_id, log, items[max(0, len(items) - count) :])

    async def _log_length(self, thread_id: str, log: str) -> int:
        return len(self._items(thread_id, log))

    async def _list_logs(self, thread_id: str) -> list[str]:
        thread = self._find(thread_id)
        return [] if thread is None else list(thread.logs)

    async def _pop(self, thread_id: str, log: str) -> JSON | None:
        live = self._items(thread_id, log)
        if not live:
            return None
        item = self._decode_items(thread_id, log, live[-1:])[0]  # a bad item stays put
        thread = self._touch(thread_id)
        stored = thread.logs[log]
        stored.version += 1
        stored.remove(live[-1])
        return item

    async def _clear_log(self, thread_id: str, log: str) -> None:
        if self._items(thread_id, log):
            self._empty(self._touch(thread_id), log)

    @staticmethod
    def _empty(thread: _Thread, name: str) -> None:
        """Remove every live item of a log in one new version; nothing if it has none."""
        stored = thread.logs.get(name)
        live = stored.live() if stored is not None else []
        if stored is None or not live:
            return
        stored.version += 1
        for item in live:
            stored.remove(item)

    # -- leases --------------------------------------------------------------------------

    async def _acquire_lease(
        self, thread_id: str, owner: str, *, ttl: timedelta, take_over: str | None
    ) -> Lease:
        now = datetime.now(timezone.utc)
        held = self._leases.get(thread_id)
        if (
            held is not None
            and held.expires_at > now
            and held.owner != owner
            and held.owner != take_over
        ):
            raise LeaseHeldError(
                f"{describe('memory', thread_id)} is leased to {held.owner!r} "
                f"until {held.expires_at.isoformat()}",
                holder=held.owner,
                expires_at=held.expires_at,
            )
        lease = Lease(thread_id, owner, secrets.token_hex(16), now + ttl)
        self._leases[thread_id] = lease
        return lease

    def _check_lease(self, lease: Lease | None) -> None:
        """Refuse a write whose lease is not the thread's current, unexpired one."""
        if lease is None:
            return
        held = self._leases.get(lease.thread_id)
        if (
            held is None
            or held.token != lease.token
            or held.expires_at <= datetime.now(timezone.utc)
        ):
            raise LeaseLostError(
                f"{describe('memory', lease.thread_id)}: the lease of {lease.owner!r} "
                "expired or was taken over; nothing was written"
            )

    async def _renew_lease(self, lease: Lease, *, ttl: timedelta) -> Lease:
        now = datetime.now(timezone.utc)
        held = self._leases.get(lease.thread_id)
        if held is None or held.token != lease.token or held.expires_at <= now:
            raise LeaseLostError(
                f"{describe('memory', lease.thread_id)}: the lease of {lease.owner!r} "
                "expired or was taken over"
            )
        renewed = Lease(lease.thread_id, lease.owner, lease.token, now + ttl)
        self._leases[lease.thread_id] = renewed
        return renewed

    async def _release_lease(self, lease: Lease) -> None:
        held = self._leases.get(lease.thread_id)
        if held is not None and held.token == lease.token:
            del self._leases[lease.thread_id]

    # -- retention -----------------------------------------------------------------------

    async def _prune(
        self, thread_id: str, *, keep_last: int | None, older_than: timedelta | None
    ) -> int:
        thread = self._require(thread_id)
        return self._trim(thread, keep_last=keep_last, older_than=older_than)

    @staticmethod
    def _trim(thread: _Thread, *, keep_last: int | None, older_than: timedelta | None) -> int:
        if keep_last is None and older_than is None:
            return 0
        cutoff = datetime.now(timezone.utc) - older_than if older_than is not None else None
        newest_first = list(reversed(thread.checkpoints))
        keep: list[_Checkpoint] = []
        for index, checkpoint in enumerate(newest_first):
            outside_last = keep_last is None or index >= max(keep_last, 1)
            old_enough = cutoff is None or checkpoint.created_at < cutoff
            if index > 0 and outside_last and old_enough:
                continue
            keep.append(checkpoint)
        removed = len(thread.checkpoints) - len(keep)
        thread.checkpoints = list(reversed(keep))
        thread.ids = {checkpoint.checkpoint_id for checkpoint in keep}
        for name, log in thread.logs.items():
            versions = [c.logs[name] for c in keep if name in c.logs]
            log.items = [
                item
                for item in log.items
                if item.removed_at is None or any(item.seq <= v < item.removed_at for v in versions)
            ]
        return removed

    async def _purge_expired(self) -> int:
        expired = [tid for tid, thread in self._threads.items() if self._expired(thread)]
        for thread_id in expired:
            del self._threads[thread_id]
        return len(expired)


async def _settled(outcome: Any, error: BaseException | None) -> Any:
    if error is not None:
        raise error
    return outcome


def _run_to_end(operation: Awaitable[T]) -> Awaitable[T]:
    """Drive ``operation`` to its end now; an awaitable of its result or its exception."""
    steps: Generator[Any, None, T] = operation.__await__()
    try:
        steps.send(None)
    except StopIteration as finished:
        return _settled(finished.value, None)
    except BaseException as exc:  # handed to the caller's await
        return _settled(None, exc)
    steps.close()
    return _settled(None, RuntimeError("a MemoryStore operation suspended while holding its lock"))
