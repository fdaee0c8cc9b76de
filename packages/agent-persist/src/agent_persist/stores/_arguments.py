"""Checks of the arguments every store takes, run once by :class:`~.base.BaseStore`.

    check_text("thread_id", thread_id)      # TypeError / ValueError naming the argument
    check_range(start, stop)

A wrong type is a ``TypeError`` and a wrong value a ``ValueError``, each naming the argument:
that is programmer misuse, not a store fault, so it is not an ``AgentPersistError``. What
one store cannot hold is refused by all of them, before anything is written, so the same
input gets the same answer everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from .._json import INT64_MAX, JSON, check_storable
from .._limits import MAX_DURATION, MAX_INT32, MAX_NAMESPACE_BYTES, MAX_TEXT_LENGTH, text_problem
from ..envelope import Envelope
from ._types import Lease

__all__ = [
    "check_age",
    "check_appends",
    "check_bool",
    "check_count",
    "check_envelope",
    "check_int",
    "check_items",
    "check_lease",
    "check_lease_arg",
    "check_log_names",
    "check_mapping",
    "check_namespace",
    "check_pool_size",
    "check_pool_timeout",
    "check_range",
    "check_ranges",
    "check_text",
    "check_ttl",
    "version_at",
]


def check_text(name: str, value: object, *, max_length: int = MAX_TEXT_LENGTH) -> str:
    """An id, log name or owner: a ``str`` every store can hold (see :mod:`.._limits`)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    problem = text_problem(value, max_length=max_length)
    if problem is not None:
        raise ValueError(f"{name} {problem}: {_short(value)}")
    return value


def _short(value: str) -> str:
    """A value for an error message, cut to a readable length."""
    return repr(value if len(value) <= 80 else value[:80] + "...")


def check_namespace(namespace: object) -> str:
    """A namespace: text like an id, at most 2,048 bytes of UTF-8 (it is indexed as is)."""
    check_text("namespace", namespace)
    size = len(cast("str", namespace).encode("utf-8"))
    if size > MAX_NAMESPACE_BYTES:
        raise ValueError(
            f"namespace is {size} bytes of UTF-8, more than the {MAX_NAMESPACE_BYTES} allowed"
        )
    return cast("str", namespace)


def check_optional_text(name: str, value: object) -> str | None:
    """:func:`check_text`, ``None`` allowed."""
    return None if value is None else check_text(name, value)


def check_range(start: object, stop: object) -> None:
    """Refuse slice bounds that are not integers in 0..2**31-1."""
    check_count("start", start)
    if start is None:
        raise TypeError("start must be an int, got NoneType")
    check_count("stop", stop)


def check_count(name: str, value: object) -> None:
    """Refuse a ``limit`` / ``count`` that is not ``None`` or an ``int`` in 0..2**31-1."""
    if value is None:
        return
    check_int(name, value)


def check_int(name: str, value: object, *, minimum: int = 0) -> int:
    """An ``int`` (not a ``bool``) from ``minimum`` to :data:`MAX_INT32`, every store's range."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        adjective = "non-negative" if minimum == 0 else f"at least {minimum}"
        raise ValueError(f"{name} must be {adjective}, got {value}")
    if value > MAX_INT32:
        raise ValueError(f"{name} must be at most {MAX_INT32}, got {value}")
    return value


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_pool_size(name: str, value: object, *, minimum: int = 1) -> int | None:
    """A pool's size (``pool_size``, ``max_overflow``): ``None`` for the default, or an int."""
    return None if value is None else check_int(name, value, minimum=minimum)


def check_pool_timeout(value: object, *, name: str = "pool_timeout") -> float:
    """``pool_timeout`` (or the timeout ``name``): positive, finite seconds or a ``timedelta``.

    Returns:
        The timeout in seconds.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        kind = type(value).__name__
        raise TypeError(f"{name} must be seconds (a float) or a timedelta, got {kind}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{name} must be at most {MAX_DURATION.days} days, got {value!r}")
    return seconds


def check_ttl(ttl: object, *, name: str = "ttl") -> timedelta:
    """Refuse a length of time that is not a positive ``timedelta`` of at most 100 years."""
    if not isinstance(ttl, timedelta):
        raise TypeError(f"{name} must be a timedelta, got {type(ttl).__name__}")
    if ttl <= timedelta(0):
        raise ValueError(f"{name} must be positive, got {ttl}")
    if ttl > MAX_DURATION:
        raise ValueError(f"{name} must be at most {MAX_DURATION.days} days, got {ttl}")
    return ttl


def check_age(name: str, value: object) -> timedelta | None:
    """``prune``'s ``older_than``: ``None`` or a ``timedelta`` from 0 to 100 years."""
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise TypeError(f"{name} must be a timedelta, got {type(value).__name__}")
    if value < timedelta(0) or value > MAX_DURATION:
        raise ValueError(f"{name} must be from 0 to {MAX_DURATION.days} days, got {value}")
    return value


