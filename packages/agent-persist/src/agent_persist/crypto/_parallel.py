"""Running a per-thread job over many threads, a few at a time (``seal``, ``rekey``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["each"]

T = TypeVar("T")
R = TypeVar("R")


async def each(
    items: Sequence[T],
    work: Callable[[T], Awaitable[R]],
    *,
    concurrency: int,
    progress: Callable[[int, int], None] | None,
) -> list[R]:
    """``work(item)`` for every item, at most ``concurrency`` at once; results unordered.

    ``progress(done, total)`` is called after each item. The first error cancels the jobs
    still running and is raised: each job must be safe to cut (re-running finishes it).
    """
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
    pending = iter(items)
    results: list[R] = []

    async def worker() -> None:
        for item in pending:  # shared: each worker takes the next item
            results.append(await work(item))
            if progress is not None:
                progress(len(results), len(items))

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(items)))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return results
