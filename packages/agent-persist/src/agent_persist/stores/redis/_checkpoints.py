"""The Redis store's checkpoints: the scripts that put, get, list and delete, and their replies.

    reply = await run(PUT, [thread_key, index_key, lease_key], [...])   # one atomic script
    versions = put_outcome(envelope, reply)                              # or ConflictError
    envelope = decode_envelope(thread_id, [id, header, payload, logs], codec)

A script runs atomically on the server, so ``PUT`` checks the head (and, on an encrypted
store, where each log's first item will land: :mod:`.._positions`), empties the logs of
``clear_logs``, appends the items, records the log versions, moves the head, refreshes the
TTL and trims old checkpoints (``TRIM`` of :mod:`._retention`) with nothing in between; of
several writers expecting the same head exactly one wins. Every reply is checked before
use: a missing part or a value that does not parse raises the typed errors of
:mod:`.._records`, naming the thread, checkpoint, log and item.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from ...codecs import PayloadCodec
from ...envelope import Envelope, Status
from ...errors import (
    CheckpointNotFoundError,
    ConflictError,
    CorruptCheckpointError,
    ThreadNotFoundError,
)
from .._positions import PositionsMoved
from .._records import decode_checkpoint, describe, load_json
from ..base import ThreadInfo
from ._keys import STORE, decode_id, from_micros, text
from ._lua import HELPERS
from ._retention import TRIM

__all__ = [
    "DELETE_THREAD",
    "GET",
    "LIST_CHECKPOINTS",
    "LIST_THREADS",
    "PUT",
    "THREAD_ROW",
    "check_listing",
    "decode_envelope",
    "decode_thread",
    "header_metadata",
    "put_outcome",
]

THREAD_ROW = 9
"""Values per thread in the ``LIST_THREADS`` reply."""

PUT = (
    HELPERS
    + TRIM
    + r"""
-- KEYS: thread, lease, index (only on a single server). ARGV: member, id, has_parent,
-- parent, header, payload, created_us, kind, schema_version, step, status, metadata,
-- ttl_ms, keep_last, log count, has_lease, lease token, count of logs to clear, their
-- names, then per log: name, the seq its first item was sealed for ('' = not checked),
-- item count, items... The logs are cleared before the appends and the pins, so this
-- checkpoint sees them empty. Every check comes before the first write (a script has no
-- rollback): {'moved', name1, seq1, ...} names the seq each checked log's first item would
-- take now, when one differs.
local base, index = KEYS[1], KEYS[3]
local id = ARGV[2]
if lease_lost(KEYS[2], ARGV[16], ARGV[17]) then return {'leaselost'} end
local head = redis.call('HGET', base, 'head')
local expected = false
if ARGV[3] == '1' then expected = ARGV[4] end
if head ~= expected then return {'conflict', head} end
local ckey = base .. ':c'
if redis.call('HEXISTS', ckey, 'h:' .. id) == 1 then return {'duplicate'} end

