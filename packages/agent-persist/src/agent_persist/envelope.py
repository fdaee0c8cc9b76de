"""The envelope: what every stored checkpoint is.

An envelope wraps a framework's native state (the payload) with what is needed to keep it
usable for years: the kind and schema version of the payload, the fingerprint of the
configuration that produced it, the producer's versions, its place in the thread's history,
its status, user metadata, and a checksum of the canonical payload::

    first = Envelope.create(kind="autogen.team", schema_version=1, thread_id="t-1",
                            payload={"agent_states": {}}, producer=Producer(package="me"))
    second = first.next(payload={"agent_states": {"a": {}}}, status=Status.DONE)
    assert second.parent_id == first.checkpoint_id and second.step == 1

Envelopes are immutable; every constructor normalises the payload to plain JSON and checks
the checksum, so an envelope in memory is always exactly what a store will read back.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ._json import (
    INT64_MAX,
    MAX_JSON_DEPTH,
    canonical_json,
    check_storable,
    normalize_json,
    sha256_hex,
)
from ._limits import MAX_INT32, MAX_TEXT_LENGTH, text_problem
from .versions import ENVELOPE_FORMAT_VERSION

__all__ = ["Envelope", "Producer", "Status", "new_checkpoint_id", "payload_checksum"]

TRUSTED_PAYLOAD = "agent_persist_trusted_payload"
"""Validation context key: the payload is already normalised and its checksum verified.

