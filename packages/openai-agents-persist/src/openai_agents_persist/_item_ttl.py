"""Item time-to-live, as the SDK's ``EncryptedSession`` applies it to its Fernet tokens.

    ttl = ItemTTL.of(600, clock=time.time)    # None when the session has no ttl
    stored = wrap_item(item, at=ttl.now())
    readable = ttl.fresh(stored_items)          # the stored items still within their time

A session with a ``ttl`` stamps every item it writes with its write time in whole seconds
(the ``"at"`` of the stored wrapper) and reads only items whose time has not run out:
``at + ttl >= now``, both in whole seconds, exactly Fernet's test. An item with no time (one
written by a session without a ``ttl``, or by the SDK's own sessions) counts as expired, as
the SDK's wrapper skips what it cannot establish as fresh. On an encrypted store the time is
sealed with the item, so it cannot be edited to bring an item back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, cast

__all__ = ["Clock", "ItemTTL"]

Clock = Callable[[], float]
"""Seconds since the epoch, as ``time.time`` returns them."""


class ItemTTL:
    """How long a session's items stay readable, and the clock that says how old they are."""

    __slots__ = ("clock", "seconds")

    def __init__(self, seconds: int, clock: Clock) -> None:
        self.seconds = seconds
        self.clock = clock

    @classmethod
    def of(cls, ttl: int | timedelta | None, clock: Clock) -> ItemTTL | None:
        """The TTL a session was given (``None``: items never expire).

        Raises:
            TypeError: ``ttl`` is not whole seconds or a ``timedelta``, or ``clock`` is not
                callable.
            ValueError: ``ttl`` is not positive, or not whole seconds.
        """
        if not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
        if ttl is None:
            return None
        if isinstance(ttl, timedelta):
            total = ttl.total_seconds()
            if total != int(total):
                raise ValueError(f"ttl must be whole seconds, got {ttl!r}")
            seconds = int(total)
        elif isinstance(ttl, int) and not isinstance(ttl, bool):  # pyright: ignore[reportUnnecessaryIsInstance]
            seconds = ttl
        else:
            raise TypeError(f"ttl must be seconds (an int) or a timedelta, got {ttl!r}")
        if seconds <= 0:
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        return cls(seconds, clock)

    def now(self) -> int:
        """The current time in whole seconds: an item's ``at`` when written now."""
        return int(self.clock())

    def oldest(self) -> int:
        """The oldest write time still readable now (Fernet's test: ``at + ttl >= now``)."""
        return self.now() - self.seconds

    def fresh(self, stored: Sequence[Any]) -> list[Any]:
        """The stored items whose time has not run out (their order kept)."""
        oldest = self.oldest()
        return [entry for entry in stored if _at(entry) >= oldest]

    def is_fresh(self, stored: Any) -> bool:
        """Whether one stored item is still within its time."""
        return _at(stored) >= self.oldest()


def _at(stored: Any) -> float:
    """A stored item's write time; minus infinity when it has none (it counts as expired)."""
    if type(stored) is not dict:
        return float("-inf")
    at = cast("dict[str, Any]", stored).get("at")
    return at if type(at) is int else float("-inf")
