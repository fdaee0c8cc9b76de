"""How envelopes and log items become stored bytes and back, the same way in every store.

A checkpoint is stored as three parts: the *header* (every envelope field but the payload and
the log versions, as canonical JSON text, readable by any SQL or Redis client), the *payload*
(sealed by the codec layer) and the *log versions* (a JSON object, written by the store inside
the same transaction). Decoding checks everything and raises typed errors that say where.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

from pydantic import ValidationError

from .._json import JSON, canonical_json
from ..codecs import PayloadCodec
from ..envelope import TRUSTED_PAYLOAD, Envelope, payload_checksum
from ..errors import ChecksumMismatchError, CorruptCheckpointError, InvalidPayloadError
from ..versions import upgrade_header

_NOT_IN_HEADER = frozenset({"payload", "logs"})
PLAIN_FRAME = PayloadCodec().seal_bytes(b"")
"""What starts every item sealed with no codec but JSON."""
_PLAIN_LEN = len(PLAIN_FRAME)
_frame_of = itemgetter(slice(0, _PLAIN_LEN))
_after_frame = itemgetter(slice(_PLAIN_LEN, None))


def _all_plain(sealed: Sequence[bytes]) -> bool:
    """Whether every item is plain JSON, checked by C-level maps (no Python loop)."""
    return bool(sealed) and set(map(_frame_of, sealed)) == {PLAIN_FRAME}


@dataclass(frozen=True, slots=True)
class EncodedCheckpoint:
    """An envelope ready to store."""

    header: str
    payload: bytes


def encode_checkpoint(envelope: Envelope, codec: PayloadCodec) -> EncodedCheckpoint:
    """Encode an envelope; refuses one whose payload no longer matches its checksum."""
    encoded = canonical_json(envelope.payload, what="payload")
    if payload_checksum(encoded) != envelope.checksum:
        raise InvalidPayloadError(
            f"checkpoint {envelope.checkpoint_id} of thread {envelope.thread_id!r}: the payload "
            "was modified after the envelope was built; build a new envelope instead"
        )
    header = envelope.model_dump(mode="json", exclude=set(_NOT_IN_HEADER))
    return EncodedCheckpoint(
        header=canonical_json(header).decode("utf-8"), payload=codec.seal_bytes(encoded)
    )


def describe(store: str, thread_id: str, checkpoint_id: str | None = None) -> str:
    """Where a stored thing lives, for error messages."""
    if checkpoint_id is None:
        return f"{store}: thread {thread_id!r}"
    return f"{store}: checkpoint {checkpoint_id!r} of thread {thread_id!r}"


def decode_checkpoint(
    header: str | bytes,
    payload: bytes,
    logs: Mapping[str, int] | str | bytes,
    *,
    codec: PayloadCodec,
    where: str,
) -> Envelope:
    """Rebuild an envelope from its stored parts, verifying format, checksum and shape."""
    fields = _load_object(header, where=f"{where}: header")
    fields = upgrade_header(fields, where=where)
    canonical = codec.unseal(payload, where=f"{where}: payload")
    if payload_checksum(canonical) != fields.get("checksum"):
        raise ChecksumMismatchError(
            f"{where}: the payload does not match its checksum {fields.get('checksum')!r}; "
            "the stored row was changed or damaged outside agent-persist"
        )
    fields["payload"] = _load_json(canonical, where=f"{where}: payload")
    fields["logs"] = (
        _load_object(logs, where=f"{where}: log versions")
        if not isinstance(logs, Mapping)
        else dict(logs)
    )
    try:
        return Envelope.model_validate(fields, context={TRUSTED_PAYLOAD: True})
    except ValidationError as exc:
        raise CorruptCheckpointError(f"{where}: not a valid envelope: {exc}") from exc


def encode_item(item: JSON, codec: PayloadCodec) -> bytes:
    """Seal one log item."""
    return codec.seal(item, what="log item")


def decode_item(data: bytes, codec: PayloadCodec, *, where: str | Callable[[], str]) -> JSON:
    """Unseal one log item; ``where`` may be a callable, built only if the item is bad.

    Reading a log decodes thousands of items, so plain JSON items skip the codec lookup and
    the error location is not formatted unless it is needed.
    """
    if data[:_PLAIN_LEN] == PLAIN_FRAME:
        try:
            return cast("JSON", json.loads(data[_PLAIN_LEN:]))
        except ValueError:
            pass  # report it below, with the location
    location = where() if callable(where) else where
    return _load_json(codec.unseal(data, where=location), where=location)


def decode_items(
    sealed: Sequence[bytes], codec: PayloadCodec, *, where: Callable[[int], str]
) -> list[JSON]:
    """Unseal many log items; ``where(i)`` names item ``i`` if it is bad.

    Plain JSON items are parsed in one ``json.loads`` of an array built from them, several
    times faster than one call per item on long logs. Any doubt (another codec, a parse
    error, a count that does not match) falls back to item by item, which raises the typed
    error naming the bad item.
    """
    if _all_plain(sealed):
        joined = b",".join(map(_after_frame, sealed))
        try:
            values = json.loads(b"[" + joined + b"]")
        except ValueError:
            values = None
        if isinstance(values, list) and len(cast("list[JSON]", values)) == len(sealed):
            return cast("list[JSON]", values)
    return [
        decode_item(data, codec, where=lambda i=index: where(i))
        for index, data in enumerate(sealed)
    ]


def json_lines(values: Sequence[JSON]) -> bytes:
    """Values as JSON Lines: each one's canonical JSON (never a raw newline), one per line."""
    return b"\n".join([canonical_json(value, what="log item") for value in values])


def plain_lines(sealed: Sequence[bytes | None]) -> bytes | None:
    """The JSON Lines of sealed items, or ``None`` unless every one is plain JSON.

    Canonical JSON never holds a raw newline, so none is looked for; a damaged item shows
    as a line that does not parse.
    """
    if not sealed:
        return b""
    present = cast("Sequence[bytes]", sealed)
    try:
        if not _all_plain(present):
            return None
    except TypeError:  # a missing item (None)
        return None
    return b"\n".join(map(_after_frame, present))


def _load_json(data: str | bytes, *, where: str) -> JSON:
    try:
        return cast("JSON", json.loads(data))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptCheckpointError(f"{where}: not valid JSON ({exc})") from exc


def _load_object(data: str | bytes, *, where: str) -> dict[str, Any]:
    value = _load_json(data, where=where)
    if not isinstance(value, dict):
        raise CorruptCheckpointError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def check_metadata_filter(metadata: Mapping[str, JSON] | None) -> dict[str, JSON]:
    """Validate a metadata filter: top-level keys compared for equality with JSON scalars."""
    if not metadata:
        return {}
    for key, value in metadata.items():
        if not isinstance(key, str) or isinstance(value, dict | list):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(
                f"metadata filters compare top-level keys with scalars; got {key!r}: {value!r}"
            )
    return dict(metadata)


def metadata_matches(metadata: Mapping[str, Any], wanted: Mapping[str, JSON]) -> bool:
    """Whether every key of ``wanted`` is in ``metadata`` with an equal value of the same type."""
    for key, value in wanted.items():
        if key not in metadata:
            return False
        have = metadata[key]
        if type(have) is not type(value) and not (
            isinstance(have, int | float)
            and isinstance(value, int | float)
            and not isinstance(have, bool)
            and not isinstance(value, bool)
        ):
            return False
        if have != value:
            return False
    return True
