"""The codec layer every stored payload and log item passes through.

A value is first encoded as canonical JSON, then each codec of the chain transforms the bytes
(compression, encryption), and the result is framed with the chain's name so any reader knows
how to undo it::

    codec = PayloadCodec([ZlibCodec()])
    sealed = codec.seal({"messages": ["hi"]})   # b"json+zlib:" + compressed bytes
    assert codec.unseal(sealed) == {"messages": ["hi"]}

Stores and adapters only call ``seal`` and ``unseal``, so adding a codec changes neither.
Reading needs only the codecs named in the frame to be registered (with
:func:`register_codec`), whatever chain the reader itself writes with.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from ._json import JSON, canonical_json
from .errors import AgentPersistError, CodecError, InvalidPayloadError

__all__ = ["MAX_DECODED_SIZE", "Codec", "PayloadCodec", "ZlibCodec", "register_codec"]

_BASE = "json"
_SEPARATOR = b":"
_SEALED = "aes256gcm"  # agent_persist.crypto's frame name, opened only by an encrypted store


@runtime_checkable
class Codec(Protocol):
    """A reversible transformation of bytes, such as compression or encryption."""

    @property
    def name(self) -> str:
        """A short unique name made of letters, digits, ``-`` and ``_``."""
        ...

    def encode(self, data: bytes) -> bytes:
        """Transform bytes on the way into the store."""
        ...

    def decode(self, data: bytes) -> bytes:
        """Undo :meth:`encode` on the way out; raise any exception on bad input."""
        ...


MAX_DECODED_SIZE = 64 * 2**20
"""The most bytes :class:`ZlibCodec` decompresses one stored value to (64 MiB) by default.

