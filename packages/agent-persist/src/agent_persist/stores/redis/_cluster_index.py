"""A namespace's thread index on a Redis Cluster: sharded by thread, merged when listed.

    await note(client, keys, thread_id, now)          # before the thread's own write
    async for page in newest_pages(client, keys, 200): ...   # members, newest first
    gone = await stale_members(client, keys, shard, page)    # for ``PURGE_INDEX``

On one server the index is one sorted set, written by the same script as the thread. On a
cluster no script can reach both (they are in different slots), and one sorted set per
namespace would put every write of a tenant on one shard. So the index is split into
:data:`~._keys.INDEX_SHARDS` sorted sets, each in a slot of its own, and a thread's member
lives in the shard its id hashes to. Listing merges the shards newest first (a k-way merge
that fetches a shard's next page only when the merge reaches its end); purging walks each
shard. The thread's keys stay the truth and the index a hint (see :mod:`._store`).
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ._keys import RedisKeys, encode_id

__all__ = ["drop", "newest_pages", "note", "stale_members", "thread_rows"]

THREAD_FIELDS = ("head", "kind", "sv", "step", "status", "meta", "updated")
"""The thread hash's fields a listing row holds, in ``LIST_THREADS``' order."""


async def note(client: Any, keys: RedisKeys, thread_id: str, now: int) -> None:
    """Add (or re-score) the thread in its shard; done before the thread's own write."""
    member = encode_id(thread_id)
    await client.zadd(keys.index_shard(member), {member: now})


async def drop(client: Any, keys: RedisKeys, thread_id: str) -> None:
    """Remove the thread's member; done after the thread's keys are deleted."""
    member = encode_id(thread_id)
    await client.zrem(keys.index_shard(member), member)


async def newest_pages(client: Any, keys: RedisKeys, page: int) -> AsyncIterator[list[bytes]]:
    """The members of every shard, newest first, in pages of ``page``.

    The first page of every shard comes in one pipelined round trip; a shard's next page
    is fetched when the merge has used up the one it holds. Not one atomic read: a thread
    written meanwhile may show up twice or not at all in this listing, as with any paging.
    """
    shards = keys.index_shards
    async with client.gate, client.pipeline(transaction=False) as pipe:
        for shard in shards:
            pipe.zrevrange(shard, 0, page - 1, withscores=True)
        firsts: list[list[tuple[bytes, float]]] = await pipe.execute()
    offsets = [len(first) for first in firsts]
    heap = [(-first[0][1], n, 0) for n, first in enumerate(firsts) if first]
    heapq.heapify(heap)
    buffers = firsts
    out: list[bytes] = []
    while heap:
        _, n, position = heapq.heappop(heap)
        out.append(buffers[n][position][0])
        position += 1
        if position == len(buffers[n]) and len(buffers[n]) == page:
            buffers[n] = await client.zrevrange(
                shards[n], offsets[n], offsets[n] + page - 1, withscores=True
            )
            offsets[n] += len(buffers[n])
            position = 0
        if position < len(buffers[n]):
            heapq.heappush(heap, (-buffers[n][position][1], n, position))
        if len(out) == page:
            yield out
            out = []
    if out:
        yield out


async def thread_rows(client: Any, keys: RedisKeys, members: Sequence[bytes]) -> list[Any]:
    """``LIST_THREADS`` rows of ``members``: each thread's summary, read in its own slot."""
    async with client.gate, client.pipeline(transaction=False) as pipe:
        for member in members:
            key = keys.member_thread(member.decode("ascii"))
            pipe.hmget(key, THREAD_FIELDS)
            pipe.zcard(key + ":z")
        replies: list[Any] = await pipe.execute()
    rows: list[Any] = []
    for member, summary, count in zip(members, replies[::2], replies[1::2], strict=True):
        rows += [member, *summary, count]
    return rows


async def stale_members(
    client: Any, keys: RedisKeys, page: Sequence[tuple[bytes, float]]
) -> list[Any]:
    """``member, score`` pairs of ``page`` (from one shard) whose thread is gone.

    The arguments of ``PURGE_INDEX``, which drops a member only if its score is unchanged.
    """
    if not page:
        return []
    async with client.gate, client.pipeline(transaction=False) as pipe:
        for member, _ in page:
            pipe.exists(keys.member_thread(member.decode("ascii")))
        exists: list[int] = await pipe.execute()
    gone: list[Any] = []
    for (member, score), alive in zip(page, exists, strict=True):
        if not alive:
            gone += [member, int(score)]
    return gone
