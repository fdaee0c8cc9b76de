"""What a store is opened with to encrypt: the key ring and where the data keys live."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..codecs import PayloadCodec
from ._codec import SealingCodec
from ._keyring import KeyManagementService
from ._keystore import KeyStore

if TYPE_CHECKING:
    from ..stores.base import BaseStore

__all__ = ["KEY_NAMESPACE_SUFFIX", "Encryption"]

KEY_NAMESPACE_SUFFIX = ".keys"
"""The default key store is the data's back end under namespace ``<namespace>.keys``."""


class Encryption:
    """Encryption at rest for one store: pass it as ``open_store(url, encryption=...)``.

    Args:
        keys: The key ring (:class:`KeyRing`) or a key-management service that wraps each
            thread's random data key.
        key_store: Where the wrapped data keys live. ``None``: the same URL under namespace
            ``<namespace>.keys`` (set up by :func:`~agent_persist.stores.open_store`); a URL
            (opened with the data store's namespace); or a store the caller owns.
        shred_on_delete: ``True`` (the default): ``delete_thread`` destroys the thread's data
            key, so every copy of its ciphertext (backups, replicas, exports) becomes
            unreadable, and so does ``purge_expired`` for threads that expired (on a store
            with a ``ttl``). ``False`` keeps the data key for a legal hold: the rows are deleted
            but retained copies of the ciphertext stay readable until
            :meth:`~agent_persist.stores.BaseStore.shred_thread` is called.
    """

    def __init__(
        self,
        keys: KeyManagementService,
        *,
        key_store: BaseStore | str | None = None,
        shred_on_delete: bool = True,
    ) -> None:
        if not isinstance(keys, KeyManagementService):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"keys must be a KeyRing or KeyManagementService, got {keys!r}")
        if key_store is not None and not isinstance(key_store, str):
            from ..stores.base import BaseStore

            if not isinstance(key_store, BaseStore):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise TypeError(f"key_store must be a store URL or a store, got {key_store!r}")
        if not isinstance(shred_on_delete, bool):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError("shred_on_delete must be a bool")
        self.keys = keys
        self.key_store = key_store
        self.shred_on_delete = shred_on_delete

    def with_default_key_store(
        self, url: str, namespace: str, options: dict[str, Any]
    ) -> Encryption:
        """This configuration with the key store the data store's URL implies, if none given."""
        if self.key_store is not None:
            return self
        from ..stores import open_store

        store = open_store(url, namespace=namespace + KEY_NAMESPACE_SUFFIX, **options)
        bound = Encryption(self.keys, key_store=store, shred_on_delete=self.shred_on_delete)
        bound._owns_key_store = True
        return bound

    _owns_key_store = False

    def codec(self, inner: PayloadCodec, namespace: str) -> SealingCodec:
        """The sealing codec of a store in ``namespace`` (opens a key store URL, lazily)."""
        key_store = self.key_store
        owned = self._owns_key_store
        if key_store is None:
            raise ValueError(
                "encryption needs a key_store when the store is not opened with open_store(url)"
            )
        if isinstance(key_store, str):
            from ..stores import open_store

            key_store = open_store(key_store, namespace=namespace)
            owned = True
        return SealingCodec(
            inner, namespace=namespace, keys=self.keys, key_store=KeyStore(key_store, owned=owned)
        )

    def __repr__(self) -> str:
        return f"Encryption(keys={self.keys!r}, shred_on_delete={self.shred_on_delete})"
