"""How envelopes and log items become stored bytes and back, the same way in every store.

A checkpoint is stored as three parts: the *header* (every envelope field but the payload and
the log versions, as canonical JSON text, readable by any SQL or Redis client), the *payload*
(sealed by the codec layer) and the *log versions* (a JSON object, written by the store inside
the same transaction). Decoding checks everything and raises typed errors that say where.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import add, itemgetter
from typing import Any, cast

from pydantic import ValidationError

from .._json import INT64_MAX, INT64_MIN, JSON, MAX_JSON_DEPTH, canonical_json, json_depth_exceeds
from .._limits import text_problem
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


_SEALED_SUFFIX = b"+aes256gcm"
"""How agent_persist.crypto's frames end (recognised here without importing the extra)."""


SEALED_TEXT_PREFIX = "aes256gcm:"
"""How a text column sealed by agent_persist.crypto starts (then base64)."""


def is_sealed(data: bytes) -> bool:
    """Whether a stored value was sealed by an encrypted store (its frame ends so)."""
    frame, separator, _ = bytes(data[:256]).partition(b":")
    return bool(separator) and frame.endswith(_SEALED_SUFFIX)


SEALED_MARK = "$sealed"
"""The key of the object a sealed value is exported as, when it is not opened."""
SEALED_POSITION = "at"
"""The key of a sealed log item's position in that object (its ``seq`` in the source log)."""


def stand_in(data: bytes, position: int | None = None) -> bytes | None:
    """What a codec that keeps sealed values sealed (a sealed export) gives for ``data``.

    ``{"$sealed": "<base64 of the stored bytes>"}`` as canonical JSON, for a sealed value
    only: its checksum cannot be checked without the key, so reading accepts exactly this
    in place of the payload (nothing else: anything a key opened is checked). A log item
    also carries its position (``"at"``), which its associated data binds.
    """
    if not is_sealed(data):
        return None
    kept: dict[str, JSON] = {SEALED_MARK: base64.b64encode(bytes(data)).decode("ascii")}
    if position is not None:
        kept[SEALED_POSITION] = position
    return canonical_json(kept)


@dataclass(frozen=True, slots=True)
class StoredValue:
    """One stored payload or log item as bytes, with what binds it, for sealing in place.

    ``log`` and ``position`` (its ``seq``) place a log item; ``checkpoint_id`` and
    ``header`` (the stored header text) are a payload's. ``locator`` is the back end's own
    address of the value.
    """

    log: str | None
    checkpoint_id: str | None
    header: str | None
    locator: Any
    data: bytes
    position: int | None = None


@dataclass(frozen=True, slots=True)
class EncodedCheckpoint:
    """An envelope ready to store."""

    header: str
    payload: bytes


def canonical_payload(envelope: Envelope) -> bytes:
    """The payload's canonical JSON; refuses one that no longer matches its checksum."""
    # The constructor checked the payload's depth; a matching checksum proves it is that one.
    encoded = canonical_json(envelope.payload, what="payload", max_depth=None)
    if payload_checksum(encoded) != envelope.checksum:
        raise InvalidPayloadError(
            f"checkpoint {envelope.checkpoint_id} of thread {envelope.thread_id!r}: the payload "
            "was modified after the envelope was built; build a new envelope instead"
        )
    return encoded