Decompression runs before the checksum can be verified, so a damaged or hostile value of a
few hundred kilobytes could otherwise expand to gigabytes; one that would expand further is
refused as a :class:`~agent_persist.errors.CodecError`, and writing a value larger than the
limit is refused, so every value written can be read back.
"""


class ZlibCodec:
    """Compression with the standard library's zlib; worth it for payloads above ~1 KiB.

    ``max_decoded_size`` bounds what one value may expand to (see :data:`MAX_DECODED_SIZE`);
    readers use the instance registered under ``"zlib"`` (:func:`register_codec`).
    """

    name = "zlib"

    def __init__(self, level: int = 6, *, max_decoded_size: int = MAX_DECODED_SIZE) -> None:
        if not isinstance(max_decoded_size, int) or max_decoded_size < 1:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"max_decoded_size must be a positive int, got {max_decoded_size!r}")
        self._level = level
        self.max_decoded_size = max_decoded_size

    def encode(self, data: bytes) -> bytes:
        """Compress; refuses what could not be decompressed again under the limit."""
        if len(data) > self.max_decoded_size:
            raise ValueError(
                f"{len(data)} bytes is more than the {self.max_decoded_size} bytes "
                "ZlibCodec(max_decoded_size=...) allows"
            )
        return zlib.compress(data, self._level)

    def decode(self, data: bytes) -> bytes:
        """Decompress at most ``max_decoded_size`` bytes: never an unbounded allocation."""
        inflater = zlib.decompressobj()
        decoded = inflater.decompress(data, self.max_decoded_size + 1)
        if len(decoded) > self.max_decoded_size:
            raise ValueError(f"it expands to more than {self.max_decoded_size} bytes")
        if not inflater.eof:
            raise ValueError("incomplete or truncated zlib stream")
        return decoded


_registry: dict[str, Codec] = {}


def register_codec(codec: Codec) -> None:
    """Make ``codec`` available to every reader in this process, by its name."""
    name = codec.name
    if not name or name == _BASE or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"invalid codec name {name!r}: use letters, digits, '-' and '_'")
    _registry[name] = codec


register_codec(ZlibCodec())


class PayloadCodec:
    """Canonical JSON followed by a chain of codecs, framed with the chain's name."""

    def __init__(self, codecs: Sequence[Codec] = ()) -> None:
        for codec in codecs:
            if _registry.get(codec.name) is not codec:
                register_codec(codec)
        self._codecs = tuple(codecs)
        self._own = {codec.name: codec for codec in codecs}
        self._frame = "+".join([_BASE, *(c.name for c in codecs)]).encode() + _SEPARATOR

    @property
    def name(self) -> str:
        """The chain as written in the frame, for example ``json+zlib``."""
        return self._frame[:-1].decode()

    def for_log(self, thread_id: str, log: str) -> PayloadCodec:
        """The codec that seals and opens the items of one log (itself, unless it encrypts).

        An encrypting codec (:mod:`agent_persist.crypto`) binds each item to its namespace,
        thread and log, so an item copied elsewhere fails to open.
        """
        del thread_id, log
        return self

    def for_checkpoint(
        self, thread_id: str, checkpoint_id: str, header: Mapping[str, object]
    ) -> PayloadCodec:
        """The codec for one checkpoint's payload, bound to its header when it encrypts."""
        del thread_id, checkpoint_id, header
        return self

    def seal_text(self, thread_id: str, place: JSON, text: str) -> str:
        """A text column's value as stored (the audit tables' content).

        Itself, unless the codec encrypts: then sealed under the thread's data key and
        bound to ``place``.
        """
        del thread_id, place
        return text

    def open_text(self, thread_id: str, place: JSON, stored: str, *, where: str) -> str:
        """Undo :meth:`seal_text` (a clear store's columns are read as they are)."""
        del thread_id, place, where
        return stored

    def open_all(self, sealed: Sequence[bytes], positions: Sequence[int]) -> list[bytes] | None:
        """Log items re-framed as plain JSON, if this codec opens them all in one go.

        ``positions`` are the items' ``seq`` in their log (an encrypting codec binds them).
        ``None`` (the default) means "decode them one by one", which also names a bad one.
        """
        del sealed, positions
        return None

    def seal_items(self, encoded: Sequence[bytes], *, first: int, what: str) -> list[bytes]:
        """Log items about to take the positions ``first, first + 1, ...`` in their log.

        :meth:`seal_bytes` of each here; an encrypting codec seals them in one pass and
        binds each to its position, so an item moved within its log fails to open.
        """
        del first
        return [self.seal_bytes(value, what=what) for value in encoded]

    def unseal_item(self, sealed: bytes, position: int, *, where: str) -> bytes:
        """:meth:`unseal` of the log item at ``position`` (``seq``) of its log."""
        del position
        return self.unseal(sealed, where=where)

    @property
    def seals_logs(self) -> bool:
        """Whether log items are stored other than as plain JSON (so a read must open them).

        ``False`` here: plain items are joined as stored; an encrypting codec says ``True``
        and opens them in one pass (:meth:`open_all`). It also binds each item to its
        position, so a store must know, before it seals, where the items will land, and
        every read hands the decoder each item's position. A reading codec that keeps
        sealed items as stand-ins (a sealed export) says ``True`` for the reads alone.
        """
        return False

    def seal(self, value: JSON, *, what: str = "payload") -> bytes:
        """Encode a JSON value for storage."""
        return self.seal_bytes(canonical_json(value, what=what), what=what)

    def seal_bytes(self, encoded: bytes, *, what: str = "payload") -> bytes:
        """Frame already canonical JSON bytes (saves encoding a value twice).

        Raises:
            InvalidPayloadError: A codec of the chain refused the value (too large, say).
        """
        for codec in self._codecs:
            try:
                encoded = codec.encode(encoded)
            except AgentPersistError:
                raise
            except Exception as exc:
                raise InvalidPayloadError(
                    f"{what}: codec {codec.name!r} cannot encode it: {exc}"
                ) from exc
        return self._frame + encoded

    def unseal(self, sealed: bytes, *, where: str = "stored value") -> bytes:
        """Return the canonical JSON bytes inside ``sealed``; :class:`CodecError` if unreadable."""
        frame, separator, data = bytes(sealed).partition(_SEPARATOR)
        names = frame.decode("ascii", errors="replace").split("+")
        if not separator or names[0] != _BASE:
            raise CodecError(f"{where}: not written by agent-persist (no codec frame)")
        for name in reversed(names[1:]):
            codec = self._own.get(name) or _registry.get(name)
            if codec is None and name == _SEALED:
                raise CodecError(
                    f"{where}: sealed by an encrypted store; open the store with "
                    "encryption=Encryption(key_ring) (agent_persist.crypto) to read it"
                )
            if codec is None:
                raise CodecError(
                    f"{where}: written with codec {name!r}, which is not registered here; "
                    "register it with agent_persist.codecs.register_codec()"
                )
            try:
                data = codec.decode(data)
            except Exception as exc:
                raise CodecError(f"{where}: codec {name!r} cannot decode it: {exc}") from exc
        return data
