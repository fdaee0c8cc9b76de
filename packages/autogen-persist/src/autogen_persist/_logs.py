"""Linear storage: the lists that only grow go to append-only logs, the rest to the payload.

    tracker = LogTracker()
    payload, appends = await tracker.plan({"thread": Tracked("thread", live, dump)}, length)
    stored = await store.put(envelope_with(payload), appends=appends)
    tracker.commit()                                   # the put succeeded: new baseline
    full = await read_logs(store, stored, stored.payload)   # the lists are back

A tracked list becomes a reference ``{"$log": name, "start": s, "length": n, "digest": d}``:
the list is items ``[s, s + n)`` of the log as the checkpoint saw it, and ``d`` chains the
hashes of its items. A checkpoint appends only the items added since the previous one. The
tracker checks that the list still starts with exactly the objects it saw last time (an
identity check, so it costs no serialisation); when it does not (a context cleared, trimmed
or rewritten, a buffer emptied), the whole list is appended again after the old items and
the reference's ``start`` moves past them, so the rewrite is atomic with the checkpoint.

Reading a reference checks its digest. The first read of a log on an open store hashes the
whole list; the chain it verified is remembered per store (``_VerifiedChains``), so a later
read of the same log (the next resume, a longer history) hashes only the items added since:
a digest that chains through a verified prefix proves the writer saw the same prefix. A
mismatch falls back to hashing the whole list before it is called corrupt.

Two references with the same length and digest name the same items (a team's ``output`` and
its manager's ``thread`` hold one transcript): a load reads and verifies one of them and
gives the other a list of its own holding the same item objects, instead of reading,
decoding and hashing the transcript twice. The copy's stored items are not read, so its
chain is not recorded as verified.
"""

from __future__ import annotations

import hashlib
import json
import operator
import threading
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from agent_persist import Envelope, canonical_json
from agent_persist.errors import CorruptCheckpointError
from agent_persist.stores import BaseStore, CheckpointStore

__all__ = ["LogRef", "LogTracker", "Tracked", "chain_digest", "find_refs", "nodes", "read_logs"]

_REF = "$log"


def chain_digest(digest: str, items: Sequence[Any]) -> str:
    """Extend a list's digest with more items (``""`` is the empty list's digest)."""
    for item in items:
        digest = hashlib.sha256(digest.encode() + b"\n" + canonical_json(item)).hexdigest()[:32]
    return digest


@dataclass(frozen=True, slots=True)
class LogRef:
    """Where a list lives: ``length`` items of log ``name`` from position ``start``."""

    name: str
    start: int
    length: int
    digest: str

    def to_json(self) -> dict[str, Any]:
        """The reference as it is stored in a payload."""
        return {_REF: self.name, "start": self.start, "length": self.length, "digest": self.digest}

    @classmethod
    def from_json(cls, value: Any) -> LogRef | None:
        """The reference ``value`` holds, or ``None`` if it is not one."""
        if not isinstance(value, dict) or _REF not in value:
            return None
        fields = cast("dict[str, Any]", value)
        name, start, length, digest = (
            fields.get(_REF),
            fields.get("start"),
            fields.get("length"),
            fields.get("digest"),
        )
        if not (
            isinstance(name, str)
            and isinstance(start, int)
            and isinstance(length, int)
            and isinstance(digest, str)
            and start >= 0
            and length >= 0
        ):
            raise CorruptCheckpointError(f"malformed log reference {fields!r}")
        return cls(name, start, length, digest)


@dataclass(frozen=True, slots=True)
class Tracked:
    """A live list (AutoGen objects) whose items are stored in the log ``name``."""

    name: str
    items: list[Any]
    dump: Callable[[Sequence[Any]], list[Any]]


@dataclass(slots=True)
class _Seen:
    ref: LogRef
    items: list[Any]


