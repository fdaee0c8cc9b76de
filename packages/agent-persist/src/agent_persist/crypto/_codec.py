"""The sealing codec: AES-256-GCM under each thread's data key, bound to where a value lives.

A sealed value's frame is the inner chain's followed by ``+aes256gcm`` (for example
``json+zlib+aes256gcm:``): the inner chain (compression) runs first, then the result is
encrypted. Values whose frame does not end so (written before encryption was turned on) are
read through the inner chain as they always were.

The associated data (authenticated, not stored) of a log item is its namespace, thread, log
name and position (its ``seq``: the log's version its append produced, never reused); that
of a payload is its namespace, thread, checkpoint id and header (kind, schema version,
parent, step, status, stop reason, metadata, checksum). So an item copied to another
place of its own log, or to another log, thread or namespace, fails to open, and so do
items reordered. Items sealed before positions were bound (first byte
:data:`~._aead.VERSION` instead of :data:`~._aead.POSITIONED`) open without one;
``agent-persist seal`` re-seals them with theirs.

Text columns (the content of the SQL audit tables) are sealed by :meth:`SealingCodec.seal_text`
under the same data key as ``aes256gcm:`` and base64, bound to namespace, thread and place
(table, column, log position), so a value copied to another row, column or thread fails.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, cast

from .._json import JSON, canonical_json
from ..codecs import PayloadCodec
from ..errors import AgentPersistError, DecryptionError, EncryptionError, ShreddedThreadError
from ..stores._records import SEALED_TEXT_PREFIX, StoredValue, is_sealed
from . import _aead

if TYPE_CHECKING:
    from ._keyring import KeyManagementService
    from ._keystore import KeyStore, WrappedKey

__all__ = ["SEALED", "TEXT_PREFIX", "SealingCodec"]

SEALED = "aes256gcm"
TEXT_PREFIX = SEALED_TEXT_PREFIX
"""How a sealed text column starts (then the base64 of the sealed bytes)."""
_SEALED_SUFFIX = b"+" + SEALED.encode()
_BOUND_HEADER = (
    "kind",
    "schema_version",
    "parent_id",
    "step",
    "status",
    "stop_reason",
    "metadata",
    "checksum",
)


def key_context(namespace: str, thread_id: str) -> bytes:
    """What a wrapped data key is bound to: a wrap copied to another thread fails to open."""
    return canonical_json(["agent-persist:data-key:v1", namespace, thread_id])


class SealingCodec(PayloadCodec):
    """A store's codec when it encrypts: holds the data keys of the threads it has used."""

    def __init__(
        self,
        inner: PayloadCodec,
        *,
        namespace: str,
        keys: KeyManagementService,
        key_store: KeyStore,
    ) -> None:
        super().__init__()
        self.inner = inner
        self.namespace = namespace
        self.keys = keys
        self.key_store = key_store
        self._data_keys: dict[str, _aead.AESGCM | None] = {}
        self._held: dict[str, WrappedKey] = {}
        """Per thread: the wrap of the data key loaded (to tell whether it is still current)."""
        self._plain: dict[str, bytes] = {}

    @property
    def name(self) -> str:
        """The inner chain followed by ``+aes256gcm``."""
        return f"{self.inner.name}+{SEALED}"

    # -- data keys -----------------------------------------------------------------------

    async def load(self, thread_id: str, *, create: bool) -> None:
        """Have the thread's data key at hand (made and stored first if ``create``).

        A write (``create``) always asks the key store whether the key held in memory is
        still the thread's: another store may have deleted (shredded) the thread since,
        and sealing under a destroyed key would write data nobody can read. That is a
        :class:`ShreddedThreadError` (the key is forgotten, so writing again starts the
        thread afresh under a new key). A read trusts the key held; see :meth:`stale`.
        """
        held = self._held.get(thread_id)
        if held is not None and not create:
            return
        wrapped = await self.key_store.get(thread_id)
        if held is not None:
            if wrapped is not None and await self._same_key(thread_id, held, wrapped):
                return
            self.forget(thread_id)
            raise ShreddedThreadError(
                f"thread {thread_id!r}: its data key was destroyed (the thread was deleted or "
                "shredded by another store) while this store held it; nothing was written. "
                "Writing again starts the thread afresh under a new data key"
            )
        if wrapped is None and create:
            data_key = _aead.new_key()
            key_id = self.keys.primary_key_id
            context = key_context(self.namespace, thread_id)
            blob = await self._call(
                thread_id, self.keys.wrap(key_id, data_key, associated_data=context)
            )
            wrapped = await self.key_store.create(thread_id, key_id, blob)
        if wrapped is None:
            self._data_keys[thread_id] = None
            return
        plain = await self.unwrap(thread_id, wrapped)
        self._held[thread_id] = wrapped
        self._plain[thread_id] = plain
        self._data_keys[thread_id] = _aead.AESGCM(plain)

    async def _same_key(self, thread_id: str, held: WrappedKey, stored: WrappedKey) -> bool:
        """Whether ``stored`` wraps the key held (the same wrap, or one a rekey made)."""
        if stored.checkpoint_id != held.checkpoint_id:
            if held.serial is not None or stored.serial is not None:
                if stored.serial != held.serial:
                    return False
            elif await self.unwrap(thread_id, stored) != self._plain[thread_id]:
                return False  # keys stored before serials: compared by unwrapping
        self._held[thread_id] = stored
        return True

    async def stale(self, thread_id: str) -> bool:
        """Whether the key held for the thread is no longer its key in the key store.

        Forgets it if so (the next :meth:`load` reads the key store again): the thread was
        deleted by another store, and perhaps started again under a new key.
        """
        held = self._held.get(thread_id)
        if held is None:
            if thread_id in self._data_keys:  # known to have no key: perhaps it has one now
                self.forget(thread_id)
                return True
            return False
        wrapped = await self.key_store.get(thread_id)
        if wrapped is not None and await self._same_key(thread_id, held, wrapped):
            return False
        self.forget(thread_id)
        return True

    async def unwrap(self, thread_id: str, wrapped: WrappedKey) -> bytes:
        """The plain data key of a stored wrap; typed errors naming the thread."""
        context = key_context(self.namespace, thread_id)
        key = await self._call(
            thread_id, self.keys.unwrap(wrapped.key_id, wrapped.wrapped, associated_data=context)
        )
        if len(key) != _aead.KEY_BYTES:
            raise DecryptionError(
                f"thread {thread_id!r}: the key service unwrapped {len(key)} bytes, not a "
                f"{_aead.KEY_BYTES}-byte data key"
            )
        return key

    async def _call(self, thread_id: str, operation: Awaitable[bytes]) -> bytes:
        try:
            result = await operation
        except EncryptionError as exc:
            raise type(exc)(f"thread {thread_id!r}: {exc}") from exc
        except AgentPersistError:
            raise
        except Exception as exc:
            raise DecryptionError(
                f"thread {thread_id!r}: the key service failed on its data key: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(result, bytes) or len(result) == 0:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise DecryptionError(f"thread {thread_id!r}: the key service returned no bytes")
        return result

    def forget(self, thread_id: str) -> None:
        """Drop the thread's data key from memory (it was shredded)."""
        self._data_keys.pop(thread_id, None)
        self._held.pop(thread_id, None)
        self._plain.pop(thread_id, None)

    def data_key(self, thread_id: str, where: str) -> _aead.AESGCM:
        """The loaded data key's cipher; :class:`ShreddedThreadError` if the thread has none."""
        key = self._data_keys.get(thread_id)
        if key is None:
            raise ShreddedThreadError(
                f"{where}: thread {thread_id!r} is sealed but its data key is gone "
                "(crypto-shredded, or the key store is not the one it was written with)"
            )
        return key

    # -- binding -------------------------------------------------------------------------

    def for_log(self, thread_id: str, log: str) -> PayloadCodec:
        """Items of one log, bound to namespace, thread and log name."""
        context: JSON = ["agent-persist:item:v1", self.namespace, thread_id, log]
        return _Bound(self, thread_id, context)

    def for_checkpoint(
        self, thread_id: str, checkpoint_id: str, header: Mapping[str, object]
    ) -> PayloadCodec:
        """A payload, bound to namespace, thread, checkpoint and header."""
        bound = {name: header.get(name) for name in _BOUND_HEADER}
        context = ["agent-persist:payload:v1", self.namespace, thread_id, checkpoint_id, bound]
        return _Bound(self, thread_id, cast("JSON", context))

    def seal_text(self, thread_id: str, place: JSON, text: str) -> str:
        """A text column sealed under the thread's data key: ``aes256gcm:`` and base64.

        The associated data binds it to namespace, thread and ``place`` (for the audit
        tables: table, column and the row's log position), so a value copied to another
        row, column or thread fails to open.
        """
        key = self.data_key(thread_id, "an audit column")
        sealed = _aead.seal(
            key, text.encode("utf-8", "surrogatepass"), self._column(thread_id, place)
        )
        return TEXT_PREFIX + base64.b64encode(sealed).decode("ascii")

    def open_text(self, thread_id: str, place: JSON, stored: str, *, where: str) -> str:
        """Undo :meth:`seal_text`; a value without the prefix was written in clear before."""
        if not stored.startswith(TEXT_PREFIX):
            return stored
        key = self.data_key(thread_id, where)
        try:
            sealed = base64.b64decode(stored[len(TEXT_PREFIX) :], validate=True)
            plain = _aead.open_sealed(key, sealed, self._column(thread_id, place))
            return plain.decode("utf-8", "surrogatepass")
        except (_aead.InvalidTag, ValueError) as exc:
            raise DecryptionError(
                f"{where}: the sealed column of thread {thread_id!r} does not open: it was "
                "tampered with or copied from another row, column, thread or namespace"
            ) from exc

    def _column(self, thread_id: str, place: JSON) -> bytes:
        return canonical_json(["agent-persist:column:v1", self.namespace, thread_id, place])

    @staticmethod
    def sealed_in_place(value: StoredValue) -> bool:
        """Whether a stored value is sealed as this code seals it (items: with a position)."""
        if not is_sealed(value.data):
            return False
        if value.log is None:
            return True
        _, _, body = value.data.partition(b":")
        return body[:1] == _aead.POSITIONED

    def seal_bytes(self, encoded: bytes, *, what: str = "payload") -> bytes:
        """Refused: a sealed value must know where it goes (use :meth:`for_log`)."""
        raise EncryptionError(f"{what}: an encrypting codec seals only bound to a thread")

    @property
    def seals_logs(self) -> bool:
        """Log items are sealed: reads open them (see :class:`PayloadCodec`)."""
        return True

    def unseal(self, sealed: bytes, *, where: str = "stored value") -> bytes:
        """A value in clear (written before encryption); a sealed one needs a binding."""
        if is_sealed(sealed):
            raise DecryptionError(f"{where}: a sealed value read without its thread")
        return self.inner.unseal(sealed, where=where)


_PLAIN_SEALED = b"json" + _SEALED_SUFFIX + b":"
_PLAIN = b"json:"
_SEALED_HEAD = _PLAIN_SEALED + _aead.VERSION
_POSITIONED_HEAD = _PLAIN_SEALED + _aead.POSITIONED
_HEAD_SIZE = len(_SEALED_HEAD)
_NONCE = _aead.NONCE_BYTES


def _fail() -> bytes:
    raise ValueError("not a sealed plain JSON item")


class _Bound(PayloadCodec):
    """A :class:`SealingCodec` bound to one thread and place (a log, or a checkpoint)."""

    def __init__(self, owner: SealingCodec, thread_id: str, context: JSON) -> None:
        super().__init__()
        self._owner = owner
        self._thread_id = thread_id
        self._context = canonical_json(context, max_depth=None)

    @property
    def name(self) -> str:
        """The owner's frame name."""
        return self._owner.name

    @property
    def seals_logs(self) -> bool:
        """Log items are sealed: reads open them (see :class:`PayloadCodec`)."""
        return True

    def _associated(self, inner_frame: bytes, position: int | None = None) -> bytes:
        bound = self._context + b"\n" + inner_frame
        return bound if position is None else b"%s\n%d" % (bound, position)

    def seal_bytes(self, encoded: bytes, *, what: str = "payload") -> bytes:
        """Run the inner chain, then encrypt under the thread's data key (a payload)."""
        return self._seal_one(encoded, None, what=what)

    def _seal_one(self, encoded: bytes, position: int | None, *, what: str) -> bytes:
        inner = self._owner.inner.seal_bytes(encoded, what=what)
        frame, _, body = inner.partition(b":")
        key = self._owner.data_key(self._thread_id, what)
        version = _aead.VERSION if position is None else _aead.POSITIONED
        sealed = _aead.seal(key, body, self._associated(frame, position), version=version)
        return frame + _SEALED_SUFFIX + b":" + sealed

    def seal_items(self, encoded: Sequence[bytes], *, first: int, what: str) -> list[bytes]:
        """Log items sealed in one loop, each bound to its position ``first + i``.

        One call for all the nonces, no call per value; items through a compressing inner
        chain go one by one.
        """
        if self._owner.inner.name != "json":
            return [self._seal_one(value, first + i, what=what) for i, value in enumerate(encoded)]
        encrypt = self._owner.data_key(self._thread_id, what).encrypt
        associated = self._associated(b"json")
        block = os.urandom(_NONCE * len(encoded))
        head = _POSITIONED_HEAD
        sealed: list[bytes] = []
        for i, value in enumerate(encoded):
            nonce = block[i * _NONCE : (i + 1) * _NONCE]
            sealed.append(head + nonce + encrypt(nonce, value, b"%s\n%d" % (associated, first + i)))
        return sealed

    def open_all(self, sealed: Sequence[bytes], positions: Sequence[int]) -> list[bytes] | None:
        """Many items opened in one loop, as plain JSON frames; ``None`` at any doubt.

        Sealed plain-JSON items are decrypted (bound to their positions, or not for items
        sealed before positions were), items in clear (written before encryption was
        turned on) pass as they are; anything else (a compressed item, a damaged one)
        gives ``None``, and the caller opens item by item to name it.
        """
        end = _HEAD_SIZE + _NONCE
        try:
            decrypt = self._owner.data_key(self._thread_id, "").decrypt
            associated = self._associated(b"json")
            opened: list[bytes] = []
            for data, position in zip(sealed, positions, strict=True):
                head = data[:_HEAD_SIZE]
                if head == _POSITIONED_HEAD:
                    bound = b"%s\n%d" % (associated, position)
                    opened.append(_PLAIN + decrypt(data[_HEAD_SIZE:end], data[end:], bound))
                elif head == _SEALED_HEAD:
                    opened.append(_PLAIN + decrypt(data[_HEAD_SIZE:end], data[end:], associated))
                else:
                    opened.append(data if data[:5] == _PLAIN else _fail())
        except Exception:
            return None
        return opened

    def unseal(self, sealed: bytes, *, where: str = "stored value") -> bytes:
        """Decrypt a payload (a clear value passes to the inner chain), then the inner chain."""
        return self._open_one(sealed, None, where=where)

    def unseal_item(self, sealed: bytes, position: int, *, where: str) -> bytes:
        """Decrypt the log item at ``position``, then undo the inner chain."""
        return self._open_one(sealed, position, where=where)

    def _open_one(self, sealed: bytes, position: int | None, *, where: str) -> bytes:
        data = bytes(sealed)
        if not is_sealed(data):
            return self._owner.inner.unseal(data, where=where)
        frame, _, body = data.partition(b":")
        inner_frame = frame[: -len(_SEALED_SUFFIX)]
        key = self._owner.data_key(self._thread_id, where)
        bound = position if body[:1] == _aead.POSITIONED else None
        try:
            plain = _aead.open_sealed(key, body, self._associated(inner_frame, bound))
        except (_aead.InvalidTag, ValueError) as exc:
            raise DecryptionError(
                f"{where}: the sealed value of thread {self._thread_id!r} does not open: it "
                "was tampered with, moved within its log, copied from another row, thread "
                "or namespace, or its header was edited"
            ) from exc
        return self._owner.inner.unseal(inner_frame + b":" + plain, where=where)