local first_log = 19 + tonumber(ARGV[18])
local clearing, moved, wrong, at = {}, {'moved'}, false, first_log
for j = 19, first_log - 1 do clearing[ARGV[j]] = true end
for _ = 1, tonumber(ARGV[15]) do
  local name, sealed_for = ARGV[at], ARGV[at + 1]
  if sealed_for ~= '' then
    local now = first_after(base, name, clearing[name])
    moved[#moved + 1] = name
    moved[#moved + 1] = now
    if now ~= tonumber(sealed_for) then wrong = true end
  end
  at = at + 3 + tonumber(ARGV[at + 2])
end
if wrong then return moved end

for j = 19, first_log - 1 do clear_items(base, ARGV[j]) end
at = first_log
for _ = 1, tonumber(ARGV[15]) do
  local name, count = ARGV[at], tonumber(ARGV[at + 2])
  append_items(base, name, at + 3, count)
  at = at + 3 + count
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
-- KEYS: index. ARGV: thread key start and end (around a member), offset, page size.
-- Single server only: the threads' keys are in other slots. Per thread, 9 values:
-- member, head, kind, sv, step, status, meta, updated (nil once expired), checkpoint count.
local out = {}
local last = tonumber(ARGV[3]) + tonumber(ARGV[4]) - 1
for _, member in ipairs(redis.call('ZREVRANGE', KEYS[1], ARGV[3], last)) do
  local key = ARGV[1] .. member .. ARGV[2]
  local f = redis.call('HMGET', key, 'head', 'kind', 'sv', 'step', 'status', 'meta', 'updated')
  out[#out + 1] = member
  for j = 1, 7 do out[#out + 1] = f[j] end
  out[#out + 1] = redis.call('ZCARD', key .. ':z')
end
return out
"""

DELETE_THREAD = (
    HELPERS
    + r"""
-- KEYS: thread, lease, index (only on a single server). ARGV: member. Returns 1 if the
-- thread existed.
local existed = redis.call('EXISTS', KEYS[1])
for _, key in ipairs(thread_keys(KEYS[1])) do redis.call('UNLINK', key) end
redis.call('UNLINK', KEYS[2])
if KEYS[3] then redis.call('ZREM', KEYS[3], ARGV[1]) end
return existed
"""
)


def decode_envelope(thread_id: str, parts: Sequence[Any], codec: PayloadCodec) -> Envelope:
    """Rebuild a checkpoint from ``[id, header, payload, log versions]``."""
    try:
        checkpoint_id = text(parts[0])
    except UnicodeDecodeError as exc:
        where = describe(STORE, thread_id)
        raise CorruptCheckpointError(f"{where}: a checkpoint id is damaged ({exc})") from exc
    header, payload, logs = parts[1:4]
    where = describe(STORE, thread_id, checkpoint_id)
    for name, value in (("header", header), ("payload", payload), ("log versions", logs)):
        if value is None:
            raise CorruptCheckpointError(f"{where}: the {name} is missing")
    return decode_checkpoint(
        header,
        payload,
        logs,
        codec=codec,
        where=where,
        thread_id=thread_id,
        checkpoint_id=checkpoint_id,
    )


def header_metadata(header: bytes | None) -> dict[str, Any] | None:
    """The metadata in a stored header, or ``None`` if only a full decode can say why not.

    Filtering on it first spares decoding the payloads of checkpoints that do not match.
    """
    try:
        fields: object = load_json(header, where="") if header is not None else None
    except CorruptCheckpointError:
        return None
    if not isinstance(fields, dict):
        return None
    metadata = cast("dict[str, object]", fields).get("metadata")
    return cast("dict[str, Any]", metadata) if isinstance(metadata, dict) else None


def decode_thread(row: Sequence[Any]) -> ThreadInfo | None:
    """A thread from its ``LIST_THREADS`` row; ``None`` once it expired."""
    member, head, kind, schema_version, step, status, meta, updated, count = row
    if updated is None:
        return None
    try:
        thread_id = decode_id(member)
    except ValueError as exc:
        raise CorruptCheckpointError(
            f"{STORE}: the thread index holds a damaged member {member!r} ({exc})"
        ) from exc
    where = describe(STORE, thread_id)
    try:
        metadata: object = load_json(meta, where=where) if meta is not None else {}
        if not isinstance(metadata, dict):
            raise ValueError("not a JSON object")
        return ThreadInfo(
            thread_id=thread_id,
            head_id=text(head) if head is not None else None,
            kind=text(kind) if kind is not None else None,
            schema_version=int(schema_version) if schema_version is not None else None,
            step=int(step) if step is not None else -1,
            status=Status(text(status)) if status is not None else None,
            checkpoint_count=int(count),
            metadata=cast("dict[str, Any]", metadata),
            updated_at=from_micros(int(updated)),
        )
    except ValueError as exc:
        raise CorruptCheckpointError(f"{where}: the thread's summary is damaged ({exc})") from exc


def put_outcome(envelope: Envelope, reply: Sequence[Any]) -> dict[str, int]:
    """The log versions a ``PUT`` recorded, or the conflict or moved logs it reported."""
    outcome = text(reply[0])
    if outcome == "conflict":
        head = text(reply[1]) if reply[1] is not None else None
        raise ConflictError(
            f"{describe(STORE, envelope.thread_id)}: expected head "
            f"{envelope.parent_id!r} but the head is {head!r}"
        )
    if outcome == "duplicate":
        raise ConflictError(f"{describe(STORE, envelope.thread_id, envelope.checkpoint_id)} exists")
    if outcome == "moved":
        raise PositionsMoved({text(reply[k]): int(reply[k + 1]) for k in range(1, len(reply), 2)})
    return cast("dict[str, int]", json.loads(reply[1]))


def check_listing(thread_id: str, before: str | None, outcome: str) -> None:
    """Raise what a ``LIST_CHECKPOINTS`` reply reports instead of a page."""
    if outcome == "nothread":
        raise ThreadNotFoundError(f"{describe(STORE, thread_id)} does not exist")
    if outcome == "nobefore":
        raise CheckpointNotFoundError(f"{describe(STORE, thread_id, before)} not found")
