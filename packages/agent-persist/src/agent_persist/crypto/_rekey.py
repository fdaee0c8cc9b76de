"""Rotation: re-wrap every thread's data key under the key ring's primary key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._codec import SealingCodec, key_context
from ._parallel import each

if TYPE_CHECKING:
    from ..stores.base import BaseStore

__all__ = ["RekeyReport", "rekey"]


@dataclass(frozen=True, slots=True)
class RekeyReport:
    """What a :func:`rekey` run found and did."""

    threads: int
    rewrapped: int
    already_primary: int
    dry_run: bool


async def rekey(
    store: BaseStore,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    concurrency: int = 1,
) -> RekeyReport:
    """Re-wrap the data key of every thread of an encrypted store under the primary key.

    Only the small wrapped keys are rewritten, never the data. Keys already wrapped by the
    primary are skipped, so a run interrupted half way is resumed by running it again.
    ``progress(done, total)`` is called after each thread; ``concurrency`` threads are
    re-wrapped at once (the command uses 8).

    Raises:
        ValueError: ``store`` was not opened with ``encryption=``.
    """
    codec = store.codec
    if not isinstance(codec, SealingCodec):
        raise ValueError("rekey needs a store opened with encryption=Encryption(...)")
    primary = codec.keys.primary_key_id
    thread_ids = await codec.key_store.thread_ids()

    async def one(thread_id: str) -> bool:
        """Whether the thread's key was (or would be) re-wrapped."""
        wrapped = await codec.key_store.get(thread_id)
        if wrapped is None or wrapped.key_id == primary:
            return False
        data_key = await codec.unwrap(thread_id, wrapped)
        if not dry_run:
            context = key_context(codec.namespace, thread_id)
            blob = await codec.keys.wrap(primary, data_key, associated_data=context)
            await codec.key_store.replace(thread_id, wrapped, primary, blob)
        return True

    done = await each(thread_ids, one, concurrency=concurrency, progress=progress)
    rewrapped = sum(done)
    return RekeyReport(
        threads=len(thread_ids),
        rewrapped=rewrapped,
        already_primary=len(thread_ids) - rewrapped,
        dry_run=dry_run,
    )