Stores decode with it; the checks of what a store can hold are skipped then too, so data
written before a check existed stays readable.
"""

_IDS = ("kind", "thread_id", "checkpoint_id", "parent_id")
_OTHER_TEXT = ("fingerprint", "stop_reason", "checksum")


def _trusted(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(TRUSTED_PAYLOAD))


def _storable(value: str | None, info: ValidationInfo, *, max_length: int | None) -> str | None:
    """Refuse text no store can hold (see :mod:`agent_persist._limits`), naming the field."""
    if value is not None and not _trusted(info):
        problem = text_problem(value, max_length=max_length)
        if problem is not None:
            raise ValueError(f"{info.field_name} {problem}")
    return value


class Status(str, Enum):
    """Where the run stood when the checkpoint was taken."""

    RUNNING = "running"
    INTERRUPTED = "interrupted"
    DONE = "done"
    ERROR = "error"


class Producer(BaseModel):
    """Who wrote the checkpoint: the package and the framework, with their versions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    package: str
    package_version: str | None = None
    framework: str | None = None
    framework_version: str | None = None

    @field_validator("package", "package_version", "framework", "framework_version")
    @classmethod
    def _text(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _storable(value, info, max_length=None)


_id_lock = threading.Lock()
_last_id_time: list[int] = [0, 0]  # [milliseconds, sequence within that millisecond]


def new_checkpoint_id() -> str:
    """A UUIDv7 string: unique, and sorting ids sorts them by creation time in this process.

    The 12-bit counter keeps ids strictly increasing within one millisecond (RFC 9562, method 1).
    """
    with _id_lock:
        now = time.time_ns() // 1_000_000
        last, sequence = _last_id_time
        if now <= last:
            now, sequence = last, sequence + 1
            if sequence > 0xFFF:
                now, sequence = now + 1, 0
        else:
            sequence = secrets.randbelow(0x800)
        _last_id_time[:] = [now, sequence]
    value = (now << 80) | (0x7 << 76) | (sequence << 64) | (0b10 << 62) | secrets.randbits(62)
    return str(uuid.UUID(int=value))


def payload_checksum(canonical_payload: bytes) -> str:
    """The checksum recorded in an envelope, over the payload's canonical JSON bytes."""
    return "sha256:" + sha256_hex(canonical_payload)


class Envelope(BaseModel):
    """One checkpoint of one thread: a versioned, checksummed wrapper around framework state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = Field(default=ENVELOPE_FORMAT_VERSION, ge=1, le=MAX_INT32, strict=True)
    kind: str = Field(min_length=1)
    schema_version: int = Field(ge=0, le=MAX_INT32, strict=True)
    fingerprint: str | None = None
    producer: Producer
    thread_id: str
    checkpoint_id: str = Field(min_length=1)
    parent_id: str | None = None
    step: int = Field(ge=0, le=MAX_INT32, strict=True)
    status: Status = Status.RUNNING
    stop_reason: str | None = None
    created_at: datetime
    metadata: dict[str, Any] = Field(default_factory=dict[str, Any])
    logs: dict[str, Annotated[int, Field(ge=0, le=INT64_MAX, strict=True)]] = Field(
        default_factory=dict[str, int]
    )
    """Version of each of the thread's logs this checkpoint includes; filled in by the store."""
    payload: Any
    checksum: str = ""
    """``sha256:`` of the canonical payload; computed when not given, verified when given."""

    @field_validator(*_IDS)
    @classmethod
    def _id_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _storable(value, info, max_length=MAX_TEXT_LENGTH)

    @field_validator(*_OTHER_TEXT)
    @classmethod
    def _other_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _storable(value, info, max_length=None)

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        return value.astimezone(timezone.utc)

    @field_validator("metadata", mode="before")
    @classmethod
    def _plain_metadata(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, dict):
            return value
        plain = normalize_json(value, what="metadata")[0]
        if not _trusted(info):
            check_storable(plain, what="metadata")
        return plain

    @model_validator(mode="before")
    @classmethod
    def _payload_and_checksum(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cast("dict[str, Any]", data)
        if "payload" not in fields or (info.context and info.context.get(TRUSTED_PAYLOAD)):
            return fields
        fields = dict(fields)
        fields["payload"], encoded = normalize_json(fields["payload"], what="payload")
        expected = payload_checksum(encoded)
        given = fields.setdefault("checksum", expected)
        if given != expected:
            raise ValueError(f"checksum {given!r} does not match the payload ({expected!r})")
        return fields

    @classmethod
    def create(
        cls,
        *,
        kind: str,
        schema_version: int,
        thread_id: str,
        payload: Any,
        producer: Producer,
        fingerprint: str | None = None,
        status: Status = Status.RUNNING,
        stop_reason: str | None = None,
        metadata: dict[str, Any] | None = None,
        step: int = 0,
        parent_id: str | None = None,
    ) -> Envelope:
        """Build the first checkpoint of a thread (or any checkpoint, given its parent)."""
        return cls(
            kind=kind,
            schema_version=schema_version,
            fingerprint=fingerprint,
            producer=producer,
            thread_id=thread_id,
            checkpoint_id=new_checkpoint_id(),
            parent_id=parent_id,
            step=step,
            status=status,
            stop_reason=stop_reason,
            created_at=datetime.now(timezone.utc),
            metadata=metadata or {},
            payload=payload,
        )

    def next(self, *, payload: Any, **changes: Any) -> Envelope:
        """The checkpoint that follows this one: new id, this one as parent, ``step + 1``.

        ``changes`` may set any other field (status, stop_reason, metadata, fingerprint...).
        """
        fields = self.model_dump(exclude={"checksum", "logs"})
        fields.update(
            checkpoint_id=new_checkpoint_id(),
            parent_id=self.checkpoint_id,
            step=self.step + 1,
            created_at=datetime.now(timezone.utc),
            payload=payload,
        )
        fields.update(changes)
        return Envelope(**fields)

    def replace(self, **changes: Any) -> Envelope:
        """A validated copy with some fields changed (the checksum follows the payload)."""
        fields = self.model_dump()
        fields.update(changes)
        if "payload" in changes and "checksum" not in changes:
            del fields["checksum"]
        return Envelope(**fields)


def with_payload(
    envelope: Envelope,
    payload: Any,
    *,
    checksum: str | None = None,
    depth_checked: bool = True,
    **changes: Any,
) -> Envelope:
    """``envelope`` with another payload and fields, the payload neither copied nor re-read.

    :meth:`Envelope.replace` normalises the payload (encodes and decodes it: a full copy);
    a migrated payload is plain JSON already, as :func:`~agent_persist._json.plain_json`
    returns it (a tree, its depth checked unless ``depth_checked`` is false), so it is only
    encoded once, for its checksum, unless ``checksum`` is given (``envelope``'s own, for
    its unchanged payload). The other fields are validated; new metadata is checked as any
    constructor checks it.
    """
    fields = envelope.model_dump(exclude={"payload", "checksum"})
    fields.update(changes)
    if "metadata" in changes:
        check_storable(normalize_json(changes["metadata"], what="metadata")[0], what="metadata")
    if checksum is None:
        limit = None if depth_checked else MAX_JSON_DEPTH
        checksum = payload_checksum(canonical_json(payload, what="payload", max_depth=limit))
    fields.update(payload=payload, checksum=checksum)
    return Envelope.model_validate(fields, context={TRUSTED_PAYLOAD: True})
