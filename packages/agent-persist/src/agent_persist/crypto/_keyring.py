"""Key rings: named 256-bit keys, one primary, and the protocol a key-management service meets."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from ..errors import DecryptionError, UnknownKeyError
from ._aead import KEY_BYTES, InvalidTag, open_sealed, seal

__all__ = ["KeyManagementService", "KeyRing"]


@runtime_checkable
class KeyManagementService(Protocol):
    """What holds the key-encryption keys: a :class:`KeyRing`, or a KMS behind this interface.

    Only the small per-thread data keys cross it: ``wrap`` encrypts one under the key
    ``key_id`` and ``unwrap`` decrypts it, both binding ``associated_data`` (the namespace
    and thread the data key belongs to). A KMS adapter implements the three members with
    its client (for example ``Encrypt``/``Decrypt`` with an encryption context) and raises
    :class:`~agent_persist.errors.UnknownKeyError` for a key id it does not know.
    """

    @property
    def primary_key_id(self) -> str:
        """The key new data keys are wrapped with (and ``rekey`` re-wraps to)."""
        ...

    async def wrap(self, key_id: str, data_key: bytes, *, associated_data: bytes) -> bytes:
        """Encrypt ``data_key`` under ``key_id``."""
        ...

    async def unwrap(self, key_id: str, wrapped: bytes, *, associated_data: bytes) -> bytes:
        """Decrypt what :meth:`wrap` returned; raise if ``key_id`` or the data do not match."""
        ...


def _check_key(key_id: str, key: object) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError(f"key {key_id!r} must be {KEY_BYTES} bytes (a 256-bit AES key)")
    return key


class KeyRing:
    """Named 256-bit keys held in this process, one of them the primary.

    Build one from a mapping, from environment variables (:meth:`from_env`) or from a
    callback that looks keys up by id (:meth:`from_callback`, for a secrets manager). Old
    keys stay in the ring after a rotation so the data keys they wrapped still unwrap.
    """

    def __init__(
        self,
        keys: Mapping[str, bytes] | None = None,
        *,
        primary: str,
        lookup: Callable[[str], bytes | None] | None = None,
    ) -> None:
        if not isinstance(primary, str) or not primary:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError("primary must name a key")
        self._keys = {key_id: _check_key(key_id, key) for key_id, key in (keys or {}).items()}
        self._lookup = lookup
        self._primary = primary
        if lookup is None and primary not in self._keys:
            raise ValueError(f"primary {primary!r} is not one of the keys {sorted(self._keys)}")

    @classmethod
    def from_callback(cls, lookup: Callable[[str], bytes | None], *, primary: str) -> KeyRing:
        """A ring whose keys ``lookup(key_id)`` returns (``None`` for an unknown id), cached."""
        return cls(primary=primary, lookup=lookup)

    @classmethod
    def from_env(
        cls, prefix: str = "AGENT_PERSIST_", *, environ: Mapping[str, str] | None = None
    ) -> KeyRing:
        """The ring the environment describes.

        ``{prefix}KEY_<ID>`` holds key ``<ID>`` as standard base64 of 32 random bytes (for
        example ``openssl rand -base64 32``); ``{prefix}PRIMARY_KEY`` names the primary.
        With one key and no primary named, that key is the primary. ``<ID>`` is kept as
        written (``AGENT_PERSIST_KEY_2026A`` is key ``2026A``).
        """
        env = os.environ if environ is None else environ
        marker = f"{prefix}KEY_"
        keys: dict[str, bytes] = {}
        for name, value in env.items():
            if name.startswith(marker) and len(name) > len(marker):
                key_id = name[len(marker) :]
                try:
                    keys[key_id] = base64.b64decode(value.strip(), validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise ValueError(f"{name} is not base64: {exc}") from exc
        if not keys:
            raise ValueError(f"no key in the environment: set {marker}<ID> to a base64 key")
        primary = env.get(f"{prefix}PRIMARY_KEY")
        if primary is None:
            if len(keys) > 1:
                raise ValueError(f"{len(keys)} keys: set {prefix}PRIMARY_KEY to one of them")
            (primary,) = keys
        return cls(keys, primary=primary)

    @property
    def primary_key_id(self) -> str:
        """See :class:`KeyManagementService`."""
        return self._primary

    def _key(self, key_id: str) -> bytes:
        key = self._keys.get(key_id)
        if key is None and self._lookup is not None:
            found = self._lookup(key_id)
            if found is not None:
                key = self._keys[key_id] = _check_key(key_id, found)
        if key is None:
            raise UnknownKeyError(f"key id {key_id!r} is not in the key ring")
        return key

    async def wrap(self, key_id: str, data_key: bytes, *, associated_data: bytes) -> bytes:
        """See :class:`KeyManagementService`."""
        return seal(self._key(key_id), data_key, associated_data)

    async def unwrap(self, key_id: str, wrapped: bytes, *, associated_data: bytes) -> bytes:
        """See :class:`KeyManagementService`."""
        key = self._key(key_id)
        try:
            return open_sealed(key, wrapped, associated_data)
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError(
                f"the data key does not unwrap with key {key_id!r}: a wrong key, or a "
                "wrapped key copied or changed"
            ) from exc

    def __repr__(self) -> str:
        return f"KeyRing(primary={self._primary!r}, keys={sorted(self._keys)!r})"
