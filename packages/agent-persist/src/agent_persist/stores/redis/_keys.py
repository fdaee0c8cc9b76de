"""Where the Redis store keeps things: one key layout, built from ids that are only ever data.

    keys = RedisKeys("agent_persist", "tenant-a")
    keys.thread("thread-1")   # 'agent_persist:{74656e616e742d61.7468726561642d31}:t'

Thread ids, log names and the namespace are hex-encoded (UTF-8) inside key names, so no id,
whatever it holds (``*``, ``?``, ``[``, braces, colons, newlines, a kilobyte of text), can
collide with another or be read as a pattern; since a prefix may not hold braces, two
prefixes can never produce the same key either.

Hash tags (layout 3). The text inside the first ``{...}`` of a key is its Redis Cluster hash
tag: keys with the same tag live in one slot, and a script may only touch keys of one slot.
Every key of a thread carries the tag ``{N.T}`` (namespace and thread, ``.`` is no hex
digit), so a thread's keys share a slot and the threads of one namespace spread over all
16,384 slots. The namespace's thread index has the tag ``{N}`` on one server; on a cluster
(layout 4) it is split into :data:`INDEX_SHARDS` sorted sets tagged ``{N#k}`` (``k`` two hex
digits, by CRC-32 of the member), so a namespace's index writes spread over shards too.

The layout (``N`` the namespace, ``T`` a thread, ``L`` a log, all hex):

=============================  ==========================================================
``P:schema``                   string: the key layout's version (:mod:`._schema`)
``P:{N}:threads``              sorted set: ``T`` scored by last update (µs since epoch)
``P:{N#k}:threads``            on a cluster instead: shard ``k`` of that sorted set
``P:{N.T}:lease``              hash ``owner``, ``token``; expires with the lease
``P:{N.T}:t``                  hash: head id, kind, sv, step, status, meta, n, updated
``P:{N.T}:t:c``                hash: ``h:<id>`` header, ``p:<id>`` payload,
                               ``l:<id>`` log versions (JSON), ``t:<id>`` created (µs)
``P:{N.T}:t:z``                sorted set: checkpoint ids scored by insertion order
``P:{N.T}:t:v`` / ``:p``       hashes: log name -> version / pinned version
``P:{N.T}:t:l:L:i``            hash: seq -> sealed item (live and soft-removed items)
``P:{N.T}:t:l:L:o``            list: seqs of the live items, oldest first
``P:{N.T}:t:l:L:r``            hash: seq -> version that removed it (soft-removed items)
``P:{N.T}:t:l:L:q``            list: soft-removed seqs in removal order, for cheap GC
``P:{N.T}:t:l:L:d``            list: the live items' data in order, a mirror of ``:o``
                               and ``:i`` kept by the same scripts, so one ``LRANGE``
                               reads the log (or its tail)
=============================  ==========================================================

Layouts 1 and 2 named a thread's keys ``P:{N}:t:T...`` and its lease ``P:{N}:lease:T``: the
namespace was the tag, so a whole namespace lived in one slot (:mod:`._schema` renames them).

The Lua scripts (the helpers of :mod:`._lua`) derive the per-thread keys from the thread key
``P:{N.T}:t`` with the same suffixes; change both together, as a new layout step of
:mod:`._schema`. Values cross into and out of Redis as text: times as microseconds since the
epoch (:func:`to_micros`), reply bytes through :func:`text`.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "INDEX_SHARDS",
    "STORE",
    "RedisKeys",
    "decode_id",
    "encode_id",
    "from_micros",
    "header_field",
    "payload_field",
    "shard_number",
    "text",
    "to_micros",
]

STORE = "redis"
"""How error messages name this store (see :func:`.._records.describe`)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def encode_id(value: str) -> str:
    """An id as it appears inside a key: the hex of its UTF-8 bytes."""
    return value.encode("utf-8").hex()


