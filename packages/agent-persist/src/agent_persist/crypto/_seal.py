"""Turning encryption on for an existing store: seal every value still stored in clear.

report = await seal(store)             # store opened with encryption=Encryption(ring)
report = await seal(store, dry_run=True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._codec import SealingCodec

if TYPE_CHECKING:
    from ..stores.base import BaseStore

__all__ = ["SealReport", "seal"]


@dataclass(frozen=True, slots=True)
class SealReport:
    """What a :func:`seal` run found and did."""

    threads: int
    threads_sealed: int
    values: int
    dry_run: bool


async def seal(
    store: BaseStore,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SealReport:
    """Seal in place every payload and log item of every thread still stored in clear.

    What reads back, checkpoint ids, headers and log versions do not change; each thread
    gets its data key (if it had none) and its clear values are replaced by sealed ones,
    each only if it still holds the bytes read (compare-and-set, see
    :meth:`~agent_persist.stores.BaseStore.seal_thread`), so writers may keep running.
    Sealed values are skipped, so a run interrupted half way is finished by running it
    again, and a second run finds nothing to do. ``progress(done, total)`` is called after
    each thread.

    Raises:
        ValueError: ``store`` was not opened with ``encryption=``.
    """
    if not isinstance(store.codec, SealingCodec):
        raise ValueError("seal needs a store opened with encryption=Encryption(...)")
    thread_ids = [info.thread_id for info in await store.list_threads()]
    values = touched = 0
    for done, thread_id in enumerate(thread_ids, start=1):
        count = await store.seal_thread(thread_id, dry_run=dry_run)
        values += count
        touched += count > 0
        if progress is not None:
            progress(done, len(thread_ids))
    return SealReport(
        threads=len(thread_ids), threads_sealed=touched, values=values, dry_run=dry_run
    )