def encode_checkpoint(
    envelope: Envelope, codec: PayloadCodec, *, encoded: bytes | None = None
) -> EncodedCheckpoint:
    """Encode an envelope (``encoded``: its :func:`canonical_payload`, if already made)."""
    if encoded is None:
        encoded = canonical_payload(envelope)
    header = envelope.model_dump(mode="json", exclude=set(_NOT_IN_HEADER))
    bound = codec.for_checkpoint(envelope.thread_id, envelope.checkpoint_id, header)
    return EncodedCheckpoint(
        header=canonical_json(header, what="envelope", max_depth=MAX_JSON_DEPTH + 1).decode(),
        payload=bound.seal_bytes(encoded),
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
    thread_id: str,
    checkpoint_id: str,
) -> Envelope:
    """Rebuild an envelope from its stored parts, verifying format, checksum and shape.

    ``thread_id`` and ``checkpoint_id`` are those of the row (or keys) the parts were read
    from: a header naming another thread or checkpoint was copied or tampered with, and is
    refused like any other damage.
    """
    fields = _load_object(header, where=f"{where}: header", max_depth=MAX_JSON_DEPTH + 1)
    bound = codec.for_checkpoint(thread_id, checkpoint_id, fields)
    fields = upgrade_header(fields, where=where)
    stored_ids = (fields.get("thread_id"), fields.get("checkpoint_id"))
    if stored_ids != (thread_id, checkpoint_id):
        raise CorruptCheckpointError(
            f"{where}: the header belongs to checkpoint {stored_ids[1]!r} of thread "
            f"{stored_ids[0]!r}, not to the checkpoint {checkpoint_id!r} of thread "
            f"{thread_id!r} it is stored as; it was copied or changed outside agent-persist"
        )
    canonical = bound.unseal(payload, where=f"{where}: payload")
    if payload_checksum(canonical) != fields.get("checksum") and canonical != stand_in(payload):
        raise ChecksumMismatchError(
            f"{where}: the payload does not match its checksum {fields.get('checksum')!r}; "
            "the stored row was changed or damaged outside agent-persist"
        )
    fields["payload"] = load_json(canonical, where=f"{where}: payload")
    fields["logs"] = (
        _load_object(logs, where=f"{where}: log versions")
        if not isinstance(logs, Mapping)
        else dict(logs)
    )
    try:
        return Envelope.model_validate(fields, context={TRUSTED_PAYLOAD: True})
    except ValidationError as exc:
        raise CorruptCheckpointError(f"{where}: not a valid envelope: {exc}") from exc


def encode_item(item: JSON, codec: PayloadCodec, *, what: str = "log item") -> bytes:
    """Seal one log item; ``what`` names it if it is refused."""
    return codec.seal(item, what=what)


def decode_item(
    data: bytes, codec: PayloadCodec, *, position: int, where: str | Callable[[], str]
) -> JSON:
    """Unseal the log item at ``position`` (its ``seq``); ``where`` may be a callable.

    Reading a log decodes thousands of items, so plain JSON items skip the codec lookup and
    the error location (``where``) is not built unless the item is bad.
    """
    if data[:_PLAIN_LEN] == PLAIN_FRAME and not json_depth_exceeds(data[_PLAIN_LEN:]):
        try:
            return cast("JSON", json.loads(data[_PLAIN_LEN:]))
        except (ValueError, RecursionError):
            pass  # report it below, with the location
    location = where() if callable(where) else where
    return load_json(codec.unseal_item(data, position, where=location), where=location)


