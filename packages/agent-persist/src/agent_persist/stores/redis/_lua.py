"""The Lua helpers every Redis script starts with: key derivation, TTLs and log primitives.

    PUT = HELPERS + TRIM + "...the script's own body..."

Each script is self-contained, so the helpers are prepended as source text rather than
loaded once as a library (Redis functions would need Redis 7 and a separate loading step).
``HELPERS`` holds the key derivation (the suffixes of :mod:`._keys`), TTL refresh and the log
primitives. The scripts themselves live with their concern (:mod:`._checkpoints`,
:mod:`._logs`, :mod:`._leases`, :mod:`._retention`, :mod:`._schema`); the garbage collection
(``TRIM``, ``SWEEP``) is in :mod:`._retention`.
"""

from __future__ import annotations

__all__ = ["HELPERS"]

HELPERS = r"""
local function hex(s)
  return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end))
end

local function log_keys(base, name)
  local b = base .. ':l:' .. hex(name)
  return b .. ':i', b .. ':o', b .. ':r', b .. ':q', b .. ':d'
end

local function now_us()
  local t = redis.call('TIME')
  return t[1] .. string.rep('0', 6 - #t[2]) .. t[2]
end

-- Run COMMAND KEY v1 v2 ... in chunks: unpack() fails beyond a few thousand values.
local function batched(command, key, values)
  for first = 1, #values, 1000 do
    redis.call(command, key, unpack(values, first, math.min(first + 999, #values)))
  end
end

-- Whether a write given a lease (has_lease '1') must be refused: the lease key, which
-- expires with the lease, no longer holds its token.
local function lease_lost(lease_key, has_lease, token)
  return has_lease == '1' and redis.call('HGET', lease_key, 'token') ~= token
end

local function thread_keys(base)
  local keys = {base, base .. ':c', base .. ':z', base .. ':v', base .. ':p'}
  for _, name in ipairs(redis.call('HKEYS', base .. ':v')) do
    local i, o, r, q, d = log_keys(base, name)
    keys[#keys + 1] = i
    keys[#keys + 1] = o
    keys[#keys + 1] = r
    keys[#keys + 1] = q
    keys[#keys + 1] = d
  end
  return keys
end

-- Every key of the thread expires together, TTL after this write ('' = never).
local function refresh_ttl(base, ttl)
  for _, key in ipairs(thread_keys(base)) do
    if ttl == '' then redis.call('PERSIST', key) else redis.call('PEXPIRE', key, ttl) end
  end
end

-- A key created outside refresh_ttl gets the thread's remaining time.
local function same_ttl(base, key)
  local left = redis.call('PTTL', base)
  if left > 0 then redis.call('PEXPIRE', key, left) end
end

local function touch(base, index, member)
  local now = now_us()
  redis.call('HSET', base, 'updated', now)
  -- on a cluster the index is in another slot: the store updates it itself (see _store.py)
  if index then redis.call('ZADD', index, now, member) end
end

-- Append ARGV[first .. first + count - 1] to the log; item seq = the log's version. The
-- mirror (:d) gets the same items: it holds exactly the live items, in order.
local function append_items(base, name, first, count)
  local items, order, _, _, mirror = log_keys(base, name)
  local vkey = base .. ':v'
  local version = tonumber(redis.call('HGET', vkey, name) or '0')
  local fields, seqs, datas = {}, {}, {}
  for j = 0, count - 1 do
    version = version + 1
    fields[#fields + 1] = version
    fields[#fields + 1] = ARGV[first + j]
    seqs[#seqs + 1] = version
    datas[#datas + 1] = ARGV[first + j]
  end
  if count > 0 then
    batched('HSET', items, fields)
    batched('RPUSH', order, seqs)
    batched('RPUSH', mirror, datas)
  end
  redis.call('HSET', vkey, name, version)
end

-- The seq the first item appended to the log would take now, the log cleared first or not
-- (first_after of stores/_positions.py): clearing a log with live items is a version of its
-- own. An encrypting store sealed its items for a seq: the write checks it before anything.
local function first_after(base, name, clearing)
  local _, order = log_keys(base, name)
  local version = tonumber(redis.call('HGET', base .. ':v', name) or '0')
  if clearing and redis.call('LLEN', order) > 0 then version = version + 1 end
  return version + 1
end

-- Items no checkpoint can have seen (seq > pinned) go; the others are stamped removed.
local function remove_items(base, name, seqs, version)
  local items, _, removed, queue = log_keys(base, name)
  local pinned = tonumber(redis.call('HGET', base .. ':p', name) or '0')
  local gone, stamps, queued = {}, {}, {}
  for _, seq in ipairs(seqs) do
    if tonumber(seq) > pinned then
      gone[#gone + 1] = seq
    else
      stamps[#stamps + 1] = seq
      stamps[#stamps + 1] = version
      queued[#queued + 1] = seq
    end
  end
  batched('HDEL', items, gone)
  batched('HSET', removed, stamps)
  batched('RPUSH', queue, queued)
end

-- Remove every live item of the log in one new version (a missing or empty log: nothing).
-- Returns how many items were live. The caller touches the thread and refreshes the TTL.
local function clear_items(base, name)
  local _, order, _, _, mirror = log_keys(base, name)
  local seqs = redis.call('LRANGE', order, 0, -1)
  if #seqs == 0 then return 0 end
  remove_items(base, name, seqs, redis.call('HINCRBY', base .. ':v', name, 1))
  redis.call('DEL', order, mirror)
  return #seqs
end

-- {'seq1,seq2,...', item1, item2, ...}: one string for the seqs halves the reply's size.
local function fetch_items(items, seqs)
  local out = {table.concat(seqs, ',')}
  for first = 1, #seqs, 1000 do
    local data = redis.call('HMGET', items, unpack(seqs, first, math.min(first + 999, #seqs)))
    for j = 1, #data do out[#out + 1] = data[j] end
  end
  return out
end

local function decode_logs(text)
  if not text then return nil end
  local ok, logs = pcall(cjson.decode, text)
  if ok and type(logs) == 'table' then return logs end
  return nil
end
"""
