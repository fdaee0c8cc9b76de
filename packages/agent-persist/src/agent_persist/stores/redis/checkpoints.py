"""Turning the Redis scripts' replies back into envelopes, log items and thread listings.

    envelope = decode_envelope(thread_id, [id, header, payload, logs], codec)
    items = decode_reply_items(reply, codec, where="redis: thread 't': log 'transcript'")

Every reply is checked before use: a missing part or a value that does not parse raises the
typed errors of :mod:`._records`, naming the thread, checkpoint, log and item.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from .._json import JSON
from ..codecs import PayloadCodec
from ..envelope import Envelope, Status
from ..errors import (
    CheckpointNotFoundError,
    ConflictError,
    CorruptCheckpointError,
    ThreadNotFoundError,
)
from ._records import decode_checkpoint, describe, load_json
from ._records import decode_items as decode_many
from ._redis_keys import decode_id
from .base import ThreadInfo

__all__ = [
    "STORE",
    "THREAD_ROW",
    "check_listing",
    "decode_envelope",
    "decode_reply_items",
    "decode_thread",
    "from_micros",
    "header_metadata",
    "put_outcome",
    "text",
    "to_micros",
]

STORE = "redis"
"""How error messages name this store (see :func:`._records.describe`)."""

THREAD_ROW = 9
"""Values per thread in the ``LIST_THREADS`` reply."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """Undo :func:`to_micros`."""
    return _EPOCH + micros * _MICROSECOND


def text(value: Any) -> str:
    """A reply value as text (replies are bytes; scripts may also return integers)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def decode_envelope(thread_id: str, parts: Sequence[Any], codec: PayloadCodec) -> Envelope:
    """Rebuild a checkpoint from ``[id, header, payload, log versions]``."""
    try:
        checkpoint_id = text(parts[0])
    except UnicodeDecodeError as exc:
        where = describe(STORE, thread_id)
        raise CorruptCheckpointError(f"{where}: a checkpoint id is damaged ({exc})") from exc
    header, payload, logs = parts[1:4]
    where = describe(STORE, thread_id, checkpoint_id)
    for name, value in (("header", header), ("payload", payload), ("log versions", logs)):
        if value is None:
            raise CorruptCheckpointError(f"{where}: the {name} is missing")
    return decode_checkpoint(
        header,
        payload,
        logs,
        codec=codec,
        where=where,
        thread_id=thread_id,
        checkpoint_id=checkpoint_id,
    )


def header_metadata(header: bytes | None) -> dict[str, Any] | None:
    """The metadata in a stored header, or ``None`` if only a full decode can say why not.

    Filtering on it first spares decoding the payloads of checkpoints that do not match.
    """
    try:
        fields: object = load_json(header, where="") if header is not None else None
    except CorruptCheckpointError:
        return None
    if not isinstance(fields, dict):
        return None
    metadata = cast("dict[str, object]", fields).get("metadata")
    return cast("dict[str, Any]", metadata) if isinstance(metadata, dict) else None


def decode_reply_items(reply: Sequence[Any], codec: PayloadCodec, *, where: str) -> list[JSON]:
    """Items from a ``{'seq1,seq2,...', item1, item2, ...}`` reply, in that order."""
    seqs = text(reply[0]).split(",") if len(reply) > 1 else []
    sealed: list[bytes] = []
    for seq, data in zip(seqs, reply[1:], strict=True):
        if data is None:
            raise CorruptCheckpointError(f"{where} item {seq}: the item is missing")
        sealed.append(data)
    return decode_many(sealed, codec, where=lambda i: f"{where} item {seqs[i]}")


def decode_thread(row: Sequence[Any]) -> ThreadInfo | None:
    """A thread from its ``LIST_THREADS`` row; ``None`` once it expired."""
    member, head, kind, schema_version, step, status, meta, updated, count = row
    if updated is None:
        return None
    try:
        thread_id = decode_id(member)
    except ValueError as exc:
        raise CorruptCheckpointError(
            f"{STORE}: the thread index holds a damaged member {member!r} ({exc})"
        ) from exc
    where = describe(STORE, thread_id)
    try:
        metadata: object = load_json(meta, where=where) if meta is not None else {}
        if not isinstance(metadata, dict):
            raise ValueError("not a JSON object")
        return ThreadInfo(
            thread_id=thread_id,
            head_id=text(head) if head is not None else None,
            kind=text(kind) if kind is not None else None,
            schema_version=int(schema_version) if schema_version is not None else None,
            step=int(step) if step is not None else -1,
            status=Status(text(status)) if status is not None else None,
            checkpoint_count=int(count),
            metadata=cast("dict[str, Any]", metadata),
            updated_at=from_micros(int(updated)),
        )
    except ValueError as exc:
        raise CorruptCheckpointError(f"{where}: the thread's summary is damaged ({exc})") from exc


def put_outcome(envelope: Envelope, reply: Sequence[Any]) -> dict[str, int]:
    """The log versions a ``PUT`` recorded, or the conflict it reported."""
    outcome = text(reply[0])
    if outcome == "conflict":
        head = text(reply[1]) if reply[1] is not None else None
        raise ConflictError(
            f"{describe(STORE, envelope.thread_id)}: expected head "
            f"{envelope.parent_id!r} but the head is {head!r}"
        )
    if outcome == "duplicate":
        raise ConflictError(f"{describe(STORE, envelope.thread_id, envelope.checkpoint_id)} exists")
    return cast("dict[str, int]", json.loads(reply[1]))


def check_listing(thread_id: str, before: str | None, outcome: str) -> None:
    """Raise what a ``LIST_CHECKPOINTS`` reply reports instead of a page."""
    if outcome == "nothread":
        raise ThreadNotFoundError(f"{describe(STORE, thread_id)} does not exist")
    if outcome == "nobefore":
        raise CheckpointNotFoundError(f"{describe(STORE, thread_id, before)} not found")
