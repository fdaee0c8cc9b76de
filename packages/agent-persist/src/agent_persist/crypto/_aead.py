"""AES-256-GCM from ``cryptography``: the only cipher, and the only place it is imported.

A sealed value is ``version byte + 12-byte random nonce + ciphertext and tag``. Nothing here
is hand-written cryptography: the nonce is random (96 bits, safe for far more than 2**32
values per key would need), the tag is GCM's own.
"""

from __future__ import annotations

import os

from ..errors import MissingDependencyError

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without the extra
    raise MissingDependencyError(
        "Encryption (agent_persist.crypto)", "crypto", "cryptography"
    ) from exc

__all__ = [
    "AESGCM",
    "KEY_BYTES",
    "NONCE_BYTES",
    "POSITIONED",
    "VERSION",
    "InvalidTag",
    "new_key",
    "open_sealed",
    "seal",
]

KEY_BYTES = 32
VERSION = b"\x01"
"""The first byte of a sealed value (the format: version, nonce, ciphertext and tag)."""
POSITIONED = b"\x02"
"""The first byte of a log item whose associated data also binds its position in the log.

The format is :data:`VERSION`'s; the byte only tells a reader which associated data to
use. Changing it does not help a forger: the tag covers the associated data it was made
with, so either way the item fails to open.
"""
NONCE_BYTES = 12


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes | AESGCM, data: bytes, associated: bytes, *, version: bytes = VERSION) -> bytes:
    """Encrypt and authenticate ``data``, binding ``associated`` (not stored).

    ``key`` may be an ``AESGCM`` already built from the key (saves its setup per value).
    """
    nonce = os.urandom(NONCE_BYTES)
    cipher = AESGCM(key) if isinstance(key, bytes) else key
    return version + nonce + cipher.encrypt(nonce, data, associated)


def open_sealed(key: bytes | AESGCM, sealed: bytes, associated: bytes) -> bytes:
    """Undo :func:`seal`; ``InvalidTag`` (or ``ValueError``) when anything does not match."""
    if sealed[:1] not in (VERSION, POSITIONED) or len(sealed) < 1 + NONCE_BYTES + 16:
        raise ValueError("not a sealed value of a known format")
    nonce = sealed[1 : 1 + NONCE_BYTES]
    cipher = AESGCM(key) if isinstance(key, bytes) else key
    return cipher.decrypt(nonce, sealed[1 + NONCE_BYTES :], associated)
