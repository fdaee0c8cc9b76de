"""Sealed exports: an encrypted store's values exported as they are stored, opened on import.

    store = open_store(url, codec=KeepSealed())     # export: sealed values are not opened
    await open_sealed(records, source)              # import: opened with the source's keys

Without ``--decrypt``, ``export`` reads through :class:`KeepSealed`: a clear value reads as
usual, a sealed one as ``{"$sealed": "<base64 of the stored bytes>"}``, and the thread's
record gets ``"sealed": {"namespace": N}``. The ciphertext stays bound to its namespace,
thread and place, and its data key stays in the source's key store: deleting the thread
there (crypto-shredding) makes the export unreadable too. ``import`` opens such a thread
with the source's data key (``--keys-env``; the key store of namespace N, on the target's
back end or ``--source-url``) and the target store seals it again under its own key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

from .._json import JSON
from ..codecs import PayloadCodec
from ..errors import CorruptCheckpointError
from ..stores._records import SEALED_MARK, SEALED_POSITION, is_sealed, stand_in

__all__ = ["SEALED_FIELD", "KeepSealed", "open_sealed", "sealed_namespace"]

SEALED_FIELD = "sealed"
"""The key of a thread record whose values may be sealed: ``{"namespace": N}``."""


class KeepSealed(PayloadCodec):
    """A reading codec that leaves sealed values sealed (as a stand-in object)."""

    def __init__(self) -> None:
        super().__init__()
        self.sealed_threads: set[str] = set()
        """Threads a sealed value was read from."""

    def for_log(self, thread_id: str, log: str) -> PayloadCodec:
        """The same for every log: only the thread is noted."""
        return _Keep(self, thread_id)

    @property
    def seals_logs(self) -> bool:
        """Sealed items are read as stand-ins with their positions: reads must give them."""
        return True

    def for_checkpoint(self, thread_id: str, checkpoint_id: str, header: Any) -> PayloadCodec:
        """The same for every payload: only the thread is noted."""
        return _Keep(self, thread_id)


class _Keep(PayloadCodec):
    def __init__(self, owner: KeepSealed, thread_id: str) -> None:
        super().__init__()
        self._owner = owner
        self._thread_id = thread_id

    @property
    def seals_logs(self) -> bool:
        """As its owner's."""
        return True

    def unseal(self, sealed: bytes, *, where: str = "stored value") -> bytes:
        """The stand-in of a sealed value; a clear one opened as usual."""
        return self._keep(sealed, None, where=where)

    def unseal_item(self, sealed: bytes, position: int, *, where: str) -> bytes:
        """The stand-in of a sealed log item, with its position (which it is bound to)."""
        return self._keep(sealed, position, where=where)

    def _keep(self, sealed: bytes, position: int | None, *, where: str) -> bytes:
        kept = stand_in(sealed, position)
        if kept is None:
            return super().unseal(sealed, where=where)
        self._owner.sealed_threads.add(self._thread_id)
        return kept


def sealed_namespace(record: Any) -> str | None:
    """The namespace a thread record's sealed values are bound to, if it has any."""
    if not isinstance(record, dict):
        return None
    marker = cast("dict[str, Any]", record).get(SEALED_FIELD)
    if marker is None:
        return None
    namespace = (
        cast("dict[str, Any]", marker).get("namespace") if isinstance(marker, dict) else None
    )
    if not isinstance(namespace, str):
        raise CorruptCheckpointError(f"thread record: {SEALED_FIELD!r} names no namespace")
    return namespace


async def open_sealed(
    record: dict[str, Any],
    *,
    open_item: Callable[[str, bytes, int, str], Awaitable[bytes]],
    open_payload: Callable[[dict[str, Any], bytes, str], Awaitable[bytes]],
    where: str,
) -> None:
    """Replace every sealed stand-in of a thread record by its opened value, in place.

    ``open_item(log, sealed, position, where)`` and ``open_payload(checkpoint, sealed,
    where)`` return the canonical JSON inside (typed errors when the key is gone or the
    value was changed).
    """
    record.pop(SEALED_FIELD, None)
    checkpoints = record.get("checkpoints")
    changes: list[tuple[str, Any]] = []
    if isinstance(checkpoints, list):
        for index, raw in enumerate(cast("list[Any]", checkpoints)):
            if not isinstance(raw, dict):
                continue
            checkpoint = cast("dict[str, Any]", raw)
            at = f"{where} checkpoint {index}"
            sealed = _sealed_bytes(checkpoint.get("payload"), where=f"{at}: payload")
            if sealed is not None:
                opened = await open_payload(checkpoint, sealed, f"{at}: payload")
                checkpoint["payload"] = _load(opened, where=f"{at}: payload")
            changes.append((at, checkpoint.get("log_changes")))
    changes.append((f"{where} log_changes_after_head", record.get("log_changes_after_head")))
    for at, logs in changes:
        if not isinstance(logs, dict):
            continue
        for name, change in cast("dict[str, Any]", logs).items():
            added = cast("dict[str, Any]", change).get("add") if isinstance(change, dict) else None
            if not isinstance(added, list):
                continue
            items = cast("list[Any]", added)
            for index, item in enumerate(items):
                spot = f"{at}: log {name!r} item {index}"
                sealed = _sealed_bytes(item, where=spot)
                if sealed is not None:
                    position = cast("dict[str, Any]", item).get(SEALED_POSITION, 0)
                    opened = await open_item(name, sealed, position, spot)
                    items[index] = _load(opened, where=spot)


def _sealed_bytes(value: Any, *, where: str) -> bytes | None:
    """The stored bytes of a stand-in ``{"$sealed": base64}``; ``None`` for any other value.

    A log item's stand-in also holds its position (``"at"``).
    """
    if not isinstance(value, dict):
        return None
    kept = cast("dict[str, Any]", value)
    position = kept.get(SEALED_POSITION, 0)
    if set(kept) - {SEALED_MARK, SEALED_POSITION} or type(position) is not int:
        return None
    text = kept.get(SEALED_MARK)
    if not isinstance(text, str):
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if is_sealed(data) else None


def _load(data: bytes, *, where: str) -> JSON:
    try:
        return cast("JSON", json.loads(data))
    except ValueError as exc:
        raise CorruptCheckpointError(f"{where}: not JSON once opened ({exc})") from None
