"""The Redis store's logs: the scripts that append, read, pop and clear items, and their replies.

    reply = await run(READ, [thread_key], [log, version_seen, start, stop])
    items = decode_reply_items(reply, codec, where="redis: thread 't': log 'transcript'")

An item's ``seq`` is the log's version its append produced; an encrypting codec seals each
item for it (:mod:`.._positions`), so ``APPEND`` (and ``PUT``) refuse, writing nothing, items
sealed for another seq than the one they would take, and every read hands the decoder each
item's seq. Removing an item no checkpoint can have seen (``seq > pinned``) deletes it;
otherwise it is stamped removed so older checkpoints still see it (collected by
:mod:`._retention`). Every script that changes a log changes its mirror (``:d``, the live
items' data in order) in the same atomic step, so a plain read of the whole log, or of its
tail, is one ``LRANGE`` without a script (with the order list ``:o`` in the same ``MULTI``
for sealed items, which need their seqs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._json import JSON
from ...codecs import PayloadCodec
from ...errors import CorruptCheckpointError
from .._records import decode_items as decode_many
from ._keys import text
from ._lua import HELPERS

__all__ = ["APPEND", "CLEAR", "POP", "READ", "TAIL", "decode_reply_items"]

APPEND = (
    HELPERS
    + r"""
-- KEYS: thread, lease, index (only on a single server). ARGV: member, log, ttl_ms,
-- has_lease, lease token, the seq the first item was sealed for ('' = not checked),
-- items... Returns 1; 0 (nothing written) when the lease no longer holds the thread; or
-- {'moved', seq} (nothing written) when the first item would take another seq.
if lease_lost(KEYS[2], ARGV[4], ARGV[5]) then return 0 end
if ARGV[6] ~= '' then
  local now = first_after(KEYS[1], ARGV[2], false)
  if now ~= tonumber(ARGV[6]) then return {'moved', now} end
end
append_items(KEYS[1], ARGV[2], 7, #ARGV - 6)
touch(KEYS[1], KEYS[3], ARGV[1])
refresh_ttl(KEYS[1], ARGV[3])
return 1
"""
)

POP = (
    HELPERS
    + r"""
-- KEYS: thread, index (only on a single server). ARGV: member, log, ttl_ms, seq. Pops the
-- newest item only while it is still item seq (the one the caller decoded). Returns
-- {'seq', item}, nil when the log is empty, or {'moved'} when another item is newest now.
local base, name = KEYS[1], ARGV[2]
local items, order, _, _, mirror = log_keys(base, name)
local seq = redis.call('LINDEX', order, -1)
if not seq then return false end
if seq ~= ARGV[4] then return {'moved'} end
redis.call('RPOP', order)
local data = redis.call('HGET', items, seq)
remove_items(base, name, {seq}, redis.call('HINCRBY', base .. ':v', name, 1))
redis.call('RPOP', mirror)
touch(base, KEYS[2], ARGV[1])
refresh_ttl(base, ARGV[3])
return {seq, data}
"""
)

CLEAR = (
    HELPERS
    + r"""
-- KEYS: thread, index (only on a single server). ARGV: member, log, ttl_ms. Returns how
-- many items were live.
local cleared = clear_items(KEYS[1], ARGV[2])
if cleared == 0 then return 0 end
touch(KEYS[1], KEYS[2], ARGV[1])
refresh_ttl(KEYS[1], ARGV[3])
return cleared
"""
)

READ = (
    HELPERS
    + r"""
-- KEYS: thread. ARGV: log, version seen ('' = now), start, stop ('' = to the end).
-- Returns {'seq1,seq2,...', item1, item2, ...}.
local items, order, removed = log_keys(KEYS[1], ARGV[1])
local start, stop = tonumber(ARGV[3]), tonumber(ARGV[4])
if stop and stop <= start then return {} end
local at = tonumber(ARGV[2])
-- A log whose version is still the one seen holds the same live items (a resume of the head)
if not at or at == tonumber(redis.call('HGET', KEYS[1] .. ':v', ARGV[1]) or '0') then
  return fetch_items(items, redis.call('LRANGE', order, start, (stop or 0) - 1))
end
local seen = {}
for _, seq in ipairs(redis.call('LRANGE', order, 0, -1)) do
  local n = tonumber(seq)
  if n > at then break end
  seen[#seen + 1] = n
end
local stamps = redis.call('HGETALL', removed)
for j = 1, #stamps, 2 do
  local seq, stamp = tonumber(stamps[j]), tonumber(stamps[j + 1])
  if seq <= at and stamp > at then seen[#seen + 1] = seq end
end
table.sort(seen)
local slice = {}
for j = start + 1, math.min(stop or #seen, #seen) do slice[#slice + 1] = seen[j] end
return fetch_items(items, slice)
"""
)

TAIL = (
    HELPERS
    + r"""
-- KEYS: thread. ARGV: log, count (> 0). Returns {'seq1,...', item1, ...}, oldest first.
local items, order = log_keys(KEYS[1], ARGV[1])
return fetch_items(items, redis.call('LRANGE', order, -tonumber(ARGV[2]), -1))
"""
)


def decode_reply_items(reply: Sequence[Any], codec: PayloadCodec, *, where: str) -> list[JSON]:
    """Items from a ``{'seq1,seq2,...', item1, item2, ...}`` reply, in that order.

    Each is opened at its ``seq``, which an encrypting codec binds; a codec that binds none
    (as its writes sealed them: at 0) is spared parsing them, on reads of thousands of items.
    """
    seqs = text(reply[0]).split(",") if len(reply) > 1 else []
    positions = [0] * len(seqs)
    if codec.seals_logs:
        try:
            positions = list(map(int, seqs))
        except ValueError as exc:
            raise CorruptCheckpointError(f"{where}: its order list is damaged ({exc})") from exc
    sealed: list[bytes] = []
    for seq, data in zip(seqs, reply[1:], strict=True):
        if data is None:
            raise CorruptCheckpointError(f"{where} item {seq}: the item is missing")
        sealed.append(data)
    return decode_many(
        sealed, codec, positions=positions, where=lambda i: f"{where} item {seqs[i]}"
    )