def check_mapping(name: str, value: object) -> Mapping[str, Any] | None:
    """``None`` or a mapping (``fork``'s ``metadata``); its content is checked where used."""
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping, got {type(value).__name__}")
    return cast("Mapping[str, Any] | None", value)


def check_envelope(envelope: object) -> Envelope:
    """Refuse anything but an :class:`Envelope` every store can hold.

    The constructor checks all of it already; this catches envelopes built around it
    (``model_construct``), so nothing a store cannot hold reaches one.
    """
    if not isinstance(envelope, Envelope):
        raise TypeError(f"envelope must be an Envelope, got {type(envelope).__name__}")
    check_text("envelope.thread_id", envelope.thread_id)
    check_text("envelope.checkpoint_id", envelope.checkpoint_id)
    check_optional_text("envelope.parent_id", envelope.parent_id)
    check_text("envelope.kind", envelope.kind)
    check_int("envelope.schema_version", envelope.schema_version)
    check_int("envelope.step", envelope.step)
    if not isinstance(envelope.metadata, dict):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(f"envelope.metadata must be a dict, got {type(envelope.metadata).__name__}")
    check_storable(envelope.metadata, what="envelope.metadata")
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


def check_log_names(name: str, logs: object) -> tuple[str, ...]:
    """``put``'s ``clear_logs``: ``None`` or log names, each kept once, in their first order.

    A ``str`` is refused rather than taken as the names of its characters.
    """
    if logs is None:
        return ()
    if isinstance(logs, str | bytes | bytearray) or not isinstance(logs, Sequence):
        kind = type(logs).__name__  # pyright: ignore[reportUnknownArgumentType]
        raise TypeError(f"{name} must be a sequence of log names (a list), got {kind}")
    names = [check_text(f"{name} name", log) for log in cast("Sequence[object]", logs)]
    return tuple(dict.fromkeys(names))


def check_lease_arg(lease: object) -> Lease:
    """A :class:`Lease` whose fields are what a store gave out (a str token, an aware time)."""
    if not isinstance(lease, Lease):
        raise TypeError(f"lease must be a Lease, got {type(lease).__name__}")
    check_text("lease.thread_id", lease.thread_id)
    check_text("lease.owner", lease.owner)
    check_text("lease.token", lease.token)
    if not isinstance(lease.expires_at, datetime):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(
            f"lease.expires_at must be a datetime, got {type(lease.expires_at).__name__}"
        )
    return lease


def check_lease(lease: object, thread_id: str) -> Lease | None:
    """A write's lease: ``None`` or a :class:`Lease` on this very thread."""
    if lease is None:
        return None
    lease = check_lease_arg(lease)
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
    version = at.logs.get(log, -1)
    if not isinstance(version, int) or isinstance(version, bool) or not -1 <= version <= INT64_MAX:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError(f"at: the log version {version!r} of {log!r} is not one a store gave out")
    return version


LogRanges = dict[str, tuple[int, int | None]]
"""Log names mapped to the ``(start, stop)`` of the items wanted, as ``read_log`` takes them."""


def check_ranges(logs: object) -> LogRanges:
    """``read_logs``' ``logs``: names (whole logs) or names mapped to ``(start, stop)``."""
    if isinstance(logs, str | bytes | bytearray) or not isinstance(logs, Sequence | Mapping):
        raise TypeError(
            "logs must be a sequence of log names or a mapping of log names to (start, stop), "
            f"got {type(logs).__name__}"
        )
    if not isinstance(logs, Mapping):
        return {check_text("logs name", name): (0, None) for name in cast("Sequence[object]", logs)}
    ranges: LogRanges = {}
    for name, bounds in cast("Mapping[object, object]", logs).items():
        check_text("logs name", name)
        if not isinstance(bounds, tuple) or len(cast("tuple[object, ...]", bounds)) != 2:
            raise TypeError(f"logs[{name!r}] must be a (start, stop) tuple, got {bounds!r}")
        start, stop = cast("tuple[object, object]", bounds)
        check_range(start, stop)
        ranges[cast("str", name)] = (cast("int", start), cast("int | None", stop))
    return ranges
