"""Sealing a thread's clear values in place (``seal_thread``): two scripts, one slot each.

    reply = await run(STORED_VALUES, [thread_key], [])          # payloads and items, as bytes
    count = await run(REPLACE_VALUES, [thread_key], [kind, ref, seq, old, new, ...])

``REPLACE_VALUES`` replaces a payload or an item only if it still holds the bytes read
(compare-and-set), and keeps the log's mirror (``:d``) in step; nothing else (headers, log
versions, seqs, TTLs) changes, so an item re-sealed for its ``seq`` stays there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import CorruptCheckpointError
from .._records import StoredValue
from ._keys import text
from ._lua import HELPERS

__all__ = ["REPLACE_VALUES", "STORED_VALUES", "replace_args", "stored_values"]

STORED_VALUES = (
    HELPERS
    + r"""
-- KEYS: thread. Returns {} for a missing thread, else {checkpoint hash fields and values,
-- log names, {each log's item hash fields and values}}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local names = redis.call('HKEYS', KEYS[1] .. ':v')
local logs = {}
for index, name in ipairs(names) do
  local i = log_keys(KEYS[1], name)
  logs[index] = redis.call('HGETALL', i)
end
return {redis.call('HGETALL', KEYS[1] .. ':c'), names, logs}
"""
)

REPLACE_VALUES = (
    HELPERS
    + r"""
-- KEYS: thread. ARGV: groups of kind ('p' payload, 'i' item), checkpoint id or log name,
-- seq, old bytes, new bytes. Returns how many values still held their old bytes.
-- Each log changed gets its mirror rebuilt once, from its live items, at the end: O(items)
-- per log, where finding and setting each item in the mirror list would be O(items) each.
local replaced, changed = 0, {}
for g = 1, #ARGV, 5 do
  local kind, ref, seq, old, new = ARGV[g], ARGV[g + 1], ARGV[g + 2], ARGV[g + 3], ARGV[g + 4]
  if kind == 'p' then
    local c = KEYS[1] .. ':c'
    if redis.call('HGET', c, 'p:' .. ref) == old then
      redis.call('HSET', c, 'p:' .. ref, new)
      replaced = replaced + 1
    end
  else
    local i = log_keys(KEYS[1], ref)
    if redis.call('HGET', i, seq) == old then
      redis.call('HSET', i, seq, new)
      changed[ref] = true
      replaced = replaced + 1
    end
  end
end
for name in pairs(changed) do
  local items, order, _, _, mirror = log_keys(KEYS[1], name)
  redis.call('DEL', mirror)
  local seqs = redis.call('LRANGE', order, 0, -1)
  for first = 1, #seqs, 1000 do
    local data = redis.call('HMGET', items, unpack(seqs, first, math.min(first + 999, #seqs)))
    for j = 1, #data do data[j] = data[j] or '' end
    redis.call('RPUSH', mirror, unpack(data))
  end
  same_ttl(KEYS[1], mirror)
end
return replaced
"""
)


def stored_values(reply: Any, *, where: str) -> list[StoredValue]:
    """The values of a ``STORED_VALUES`` reply.

    An item's position is its ``seq``: its field in the log's item hash.
    """
    if not reply:
        return []
    fields, names, logs = reply
    flat: dict[str, bytes] = {text(fields[k]): fields[k + 1] for k in range(0, len(fields), 2)}
    values = [
        StoredValue(None, field[2:], text(flat.get("h:" + field[2:], b"")), None, data)
        for field, data in flat.items()
        if field.startswith("p:")
    ]
    for name, items in zip(names, logs, strict=True):
        log = text(name)
        for k in range(0, len(items), 2):
            seq = text(items[k])
            try:
                position = int(seq)
            except ValueError as exc:
                raise CorruptCheckpointError(
                    f"{where}: log {log!r} holds an item under {seq!r}, not a seq"
                ) from exc
            values.append(StoredValue(log, None, None, seq, items[k + 1], position))
    return values


def replace_args(changes: Sequence[tuple[StoredValue, bytes]]) -> list[Any]:
    """The ``REPLACE_VALUES`` arguments of the changes."""
    args: list[Any] = []
    for value, data in changes:
        if value.log is None:
            args += ["p", value.checkpoint_id, "", value.data, data]
        else:
            args += ["i", value.log, value.locator, value.data, data]
    return args
