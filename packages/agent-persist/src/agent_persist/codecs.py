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
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ._json import JSON, canonical_json
from .errors import CodecError

__all__ = ["Codec", "PayloadCodec", "ZlibCodec", "register_codec"]

_BASE = "json"
_SEPARATOR = b":"


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


class ZlibCodec:
    """Compression with the standard library's zlib; worth it for payloads above ~1 KiB."""

    name = "zlib"

    def __init__(self, level: int = 6) -> None:
        self._level = level

    def encode(self, data: bytes) -> bytes:
        """Compress."""
        return zlib.compress(data, self._level)

    def decode(self, data: bytes) -> bytes:
        """Decompress."""
        return zlib.decompress(data)


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
        self._frame = "+".join([_BASE, *(c.name for c in codecs)]).encode() + _SEPARATOR

    @property
    def name(self) -> str:
        """The chain as written in the frame, for example ``json+zlib``."""
        return self._frame[:-1].decode()

    def seal(self, value: JSON, *, what: str = "payload") -> bytes:
        """Encode a JSON value for storage."""
        return self.seal_bytes(canonical_json(value, what=what))

    def seal_bytes(self, encoded: bytes) -> bytes:
        """Frame already canonical JSON bytes (saves encoding a value twice)."""
        for codec in self._codecs:
            encoded = codec.encode(encoded)
        return self._frame + encoded

    def unseal(self, sealed: bytes, *, where: str = "stored value") -> bytes:
        """Return the canonical JSON bytes inside ``sealed``; :class:`CodecError` if unreadable."""
        frame, separator, data = bytes(sealed).partition(_SEPARATOR)
        names = frame.decode("ascii", errors="replace").split("+")
        if not separator or names[0] != _BASE:
            raise CodecError(f"{where}: not written by agent-persist (no codec frame)")
        for name in reversed(names[1:]):
            codec = _registry.get(name)
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