class LogTracker:
    """Remembers, per log, what the last checkpoint stored, to write only what is new."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}
        self._pending: dict[str, _Seen] = {}

    def remember_all(self, tree: Any, refs: Mapping[str, LogRef], *, verify: bool = False) -> None:
        """:meth:`remember` every tracked list of a captured ``tree`` that ``refs`` names."""
        for node in nodes(tree):
            if isinstance(node, Tracked) and node.name in refs:
                self.remember(node, refs[node.name], verify=verify)

    def remember(self, tracked: Tracked, ref: LogRef, *, verify: bool = False) -> None:
        """Record that ``tracked``'s items are what ``ref`` stores.

        Right after a load they are, by construction. With ``verify`` (a live object that
        was not loaded by this tracker, as in ``save_agent``) the first ``ref.length``
        items are dumped and hashed, and only a match counts as a prefix: O(history) in
        time, still O(new) in storage.
        """
        items = tracked.items
        if verify and (
            len(items) < ref.length
            or chain_digest("", tracked.dump(items[: ref.length])) != ref.digest
        ):
            self._seen[tracked.name] = _Seen(ref, [object()])  # forces a rewrite
            return
        self._seen[tracked.name] = _Seen(ref, list(items[: ref.length] if verify else items))

    async def plan(
        self, tree: Any, log_length: Callable[[str], Awaitable[int]]
    ) -> tuple[Any, dict[str, list[Any]]]:
        """Replace every :class:`Tracked` in ``tree`` by its reference; return the appends.

        ``log_length`` gives a log's physical length, asked only for a log this tracker has
        not seen (the first checkpoint of a structure), so new items go after any old ones.
        """
        lengths: dict[str, int] = {}
        while True:  # a plain walk: a coroutine per node cost more than the rest
            self._pending = {}
            appends: dict[str, list[Any]] = {}
            unknown: set[str] = set()
            planned = self._walk(tree, lengths, appends, unknown)
            if not unknown:
                return planned, appends
            for name in unknown:  # a log not seen yet: its length, then the walk again
                lengths[name] = await log_length(name)

    def _walk(
        self,
        node: Any,
        lengths: Mapping[str, int],
        appends: dict[str, list[Any]],
        unknown: set[str],
    ) -> Any:
        """``node`` with its tracked lists planned; names needing a length go to ``unknown``."""
        if isinstance(node, Tracked):
            if node.name not in self._seen and node.name not in lengths:
                unknown.add(node.name)
                return None
            ref, new = self._plan_one(node, lengths)
            if new:
                appends[node.name] = new
            return ref.to_json()
        if isinstance(node, Mapping):
            mapping = cast("Mapping[str, Any]", node)
            return {k: self._walk(v, lengths, appends, unknown) for k, v in mapping.items()}
        if isinstance(node, list):
            return [self._walk(v, lengths, appends, unknown) for v in cast("list[Any]", node)]
        return node

    def _plan_one(self, tracked: Tracked, lengths: Mapping[str, int]) -> tuple[LogRef, list[Any]]:
        items = tracked.items
        seen = self._seen.get(tracked.name)
        if seen is not None and _extends(items, seen.items):
            new = tracked.dump(items[len(seen.items) :])
            ref = LogRef(
                tracked.name,
                seen.ref.start,
                seen.ref.length + len(new),
                chain_digest(seen.ref.digest, new),
            )
        else:
            start = seen.ref.start + seen.ref.length if seen is not None else lengths[tracked.name]
            new = tracked.dump(items)
            ref = LogRef(tracked.name, start, len(new), chain_digest("", new))
        self._pending[tracked.name] = _Seen(ref, list(items))
        return ref, new

    def commit(self) -> None:
        """The planned checkpoint was stored: it is the baseline of the next one."""
        self._seen.update(self._pending)
        self._pending = {}


def _extends(items: list[Any], seen: list[Any]) -> bool:
    """Whether ``items`` starts with exactly the objects of ``seen`` (by identity)."""
    return len(items) >= len(seen) and all(map(operator.is_, items, seen))


async def read_logs(
    store: CheckpointStore,
    envelope: Envelope,
    tree: Any,
    *,
    share: bool = False,
    own: bool = False,
) -> tuple[Any, dict[str, LogRef]]:
    """``tree`` with every log reference replaced by the list it names, verified.

    Returns the tree and the references found, by log name. A log shorter than its
    reference or whose items do not match the digest raises ``CorruptCheckpointError``.

    With ``share``, references whose length and digest equal an earlier one's are not read:
    each gets its own list of the earlier one's (verified) item objects. Only for a caller
    that does not mutate the items in place (AutoGen's ``load_state`` builds its own
    objects from them); without it every list and item is decoded on its own. With ``own``
    too, each such list gets copies of the items instead (decoded from their canonical
    JSON: cheaper than reading and verifying them again), so no object is reachable twice
    and the tree may be edited in place (by migrations).
    """
    found = [ref for node in _ref_nodes(tree) if (ref := LogRef.from_json(node)) is not None]
    refs = {ref.name: ref for ref in found}
    same = _same_items(found) if share else {}
    lists = await _read_refs(store, envelope, [ref for ref in found if ref not in same])
    chains = _VerifiedChains.of(store)
    for ref, items in lists.items():
        if len(items) != ref.length or not chains.verify(envelope.thread_id, ref, items):
            raise CorruptCheckpointError(
                f"checkpoint {envelope.checkpoint_id!r} of thread {envelope.thread_id!r}: "
                f"log {ref.name!r} does not hold the {ref.length} items it recorded "
                f"(found {len(items)}, or their digest differs)"
            )
    for copy, read in same.items():
        lists[copy] = _copied(lists[read]) if own else list(lists[read])
    handed: set[LogRef] = set()

    def replace(node: Any) -> Any:
        ref = LogRef.from_json(node)
        if ref is not None:
            if own and ref in handed:  # the same reference twice: a copy of its own
                return _copied(lists[ref])
            handed.add(ref)
            return lists[ref]
        if isinstance(node, dict):
            mapping = cast("dict[str, Any]", node)
            return {key: replace(value) for key, value in mapping.items()}
        if isinstance(node, list):
            return [replace(value) for value in cast("list[Any]", node)]
        return node

    return replace(tree), refs


def _copied(items: list[Any]) -> list[Any]:
    """A deep copy of decoded JSON items (C-level encode and decode)."""
    return cast("list[Any]", json.loads(canonical_json(items, max_depth=None)))


def _same_items(refs: Sequence[LogRef]) -> dict[LogRef, LogRef]:
    """Each reference whose items an earlier reference names, mapped to that one.

    An equal chain digest over as many items means equal items (canonical JSON, SHA-256).
    """
    first: dict[tuple[int, str], LogRef] = {}
    same: dict[LogRef, LogRef] = {}
    for ref in dict.fromkeys(refs):
        earlier = first.setdefault((ref.length, ref.digest), ref)
        if earlier is not ref:
            same[ref] = earlier
    return same


def _ref_nodes(node: Any) -> Iterator[Any]:
    """Every dict of ``node`` that may be a log reference (references do not nest)."""
    if isinstance(node, dict):
        yield node
        if _REF not in node:
            for value in cast("dict[str, Any]", node).values():
                yield from _ref_nodes(value)
    elif isinstance(node, list):
        for value in cast("list[Any]", node):
            yield from _ref_nodes(value)


async def _read_refs(
    store: CheckpointStore, envelope: Envelope, refs: Sequence[LogRef]
) -> dict[LogRef, list[Any]]:
    """The items of every reference as ``envelope`` saw them: one store call where it can.

    A :class:`~agent_persist.stores.BaseStore` reads all logs at once (``read_logs``); a
    log named by two references of different ranges, or a store that only offers the
    protocol, is read one reference at a time.
    """
    ranges: dict[str, tuple[int, int | None]] = {}
    single: list[LogRef] = []
    for ref in dict.fromkeys(refs):
        bounds = (ref.start, ref.start + ref.length)
        if ranges.setdefault(ref.name, bounds) != bounds or not isinstance(store, BaseStore):
            single.append(ref)
    together: dict[str, list[Any]] = {}
    if isinstance(store, BaseStore) and ranges:
        together = await store.read_logs(envelope.thread_id, ranges, at=envelope)
    lists: dict[LogRef, list[Any]] = {}
    for ref in dict.fromkeys(refs):
        if ref in single:
            lists[ref] = await store.read_log(
                envelope.thread_id,
                ref.name,
                start=ref.start,
                stop=ref.start + ref.length,
                at=envelope,
            )
        else:
            lists[ref] = together[ref.name]
    return lists


class _VerifiedChains:
    """The log chains already verified on one open store: ``(thread, log, start) -> (n, d)``.

    ``n`` items from ``start`` hashed to the chain digest ``d``. Bounded (least recently
    used first out) and held weakly by store, so a closed store takes its entries with it.
    """

    LIMIT: ClassVar[int] = 4096
    _by_store: ClassVar[weakref.WeakKeyDictionary[object, _VerifiedChains]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self) -> None:
        self._chains: OrderedDict[tuple[str, str, int], tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()  # a store serves many threads and event loops

    @classmethod
    def of(cls, store: object) -> _VerifiedChains:
        """The chains verified on ``store`` (a fresh set for an object without weak refs)."""
        try:
            chains = cls._by_store.get(store)
            if chains is None:
                chains = cls._by_store[store] = cls()
        except TypeError:
            return cls()
        return chains

    def verify(self, thread_id: str, ref: LogRef, items: Sequence[Any]) -> bool:
        """Whether ``items`` (``ref.length`` of them) hash to ``ref.digest``; O(new) if known."""
        key = (thread_id, ref.name, ref.start)
        with self._lock:
            known = self._chains.get(key)
        if known is not None and known[0] <= ref.length:
            length, digest = known
            ok = chain_digest(digest, items[length:]) == ref.digest
        else:
            ok = False
        if not ok:
            ok = chain_digest("", items) == ref.digest
        if ok:
            with self._lock:
                latest = self._chains.get(key)
                if latest is None or latest[0] <= ref.length:
                    self._chains[key] = (ref.length, ref.digest)
                    self._chains.move_to_end(key)
                while len(self._chains) > self.LIMIT:
                    self._chains.popitem(last=False)
        return ok


def nodes(tree: Any) -> Iterator[Any]:
    """Every value inside a tree of dicts and lists, the tree itself first."""
    yield tree
    if isinstance(tree, Mapping):
        for value in cast("Mapping[str, Any]", tree).values():
            yield from nodes(value)
    elif isinstance(tree, list):
        for value in cast("list[Any]", tree):
            yield from nodes(value)


def find_refs(tree: Any) -> dict[str, LogRef]:
    """The log references in a stored payload, by log name, without reading the logs."""
    refs = (LogRef.from_json(node) for node in nodes(tree))
    return {ref.name: ref for ref in refs if ref is not None}
