"""Turning encryption on for an existing store: seal every value still stored in clear.

report = await seal(store)             # store opened with encryption=Encryption(ring)
report = await seal(store, dry_run=True)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._codec import SealingCodec
from ._parallel import each

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
    concurrency: int = 1,
) -> SealReport:
    """Seal in place every payload and log item of every thread still stored in clear.

    Log items sealed before positions were bound are sealed again with theirs (counted too).

    What reads back, checkpoint ids, headers and log versions do not change; each thread
    gets its data key (if it had none) and its clear values are replaced by sealed ones,
    each only if it still holds the bytes read (compare-and-set, see
    :meth:`~agent_persist.stores.BaseStore.seal_thread`), so writers may keep running.
    Sealed values are skipped, so a run interrupted half way is finished by running it
    again, and a second run finds nothing to do. ``progress(done, total)`` is called after
    each thread; ``concurrency`` threads are sealed at once (the command uses 8).

    Raises:
        ValueError: ``store`` was not opened with ``encryption=``.
    """
    if not isinstance(store.codec, SealingCodec):
        raise ValueError("seal needs a store opened with encryption=Encryption(...)")
    thread_ids = [info.thread_id for info in await store.list_threads()]

    def one(thread_id: str) -> Awaitable[int]:
        return store.seal_thread(thread_id, dry_run=dry_run)

    counts = await each(thread_ids, one, concurrency=concurrency, progress=progress)
    return SealReport(
        threads=len(thread_ids),
        threads_sealed=sum(count > 0 for count in counts),
        values=sum(counts),
        dry_run=dry_run,
    )
