"""The Lua scripts of the Redis store: every write (and every multi-key read) in one round trip.

    put = client.register_script(PUT)
    reply = await put(keys=[thread_key, index_key], args=[...])

A script runs atomically on the server, so a put checks the head, appends the items, records
the log versions, moves the head, refreshes the TTL and trims old checkpoints with nothing
in between; of several writers expecting the same head exactly one wins. Each script is the
helpers of :mod:`._redis_lua` plus its body. Keys follow :mod:`._redis_keys`; a
thread's other keys are derived from its thread key (``KEYS[1]``) with fixed suffixes and
the hex of the log name, because the set of logs is only known inside the script.

Values cross the boundary as strings: Lua turns numbers into strings with ``%.17g``, which
keeps every integer below 2**53 exact, and times are built as digit strings for that reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._redis_lua import HELPERS, SWEEP, TRIM

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = [
    "ACQUIRE_LEASE",
    "ALL_SCRIPTS",
    "APPEND",
    "CLEAR",
    "DELETE_THREAD",
    "GET",
    "LIST_CHECKPOINTS",
    "LIST_THREADS",
    "POP",
    "PRUNE",
    "PURGE",
    "PUT",
    "READ",
    "RELEASE_LEASE",
    "RENEW_LEASE",
    "SET_LAYOUT",
    "TAIL",
    "UPGRADE_MIRRORS",
    "Scripts",
]

PUT = (
    HELPERS
    + TRIM
    + r"""
-- KEYS: thread, index, lease. ARGV: member, id, has_parent, parent, header, payload,
-- created_us, kind, schema_version, step, status, metadata, ttl_ms, keep_last, log count,
-- has_lease, lease token, then per log: name, item count, items...
local base, index = KEYS[1], KEYS[2]
local id = ARGV[2]
if lease_lost(KEYS[3], ARGV[16], ARGV[17]) then return {'leaselost'} end
local head = redis.call('HGET', base, 'head')
local expected = false
if ARGV[3] == '1' then expected = ARGV[4] end
if head ~= expected then return {'conflict', head} end
local ckey = base .. ':c'
if redis.call('HEXISTS', ckey, 'h:' .. id) == 1 then return {'duplicate'} end

local at = 18
for _ = 1, tonumber(ARGV[15]) do
  local name, count = ARGV[at], tonumber(ARGV[at + 1])
  append_items(base, name, at + 2, count)
  at = at + 2 + count
end