def decode_id(value: bytes | str) -> str:
    """Undo :func:`encode_id` (for index members read back from Redis)."""
    text = value.decode("ascii") if isinstance(value, bytes) else value
    return bytes.fromhex(text).decode("utf-8")


INDEX_SHARDS = 16
"""Shards of a namespace's thread index on a cluster (changing it is a new layout step)."""


def shard_number(member: str) -> int:
    """Which cluster index shard holds an index member (a thread id's hex): by CRC-32."""
    return zlib.crc32(member.encode("ascii")) % INDEX_SHARDS


class RedisKeys:
    """The key names of one store: one prefix, one namespace."""

    def __init__(self, prefix: str, namespace: str) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(
                f"a Redis key prefix must be non-empty and hold no braces, got {prefix!r}: "
                "braces would break the hash tags that keep each thread in one slot"
            )
        self._prefix = prefix
        self.namespace_hex = encode_id(namespace)
        self.schema = f"{prefix}:schema"
        """The key holding the layout version, shared by every namespace of the prefix."""
        self.index = f"{prefix}:{{{self.namespace_hex}}}:threads"
        """The namespace's threads, scored by last update (on one server)."""
        self.index_shards = tuple(
            f"{prefix}:{{{self.namespace_hex}#{shard:02x}}}:threads"
            for shard in range(INDEX_SHARDS)
        )
        """On a cluster: the index split by thread, each shard in a slot of its own."""
        self.thread_key_parts = (f"{prefix}:{{{self.namespace_hex}.", "}:t")
        """A thread key is these two around an index member (the hex of the thread id)."""

    def index_shard(self, member: str) -> str:
        """The cluster index shard of an index member (a thread id's hex)."""
        return self.index_shards[shard_number(member)]

    def member_thread(self, member: str) -> str:
        """The thread key of an index member (a thread id's hex)."""
        start, end = self.thread_key_parts
        return start + member + end

    def thread(self, thread_id: str) -> str:
        """The thread's own hash; every other key of the thread starts with it."""
        return self.member_thread(encode_id(thread_id))

    def checkpoints(self, thread_id: str) -> str:
        """The hash holding every checkpoint's header, payload and log versions."""
        return self.thread(thread_id) + ":c"

    def lease(self, thread_id: str) -> str:
        """The thread's lease, a hash that expires with the lease (in the thread's slot)."""
        return f"{self.thread_key_parts[0]}{encode_id(thread_id)}}}:lease"

    def log(self, thread_id: str, log: str) -> str:
        """The common start of a log's keys (add ``:i``, ``:o``, ``:r``, ``:q`` or ``:d``)."""
        return f"{self.thread(thread_id)}:l:{encode_id(log)}"

    def mirror(self, thread_id: str, log: str) -> str:
        """The list of the log's live items, in order: what plain reads ``LRANGE``."""
        return self.log(thread_id, log) + ":d"

    def pattern(self, tail: str) -> str:
        """A ``SCAN`` pattern: the prefix (glob characters escaped), then ``tail``.

        The layout key is shared by the namespaces of a prefix, so an upgrade scans them
        all; ids are hex, so only ``tail`` decides what matches.
        """
        return "".join("\\" + c if c in "\\*?[]" else c for c in self._prefix) + tail

    def version_pattern(self) -> str:
        """Layout 2's log versions (``P:{N}:t:T:v``) of every thread, in every namespace."""
        return self.pattern(":{*}:t:*:v")


def header_field(checkpoint_id: str) -> str:
    """The field of :meth:`RedisKeys.checkpoints` holding a checkpoint's header."""
    return "h:" + checkpoint_id


def payload_field(checkpoint_id: str) -> str:
    """The field of :meth:`RedisKeys.checkpoints` holding a checkpoint's sealed payload."""
    return "p:" + checkpoint_id


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """Undo :func:`to_micros`."""
    return _EPOCH + micros * _MICROSECOND


def text(value: Any) -> str:
    """A reply value as text (replies are bytes; scripts may also return integers)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
