"""Reading a log around the items its store cannot decode.

    parts = await read_around_damage(store, "user-1", "items")
    values = [value for part in parts for value in part.values]
    damaged = [part.start for part in parts if part.error is not None]

A store's ``read_log`` raises on the first item it cannot decode, so one damaged item hides
the whole log. This reads the range and halves every part that fails until each damaged item
stands alone: a log without damage costs the one read, k damaged items among n cost
O(k log n) reads, and k damaged items whose positions are known (``suspects``, from the
previous read) cost 2k + 1 reads. Positions count the live items from 0, the oldest, as
``read_log``'s ``start``/``stop`` do; they are what ``agent-persist quarantine`` takes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._json import JSON
from .envelope import Envelope
from .errors import CorruptCheckpointError
from .stores.base import BaseStore

__all__ = ["LogPart", "damaged", "read_around_damage"]

_CHUNK = 256
"""Items read at once from a checkpoint's view of a log, whose length is known only by reading."""


@dataclass(frozen=True, slots=True)
class LogPart:
    """Consecutive items of a log from position ``start``, or one item that does not decode.

    ``values`` holds the decoded items; it is empty when ``error`` says why the item at
    ``start`` could not be decoded.
    """

    start: int
    values: list[JSON]
    error: CorruptCheckpointError | None = None


async def read_around_damage(
    store: BaseStore,
    thread_id: str,
    log: str,
    *,
    start: int = 0,
    stop: int | None = None,
    at: Envelope | None = None,
    suspects: Iterable[int] = (),
) -> list[LogPart]:
    """Items ``[start:stop]`` of the log, in parts: runs of decoded items, damaged items.

    The log as it is now, or as checkpoint ``at`` saw it. ``suspects`` are positions to
    read alone (where damage was found before): only a hint of where to cut the range, so a
    stale one costs a read and never hides an item. Only
    :class:`~agent_persist.errors.CorruptCheckpointError` (the item's bytes) is caught; a
    store that cannot be reached raises as usual.
    """
    if stop is None and at is not None:
        return await _read_to_end(store, thread_id, log, start, at)
    if stop is None:
        stop = await store.log_length(thread_id, log)
    parts: list[LogPart] = []
    cursor = start
    for position in sorted({p for p in suspects if start <= p < stop}):
        parts += await _read(store, thread_id, log, cursor, position, at)
        parts += await _read(store, thread_id, log, position, position + 1, at)
        cursor = position + 1
    parts += await _read(store, thread_id, log, cursor, stop, at)
    return parts


def damaged(parts: Iterable[LogPart]) -> dict[int, CorruptCheckpointError]:
    """The damaged items among ``parts``, by position."""
    return {part.start: part.error for part in parts if part.error is not None}


async def _read_to_end(
    store: BaseStore, thread_id: str, log: str, start: int, at: Envelope
) -> list[LogPart]:
    """A checkpoint's view from ``start`` to its end, a chunk at a time."""
    parts: list[LogPart] = []
    while True:
        chunk = await _read(store, thread_id, log, start, start + _CHUNK, at)
        parts += chunk
        if sum(1 if part.error else len(part.values) for part in chunk) < _CHUNK:
            return parts
        start += _CHUNK


async def _read(
    store: BaseStore, thread_id: str, log: str, start: int, stop: int, at: Envelope | None
) -> list[LogPart]:
    if start >= stop:
        return []
    try:
        values = await store.read_log(thread_id, log, start=start, stop=stop, at=at)
    except CorruptCheckpointError as exc:
        if stop - start == 1:
            return [LogPart(start, [], exc)]
        middle = (start + stop) // 2
        return [
            *await _read(store, thread_id, log, start, middle, at),
            *await _read(store, thread_id, log, middle, stop, at),
        ]
    return [LogPart(start, values)] if values else []
