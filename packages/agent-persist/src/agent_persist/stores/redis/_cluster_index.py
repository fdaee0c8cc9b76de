"""A namespace's thread index on a Redis Cluster: sharded by thread, merged when listed.

    await note(client, keys, thread_id, now)          # before the thread's own write
    members = await NewestFirst(client, keys, 200).next_page()  # newest first, a page
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
from collections.abc import Sequence
from typing import Any

from ._keys import RedisKeys, encode_id

__all__ = ["NewestFirst", "drop", "note", "stale_members", "thread_rows"]

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


class NewestFirst:
    """The members of every shard, newest first, a page per :meth:`next_page` call.

    A plain object, not an async generator: the store may be used from a loop whose async
    generators were shut down (the Agents SDK's ``Runner.run_sync`` does that), and a
    listing stopped early leaves nothing to close. The first call reads the first page of
    every shard in one pipelined round trip; a shard's next page is read when the merge has
    used up the one it holds. Not one atomic read: a thread written meanwhile may show up
    twice or not at all, as with any paging.
    """

    def __init__(self, client: Any, keys: RedisKeys, page: int) -> None:
        self._client, self._shards, self._page = client, keys.index_shards, page
        self._started = False
        self._buffers: list[list[tuple[bytes, float]]] = []
        self._offsets: list[int] = []
        self._heap: list[tuple[float, int, int]] = []

    async def next_page(self) -> list[bytes]:
        """Up to ``page`` more members; an empty list once every shard is used up."""
        if not self._started:
            await self._start()
        buffers, heap, page = self._buffers, self._heap, self._page
        out: list[bytes] = []
        while heap and len(out) < page:
            _, n, position = heapq.heappop(heap)
            out.append(buffers[n][position][0])
            position += 1
            if position == len(buffers[n]) and len(buffers[n]) == page:
                start = self._offsets[n]
                buffers[n] = await self._client.zrevrange(
                    self._shards[n], start, start + page - 1, withscores=True
                )
                self._offsets[n] += len(buffers[n])
                position = 0
            if position < len(buffers[n]):
                heapq.heappush(heap, (-buffers[n][position][1], n, position))
        return out

    async def _start(self) -> None:
        client, page = self._client, self._page
        async with client.gate, client.pipeline(transaction=False) as pipe:
            for shard in self._shards:
                pipe.zrevrange(shard, 0, page - 1, withscores=True)
            firsts: list[list[tuple[bytes, float]]] = await pipe.execute()
        self._started, self._buffers = True, firsts
        self._offsets = [len(first) for first in firsts]
        self._heap = [(-first[0][1], n, 0) for n, first in enumerate(firsts) if first]
        heapq.heapify(self._heap)


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
