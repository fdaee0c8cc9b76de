"""Checks of the arguments every store takes, run once by :class:`~.base.BaseStore`.

    check_text("thread_id", thread_id)      # TypeError / ValueError naming the argument
    check_range(start, stop)

A wrong type is a ``TypeError`` and a wrong value a ``ValueError``, each naming the argument:
that is programmer misuse, not a store fault, so it is not an ``AgentPersistError``. What
one store cannot hold is refused by all of them, before anything is written, so the same
input gets the same answer everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import cast

from .._json import JSON
from ..envelope import Envelope
from ._types import Lease

__all__ = [
    "check_appends",
    "check_count",
    "check_envelope",
    "check_items",
    "check_lease",
    "check_range",
    "check_text",
    "check_ttl",
    "version_at",
]


def check_text(name: str, value: object) -> str:
    """An id, log name or owner: a ``str`` every store can hold (no NUL, valid UTF-8)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{name} must not hold NUL characters, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{name} must be valid Unicode (no lone surrogates), got {value!r}"
        ) from exc
    return value


def check_optional_text(name: str, value: object) -> str | None:
    """:func:`check_text`, ``None`` allowed."""
    return None if value is None else check_text(name, value)


def check_range(start: object, stop: object) -> None:
    """Refuse slice bounds that are not non-negative integers."""
    check_count("start", start)
    if start is None:
        raise TypeError("start must be an int, got NoneType")
    check_count("stop", stop)


def check_count(name: str, value: object) -> None:
    """Refuse a ``limit`` / ``count`` that is not ``None`` or a non-negative ``int``."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {value}")


def check_ttl(ttl: object, *, name: str = "ttl") -> timedelta:
    """Refuse a lease length that is not a positive ``timedelta``."""
    if not isinstance(ttl, timedelta):
        raise TypeError(f"{name} must be a timedelta, got {type(ttl).__name__}")
    if ttl <= timedelta(0):
        raise ValueError(f"{name} must be positive, got {ttl}")
    return ttl


def check_envelope(envelope: object) -> Envelope:
    """Refuse anything but an :class:`Envelope` whose ids every store can hold."""
    if not isinstance(envelope, Envelope):
        raise TypeError(f"envelope must be an Envelope, got {type(envelope).__name__}")
    check_text("envelope.thread_id", envelope.thread_id)
    check_text("envelope.checkpoint_id", envelope.checkpoint_id)
    check_optional_text("envelope.parent_id", envelope.parent_id)
    check_text("envelope.kind", envelope.kind)
    return envelope


def check_items(name: str, items: object) -> Sequence[JSON]:
    """A sequence of log items; a ``str`` or ``bytes`` is refused, not split into characters."""
    if isinstance(items, str | bytes | bytearray) or not isinstance(items, Sequence):
        kind = type(items).__name__  # pyright: ignore[reportUnknownArgumentType]
        raise TypeError(f"{name} must be a sequence of items (a list), got {kind}")
    return cast("Sequence[JSON]", items)


def check_appends(appends: object) -> Mapping[str, Sequence[JSON]]:
    """``put``'s ``appends``: log names mapped to sequences of items."""
    if appends is None:
        return {}
    if not isinstance(appends, Mapping):
        raise TypeError(
            f"appends must be a mapping of log names to items, got {type(appends).__name__}"
        )
    checked = cast("Mapping[object, object]", appends)
    for log, items in checked.items():
        check_text("appends log name", log)
        check_items(f"appends[{log!r}]", items)
    return cast("Mapping[str, Sequence[JSON]]", checked)


def check_lease(lease: object, thread_id: str) -> Lease | None:
    """A write's lease: ``None`` or a :class:`Lease` on this very thread."""
    if lease is None:
        return None
    if not isinstance(lease, Lease):
        raise TypeError(f"lease must be a Lease, got {type(lease).__name__}")
    if lease.thread_id != thread_id:
        raise ValueError(f"lease is for thread {lease.thread_id!r}, not {thread_id!r}")
    return lease


def version_at(thread_id: str, log: str, at: object) -> int | None:
    """The log version checkpoint ``at`` saw: ``None`` for now, -1 if it saw no such log."""
    if at is None:
        return None
    if not isinstance(at, Envelope):
        raise TypeError(f"at must be an Envelope, got {type(at).__name__}")
    if at.thread_id != thread_id:
        raise ValueError(f"at: checkpoint {at.checkpoint_id} belongs to thread {at.thread_id!r}")
    return at.logs.get(log, -1)
