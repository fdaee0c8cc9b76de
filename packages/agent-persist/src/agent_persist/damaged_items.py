"""Reading a log around the items its store cannot decode.

    entries = await read_around_damage(store, "user-1", "items")
    values = [entry.value for entry in entries if entry.error is None]
    damaged = [entry.position for entry in entries if entry.error is not None]

A store's ``read_log`` raises on the first item it cannot decode, so one damaged item hides
the whole log. This reads the range and halves every part that fails until each damaged item
stands alone: a log without damage costs the one read, k damaged items among n cost
O(k log n) reads. Positions count the live items from 0, the oldest, as ``read_log``'s
``start``/``stop`` do; they are what the ``agent-persist quarantine`` command takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._json import JSON
from .errors import CorruptCheckpointError
from .stores.base import BaseStore

__all__ = ["LogEntry", "read_around_damage"]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One item of a log: its value, or the error that decoding it raised."""

    position: int
    value: JSON = None
    error: CorruptCheckpointError | None = None


async def read_around_damage(
    store: BaseStore, thread_id: str, log: str, *, start: int = 0, stop: int | None = None
) -> list[LogEntry]:
    """Items ``[start:stop]`` of the log now, each decoded or with its decoding error.

    Only :class:`~agent_persist.errors.CorruptCheckpointError` (the item's bytes) is caught;
    a store that cannot be reached raises as usual.
    """
    if stop is None:
        stop = await store.log_length(thread_id, log)
    return await _read(store, thread_id, log, start, stop)


async def _read(
    store: BaseStore, thread_id: str, log: str, start: int, stop: int
) -> list[LogEntry]:
    if start >= stop:
        return []
    try:
        values = await store.read_log(thread_id, log, start=start, stop=stop)
    except CorruptCheckpointError as exc:
        if stop - start == 1:
            return [LogEntry(start, error=exc)]
        middle = (start + stop) // 2
        return [
            *await _read(store, thread_id, log, start, middle),
            *await _read(store, thread_id, log, middle, stop),
        ]
    return [LogEntry(start + offset, value) for offset, value in enumerate(values)]
