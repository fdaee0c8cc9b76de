"""The key store: each thread's wrapped data key, kept in a store of its own.

It is an ordinary agent-persist store (a namespace of its own on the data's back end by
default, or another URL), written in clear: a wrapped key is useless without the key ring.
A thread's data key is the head checkpoint of the key store thread of the same id, so
creating one is a ``put`` with no parent (of concurrent writers exactly one wins), rekeying
is a ``put`` on top and a prune of the old wrap, and shredding is ``delete_thread``.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..envelope import Envelope, Producer
from ..errors import ConflictError, CorruptCheckpointError, ThreadNotFoundError

if TYPE_CHECKING:
    from ..stores.base import BaseStore

__all__ = ["KEY_KIND", "KeyStore", "WrappedKey"]

KEY_KIND = "agent_persist.data_key"
_PRODUCER = Producer(package="agent-persist")


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A thread's data key as stored: the id of the key that wrapped it, and the wrap."""

    key_id: str
    wrapped: bytes
    checkpoint_id: str
    serial: str | None = None
    """Random, made with the data key and kept by a re-wrap: tells "same key, wrapped
    anew" (a rekey) from "another key" (the thread was shredded and started again) without
    unwrapping. ``None`` for keys stored before it existed."""


class KeyStore:
    """Wrapped data keys by thread id, over any agent-persist store."""

    def __init__(self, store: BaseStore, *, owned: bool) -> None:
        self.store = store
        self.owned = owned

    async def setup(self) -> None:
        """Set the underlying store up."""
        await self.store.setup()

    async def close(self) -> None:
        """Close the underlying store if this key store opened it."""
        if self.owned:
            await self.store.close()

    async def get(self, thread_id: str) -> WrappedKey | None:
        """The thread's wrapped data key, or ``None`` if it has none (never had, or shredded)."""
        try:
            head = await self.store.get(thread_id)
        except ThreadNotFoundError:
            return None
        return _decode(head)

    async def create(self, thread_id: str, key_id: str, wrapped: bytes) -> WrappedKey:
        """Store a first data key for the thread; the one already there if another won."""
        first = Envelope.create(
            kind=KEY_KIND,
            schema_version=1,
            thread_id=thread_id,
            payload=_payload(key_id, wrapped, os.urandom(12).hex()),
            producer=_PRODUCER,
        )
        try:
            return _decode(await self.store.put(first))
        except ConflictError:
            found = await self.get(thread_id)
            if found is None:
                raise
            return found

    async def replace(self, thread_id: str, old: WrappedKey, key_id: str, wrapped: bytes) -> None:
        """Store the same data key wrapped anew, and delete the old wrap."""
        current = await self.store.get(thread_id, old.checkpoint_id)
        await self.store.put(
            Envelope.create(
                kind=KEY_KIND,
                schema_version=1,
                thread_id=thread_id,
                payload=_payload(key_id, wrapped, old.serial),
                producer=_PRODUCER,
                parent_id=current.checkpoint_id,
                step=current.step + 1,
            )
        )
        await self.store.prune(thread_id, keep_last=1)

    async def delete(self, thread_id: str) -> bool:
        """Destroy the thread's data key."""
        return await self.store.delete_thread(thread_id)

    async def thread_ids(self) -> list[str]:
        """Every thread that has a data key."""
        return [info.thread_id for info in await self.store.list_threads()]


def _payload(key_id: str, wrapped: bytes, serial: str | None) -> dict[str, Any]:
    payload = {"key_id": key_id, "wrapped": base64.b64encode(wrapped).decode("ascii")}
    if serial is not None:
        payload["serial"] = serial
    return payload


def _decode(envelope: Envelope) -> WrappedKey:
    payload = envelope.payload
    if envelope.kind != KEY_KIND or not isinstance(payload, dict):
        raise CorruptCheckpointError(
            f"key store: thread {envelope.thread_id!r} holds no data key ({envelope.kind!r})"
        )
    fields = cast("dict[str, Any]", payload)
    try:
        key_id = fields["key_id"]
        wrapped = base64.b64decode(fields["wrapped"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptCheckpointError(
            f"key store: the data key of thread {envelope.thread_id!r} is damaged ({exc})"
        ) from exc
    serial = fields.get("serial")
    if not isinstance(key_id, str) or not isinstance(serial, str | None):
        raise CorruptCheckpointError(
            f"key store: the data key of thread {envelope.thread_id!r} has no key id"
        )
    return WrappedKey(
        key_id=key_id, wrapped=wrapped, checkpoint_id=envelope.checkpoint_id, serial=serial
    )
