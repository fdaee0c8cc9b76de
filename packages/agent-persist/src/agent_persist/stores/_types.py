"""The values stores return besides envelopes: thread listings and leases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..envelope import Status

__all__ = ["Lease", "ThreadInfo"]


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """A thread as listed by :meth:`CheckpointStore.list_threads`.

    A thread that has logs but no checkpoint yet (a session) has ``head_id`` and ``kind`` of
    ``None``, ``step`` of -1 and no metadata.
    """

    thread_id: str
    head_id: str | None
    kind: str | None
    schema_version: int | None
    step: int
    status: Status | None
    checkpoint_count: int
    metadata: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Lease:
    """Proof that ``owner`` holds ``thread_id`` until ``expires_at`` (UTC)."""

    thread_id: str
    owner: str
    token: str
    expires_at: datetime