def decode_items(
    sealed: Sequence[bytes],
    codec: PayloadCodec,
    *,
    positions: Sequence[int],
    where: Callable[[int], str],
) -> list[JSON]:
    """Unseal many log items at ``positions``; ``where(i)`` names item ``i`` if it is bad.

    Plain JSON items are parsed in one ``json.loads`` of an array built from them, several
    times faster than one call per item on long logs. Any doubt (another codec, a parse
    error, a count that does not match, an item nested too deep) falls back to item by item,
    which raises the typed error naming the bad item.
    """
    if not _all_plain(sealed):
        sealed = codec.open_all(sealed, positions) or sealed  # decrypted in one pass
    if _all_plain(sealed) and _all_within_depth(sealed):
        joined = b",".join(map(_after_frame, sealed))
        try:
            values = json.loads(b"[" + joined + b"]")
        except (ValueError, RecursionError):
            values = None
        if isinstance(values, list) and len(cast("list[JSON]", values)) == len(sealed):
            return cast("list[JSON]", values)
    return [
        decode_item(data, codec, position=positions[index], where=lambda i=index: where(i))
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


def open_lines(
    sealed: Sequence[bytes | None], codec: PayloadCodec, positions: Sequence[int]
) -> bytes | None:
    """The JSON Lines of stored items: plain ones as stored, sealed ones opened in one pass.

    For an encrypting codec (``codec.seals_logs``) the decrypted items are joined as they
    are: each was canonical JSON when it was sealed, and its tag proves it is unchanged.
    ``None`` at any doubt (a missing or damaged item, another codec): the caller decodes
    item by item, which names the bad one.
    """
    lines = plain_lines(sealed)
    if lines is not None or not codec.seals_logs:
        return lines
    opened = codec.open_all(cast("Sequence[bytes]", sealed), positions)
    if opened is None or not _all_within_depth(opened):
        return None
    return b"\n".join(map(_after_frame, opened))


def _all_within_depth(sealed: Sequence[bytes]) -> bool:
    """Whether every plain item nests at most :data:`MAX_JSON_DEPTH` deep.

    Bracket counts by C-level maps screen a whole log without a Python call per item; an
    item no longer than the limit cannot hold more brackets than it and is not counted;
    only an item holding more brackets than the limit is checked exactly.
    """
    if not set(map(type, sealed)) <= {bytes}:  # not bytes: let the item-by-item path judge it
        return False
    long = list(compress(sealed, map(MAX_JSON_DEPTH.__lt__, map(len, sealed))))
    opens = list(
        map(add, map(bytes.count, long, repeat(b"[")), map(bytes.count, long, repeat(b"{")))
    )
    if max(opens, default=0) <= MAX_JSON_DEPTH:
        return True
    return not any(
        json_depth_exceeds(_after_frame(data))
        for data, count in zip(long, opens, strict=True)
        if count > MAX_JSON_DEPTH
    )


def load_json(data: str | bytes, *, where: str, max_depth: int = MAX_JSON_DEPTH) -> JSON:
    """Parse stored JSON text; :class:`CorruptCheckpointError` if it is not JSON or too deep.

    Never a ``RecursionError``: nesting beyond ``max_depth`` is refused before parsing.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if json_depth_exceeds(raw, max_depth):
        raise CorruptCheckpointError(
            f"{where}: nests deeper than the limit of {max_depth} arrays and objects"
        )
    try:
        return cast("JSON", json.loads(data))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CorruptCheckpointError(f"{where}: not valid JSON ({exc})") from exc


def _load_object(
    data: str | bytes, *, where: str, max_depth: int = MAX_JSON_DEPTH
) -> dict[str, Any]:
    value = load_json(data, where=where, max_depth=max_depth)
    if not isinstance(value, dict):
        raise CorruptCheckpointError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def check_metadata_filter(metadata: object) -> dict[str, JSON]:
    """Validate a metadata filter: top-level keys compared for equality with JSON scalars.

    Keys follow the rules of ids, values are ``None``, a bool, an int of 64 bits, a finite
    float or a str that every store can hold: what no store could have stored is refused,
    not silently matched against nothing (or compared differently by each store).
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping, got {type(metadata).__name__}")
    for key, value in cast("Mapping[object, object]", metadata).items():
        if not isinstance(key, str):
            raise TypeError(f"metadata filter keys must be str, got {type(key).__name__}")
        problem = text_problem(key)
        if problem is not None:
            raise ValueError(f"metadata filter key {problem}")
        _check_filter_value(key, value)
    return dict(cast("Mapping[str, JSON]", metadata))


def _check_filter_value(key: str, value: object) -> None:
    name = f"metadata filter value for {key!r}"
    if isinstance(value, dict | list | tuple):
        raise ValueError(
            f"metadata filters compare top-level keys with scalars; got {key!r}: {value!r}"
        )
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"{name} is an integer beyond 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    elif isinstance(value, str):
        problem = text_problem(value, max_length=None)
        if problem is not None:
            raise ValueError(f"{name} {problem}")
    else:
        raise TypeError(f"{name} must be a JSON scalar, got {type(value).__name__}")


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