local versions, pins = {}, {}
local all = redis.call('HGETALL', base .. ':v')
for j = 1, #all, 2 do
  versions[all[j]] = tonumber(all[j + 1])
  pins[#pins + 1] = all[j]
  pins[#pins + 1] = all[j + 1]
end
batched('HSET', base .. ':p', pins)
local logs = cjson.encode(versions)

redis.call('HSET', ckey, 'h:' .. id, ARGV[5], 'p:' .. id, ARGV[6], 'l:' .. id, logs,
           't:' .. id, ARGV[7])
redis.call('ZADD', base .. ':z', redis.call('HINCRBY', base, 'n', 1), id)
redis.call('HSET', base, 'head', id, 'kind', ARGV[8], 'sv', ARGV[9], 'step', ARGV[10],
           'status', ARGV[11], 'meta', ARGV[12])
touch(base, index, ARGV[1])
if ARGV[14] ~= '' then trim(base, tonumber(ARGV[14])) end
refresh_ttl(base, ARGV[13])
return {'ok', logs}
"""
)

APPEND = (
    HELPERS
    + r"""
-- KEYS: thread, index, lease. ARGV: member, log, ttl_ms, has_lease, lease token, items...
-- Returns 1, or 0 (nothing written) when the lease no longer holds the thread.
if lease_lost(KEYS[3], ARGV[4], ARGV[5]) then return 0 end
append_items(KEYS[1], ARGV[2], 6, #ARGV - 5)
touch(KEYS[1], KEYS[2], ARGV[1])
refresh_ttl(KEYS[1], ARGV[3])
return 1
"""
)

POP = (
    HELPERS
    + r"""
-- KEYS: thread, index. ARGV: member, log, ttl_ms, seq. Pops the newest item only while it
-- is still item seq (the one the caller decoded). Returns {'seq', item}, nil when the log
-- is empty, or {'moved'} when another item is newest now.
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
-- KEYS: thread, index. ARGV: member, log, ttl_ms. Returns how many items were live.
local base, name = KEYS[1], ARGV[2]
local _, order, _, _, mirror = log_keys(base, name)
local seqs = redis.call('LRANGE', order, 0, -1)
if #seqs == 0 then return 0 end
remove_items(base, name, seqs, redis.call('HINCRBY', base .. ':v', name, 1))
redis.call('DEL', order, mirror)
touch(base, KEYS[2], ARGV[1])
refresh_ttl(base, ARGV[3])
return #seqs
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
if ARGV[2] == '' then
  return fetch_items(items, redis.call('LRANGE', order, start, (stop or 0) - 1))
end
local at = tonumber(ARGV[2])
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

UPGRADE_MIRRORS = (
    HELPERS
    + r"""
-- KEYS: thread. Layout 1 -> 2: (re)build every log's mirror (:d) from its live items,
-- dropping layout 1's version header. Idempotent, so concurrent setups may both run it.
-- Returns the number of logs rebuilt.
local base = KEYS[1]
local names = redis.call('HKEYS', base .. ':v')
for _, name in ipairs(names) do
  local items, order, _, _, mirror = log_keys(base, name)
  redis.call('DEL', mirror)
  local seqs = redis.call('LRANGE', order, 0, -1)
  for first = 1, #seqs, 1000 do
    local data = redis.call('HMGET', items, unpack(seqs, first, math.min(first + 999, #seqs)))
    -- a missing item becomes '', which is no plain item: readers of the mirror then take
    -- the :o/:i path, which reports it
    for j = 1, #data do data[j] = data[j] or '' end
    redis.call('RPUSH', mirror, unpack(data))
  end
  same_ttl(base, mirror)
end
return #names
"""
)

SET_LAYOUT = r"""
-- KEYS: schema. ARGV: from, to. Records layout `to` only if the keys are still at `from`;
-- returns the layout now recorded.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end
return redis.call('GET', KEYS[1])
"""

GET = r"""
-- KEYS: thread. ARGV: has_id, id. Returns {'ok', id, header, payload, logs},
-- {'nothread'} or {'nocheckpoint', id}.
local head = redis.call('HGET', KEYS[1], 'head')
if not head then return {'nothread'} end
local id = head
if ARGV[1] == '1' then id = ARGV[2] end
local parts = redis.call('HMGET', KEYS[1] .. ':c', 'h:' .. id, 'p:' .. id, 'l:' .. id)
if not parts[1] and id ~= head then return {'nocheckpoint', id} end
return {'ok', id, parts[1], parts[2], parts[3]}
"""

LIST_CHECKPOINTS = r"""
-- KEYS: thread. ARGV: mode ('first' | 'before' | 'after'), id or score, page size.
-- Returns {'ok', id1, score1, header1, payload1, logs1, ...} newest first,
-- {'nothread'} or {'nobefore'}.
local base = KEYS[1]
if not redis.call('HGET', base, 'head') then return {'nothread'} end
local zkey = base .. ':z'
local below = '+inf'
if ARGV[1] == 'before' then
  local score = redis.call('ZSCORE', zkey, ARGV[2])
  if not score then return {'nobefore'} end
  below = '(' .. score
elseif ARGV[1] == 'after' then
  below = '(' .. ARGV[2]
end
local page = redis.call('ZREVRANGEBYSCORE', zkey, below, '-inf', 'WITHSCORES',
                        'LIMIT', 0, tonumber(ARGV[3]))
local out = {'ok'}
for j = 1, #page, 2 do
  local id = page[j]
  local parts = redis.call('HMGET', base .. ':c', 'h:' .. id, 'p:' .. id, 'l:' .. id)
  out[#out + 1] = id
  out[#out + 1] = page[j + 1]
  out[#out + 1] = parts[1]
  out[#out + 1] = parts[2]
  out[#out + 1] = parts[3]
end
return out
"""

LIST_THREADS = r"""
-- KEYS: index. ARGV: thread key prefix, offset, page size. Per thread, 9 values:
-- member, head, kind, sv, step, status, meta, updated (nil once expired), checkpoint count.
local out = {}
local last = tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1
for _, member in ipairs(redis.call('ZREVRANGE', KEYS[1], ARGV[2], last)) do
  local key = ARGV[1] .. member
  local f = redis.call('HMGET', key, 'head', 'kind', 'sv', 'step', 'status', 'meta', 'updated')
  out[#out + 1] = member
  for j = 1, 7 do out[#out + 1] = f[j] end
  out[#out + 1] = redis.call('ZCARD', key .. ':z')
end
return out
"""

PURGE = r"""
-- KEYS: index. ARGV: thread key prefix, members... Drops members whose thread is gone.
local gone = 0
for j = 2, #ARGV do
  if redis.call('EXISTS', ARGV[1] .. ARGV[j]) == 0 then
    gone = gone + redis.call('ZREM', KEYS[1], ARGV[j])
  end
end
return gone
"""

DELETE_THREAD = (
    HELPERS
    + r"""
-- KEYS: thread, index, lease. ARGV: member. Returns 1 if the thread existed.
local existed = redis.call('EXISTS', KEYS[1])
for _, key in ipairs(thread_keys(KEYS[1])) do redis.call('UNLINK', key) end
redis.call('UNLINK', KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return existed
"""
)


PRUNE = (
    HELPERS
    + SWEEP
    + r"""
-- KEYS: thread. ARGV: keep_last (''), cutoff_us (''). Returns the number deleted, -1 if
-- the thread has no checkpoint.
local base = KEYS[1]
if not redis.call('HGET', base, 'head') then return -1 end
local keep, cutoff = tonumber(ARGV[1]), tonumber(ARGV[2])
if not keep and not cutoff then return 0 end
local ckey, zkey = base .. ':c', base .. ':z'
local ids = redis.call('ZRANGE', zkey, 0, -1)
local remaining, doomed = {}, {}
for position, id in ipairs(ids) do
  local rank = #ids - position
  local outside = not keep or rank >= math.max(keep, 1)
  local old = true
  if cutoff and rank > 0 and outside then
    local created = tonumber(redis.call('HGET', ckey, 't:' .. id))
    old = created ~= nil and created < cutoff
  end
  if rank > 0 and outside and old then
    doomed[#doomed + 1] = id
    redis.call('HDEL', ckey, 'h:' .. id, 'p:' .. id, 'l:' .. id, 't:' .. id)
  else
    remaining[#remaining + 1] = id
  end
end
if #doomed == 0 then return 0 end
batched('ZREM', zkey, doomed)
sweep(base, remaining)
return #doomed
"""
)

ACQUIRE_LEASE = r"""
-- KEYS: lease. ARGV: owner, token, ttl_ms, has_take_over, take_over.
-- Returns {1} or {0, holder, ms left}. A lease of `take_over` is replaced like an expired one.
local holder = redis.call('HGET', KEYS[1], 'owner')
local replaceable = holder == ARGV[1] or (ARGV[4] == '1' and holder == ARGV[5])
if holder and not replaceable then return {0, holder, redis.call('PTTL', KEYS[1])} end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1}
"""

RENEW_LEASE = r"""
-- KEYS: lease. ARGV: token, ttl_ms. Returns 1 if renewed, 0 if the lease is lost.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""

RELEASE_LEASE = r"""
-- KEYS: lease. ARGV: token. Deletes the lease only if this token still holds it.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


ALL_SCRIPTS = (
    PUT,
    APPEND,
    POP,
    CLEAR,
    READ,
    TAIL,
    GET,
    LIST_CHECKPOINTS,
    LIST_THREADS,
    PURGE,
    DELETE_THREAD,
    PRUNE,
    ACQUIRE_LEASE,
    RENEW_LEASE,
    RELEASE_LEASE,
)
"""The scripts of the ordinary operations, for ``setup()`` to load in one round trip (the
upgrade's two run once per store and load when used)."""


class Scripts:
    """The scripts registered on one client; redis-py loads each on first use if needed."""

    def __init__(self, client: Redis) -> None:
        def load(source: str) -> AsyncScript:
            return client.register_script(source)

        self.put, self.append, self.pop = load(PUT), load(APPEND), load(POP)
        self.clear, self.read, self.tail = load(CLEAR), load(READ), load(TAIL)
        self.upgrade_mirrors, self.set_layout = load(UPGRADE_MIRRORS), load(SET_LAYOUT)
        self.get, self.list_checkpoints = load(GET), load(LIST_CHECKPOINTS)
        self.list_threads, self.purge = load(LIST_THREADS), load(PURGE)
        self.delete_thread, self.prune = load(DELETE_THREAD), load(PRUNE)
        self.acquire_lease = load(ACQUIRE_LEASE)
        self.renew_lease = load(RENEW_LEASE)
        self.release_lease = load(RELEASE_LEASE)
