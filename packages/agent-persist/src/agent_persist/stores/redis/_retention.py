"""The Redis store's retention: trimming and pruning checkpoints, collecting log items, purging.

    removed = await run(PRUNE, [thread_key], [keep_last, cutoff_us])   # one atomic script

Deleting checkpoints can make log items garbage: an item removed (popped or cleared) at
version ``r`` stays stored while a checkpoint that recorded a version ``v`` with
``seq <= v < r`` remains. ``TRIM`` is the cheap collection a ``put`` runs when
``keep_last`` drops checkpoints (:mod:`._checkpoints` prepends it to ``PUT``); ``SWEEP`` the
full one ``PRUNE`` runs. Expired threads vanish by Redis's own expiry; ``PURGE`` then drops
them from the namespace's index.
"""

from __future__ import annotations

from ._lua import HELPERS

__all__ = ["PRUNE", "PURGE", "PURGE_INDEX", "SWEEP", "TRIM"]

# The checkpoints beyond the newest `keep` go. A soft-removed item stays visible to some
# remaining checkpoint unless its stamp is at most the oldest remaining checkpoint's version
# of its log (histories are linear and versions only grow), so the removal queue, ordered by
# stamp, is popped up to that version: the cost is the garbage, never the log.
TRIM = r"""
local function collect(base, name, floor)
  local items, _, removed, queue = log_keys(base, name)
  while true do
    local seq = redis.call('LINDEX', queue, 0)
    if not seq then return end
    local stamp = redis.call('HGET', removed, seq)
    if stamp and tonumber(stamp) > floor then return end
    if stamp then
      redis.call('HDEL', items, seq)
      redis.call('HDEL', removed, seq)
    end
    redis.call('LPOP', queue)
  end
end

local function trim(base, keep)
  local ckey, zkey = base .. ':c', base .. ':z'
  local extra = redis.call('ZCARD', zkey) - keep
  if extra <= 0 then return end
  for _, id in ipairs(redis.call('ZRANGE', zkey, 0, extra - 1)) do
    redis.call('HDEL', ckey, 'h:' .. id, 'p:' .. id, 'l:' .. id, 't:' .. id)
  end
  redis.call('ZREMRANGEBYRANK', zkey, 0, extra - 1)
  local oldest = redis.call('ZRANGE', zkey, 0, 0)[1]
  local floors = decode_logs(redis.call('HGET', ckey, 'l:' .. oldest))
  if not floors then return end
  for _, name in ipairs(redis.call('HKEYS', base .. ':v')) do
    collect(base, name, tonumber(floors[name]) or 0)
  end
end
"""

# Visible-to-someone test for prune: the smallest remaining version >= seq must be < stamp.
SWEEP = r"""
local function first_at_least(sorted, value)
  local lo, hi = 1, #sorted
  while lo <= hi do
    local mid = math.floor((lo + hi) / 2)
    if sorted[mid] < value then lo = mid + 1 else hi = mid - 1 end
  end
  return sorted[lo]
end

local function sweep_log(base, name, versions)
  local items, _, removed, queue = log_keys(base, name)
  local stamps = redis.call('HGETALL', removed)
  local kept, gone = {}, {}
  for j = 1, #stamps, 2 do
    local seq, stamp = tonumber(stamps[j]), tonumber(stamps[j + 1])
    local seen = first_at_least(versions, seq)
    if seen and seen < stamp then
      kept[#kept + 1] = {seq, stamp}
    else
      gone[#gone + 1] = stamps[j]
    end
  end
  batched('HDEL', items, gone)
  batched('HDEL', removed, gone)
  table.sort(kept, function(a, b) return a[2] < b[2] or (a[2] == b[2] and a[1] < b[1]) end)
  local order = {}
  for _, pair in ipairs(kept) do order[#order + 1] = pair[1] end
  redis.call('DEL', queue)
  batched('RPUSH', queue, order)
  same_ttl(base, queue)
end

local function sweep(base, remaining)
  local seen = {}
  for _, id in ipairs(remaining) do
    local logs = decode_logs(redis.call('HGET', base .. ':c', 'l:' .. id))
    if not logs then return end
    for name, version in pairs(logs) do
      seen[name] = seen[name] or {}
      table.insert(seen[name], tonumber(version))
    end
  end
  for _, name in ipairs(redis.call('HKEYS', base .. ':v')) do
    local versions = seen[name] or {}
    table.sort(versions)
    sweep_log(base, name, versions)
  end
end
"""

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

PURGE = r"""
-- KEYS: index. ARGV: thread key start and end (around a member), members... Drops members
-- whose thread is gone. Single server only (the threads are in other slots).
local gone = 0
for j = 3, #ARGV do
  if redis.call('EXISTS', ARGV[1] .. ARGV[j] .. ARGV[2]) == 0 then
    gone = gone + redis.call('ZREM', KEYS[1], ARGV[j])
  end
end
return gone
"""

PURGE_INDEX = r"""
-- KEYS: index. ARGV: member1, score1, member2, score2, ... (members whose thread the caller
-- found gone, with the score they had then). On a cluster the threads are in other slots,
-- so the store checks them first; a member is dropped only if its score is unchanged, since
-- a write that re-created the thread meanwhile re-scored it first (see _store.py).
local gone = 0
for j = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[j])
  if score and tonumber(score) == tonumber(ARGV[j + 1]) then
    gone = gone + redis.call('ZREM', KEYS[1], ARGV[j])
  end
end
return gone
"""
