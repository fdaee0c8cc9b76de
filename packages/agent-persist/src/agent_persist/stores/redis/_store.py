"""The Redis store: checkpoints, logs and leases in Redis, one round trip per checkpoint.

    store = RedisStore.from_url("redis://localhost:6379/0", namespace="tenant-a",
                                ttl=timedelta(days=7), keep_last=20)
    async with store:
        saved = await store.put(envelope, appends={"transcript": [message]})
        items = await store.read_log("thread-1", "transcript", at=saved)

Every write is a Lua script, so it is atomic and costs one round trip: a ``put`` checks the
expected head (encrypted: and the seq each log's items were sealed for), appends the new
items, records every log's version, moves the head, refreshes the TTL and trims old
checkpoints on the server, in time proportional to what it adds, never to the history.
``ttl`` uses Redis's own expiry on every key of a thread, refreshed by each write. Ids are
hex-encoded inside key names (:mod:`._keys`), so no id is ever a pattern or collides with
another. Each method here runs one script of :mod:`._checkpoints`,
:mod:`._logs`, :mod:`._leases` or :mod:`._retention` (registered by :mod:`._scripts`) and
decodes its reply with the same module's functions.

``setup()`` upgrades keys of an older key layout by the steps of :mod:`._schema` (layout 1
to 2 rebuilds each log's read mirror, 2 to 3 gives each thread its own hash tag): stop every
process running the older version first, as for any schema migration; afterwards older code
refuses the keys.

Redis Cluster (``redis+cluster://host:port,host:port``). Every key of a thread carries the
hash tag ``{namespace.thread}`` (:mod:`._keys`), so each script's keys are in one slot and
the threads spread over every slot and shard. Scripts name in ``KEYS`` the thread key and
its lease; the thread's other keys (checkpoints, logs) are derived inside the script from
the thread key, which puts them in the same slot by construction. Redis lets a script
without flags reach undeclared keys of the slot it runs in; declaring each one is not
possible, since which logs a thread has is only known inside the script (``HKEYS`` of
its log versions).

The namespace's thread index (used by ``list_threads`` and ``purge_expired``) is, on a
cluster, :data:`~._keys.INDEX_SHARDS` sorted sets ``P:{N#k}:threads`` in slots of their own
(:mod:`._cluster_index`), so no script can write it together with the thread. The
thread's own keys are the truth and the index is a hint, kept in this order:

* every write first adds the thread to the index (``ZADD``, scored now), then runs its
  script: a crash in between leaves a member whose thread is missing or older, never a
  thread missing from the index. Listings skip members whose thread is gone;
* ``delete_thread`` deletes the thread first, then the member;
* ``purge_expired`` drops a member only if its thread is gone and its score is still the
  one seen when checking (``PURGE_INDEX``): a write racing the purge re-scored it first.

So ``list_threads`` never misses a thread that exists, at the cost of one more round trip
per write on a cluster (the index write; one server keeps doing both in one script). A
thread's member is in the shard its id hashes to, so one tenant's index writes spread over
the shards as its threads do.

Replication is asynchronous: a write acknowledged by the master can be lost if the master
fails before its replicas have it. ``wait_replicas=N`` makes each write wait (``WAIT``)
until N replicas have it, at the cost of a round trip to the replicas per write.

Needs the ``redis`` extra: ``pip install "agent-persist[redis]"``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from ..._json import JSON, canonical_json
from ...codecs import PayloadCodec
from ...envelope import Envelope
from ...errors import (
    AgentPersistError,
    CheckpointNotFoundError,
    LeaseLostError,
    StoreUnavailableError,
    ThreadNotFoundError,
)
from .._arguments import check_bool, check_pool_size, check_pool_timeout
from .._loops import LoopBound, LoopLock, PerLoop, Pinned
from .._positions import PositionsMoved
from .._records import (
    EncodedCheckpoint,
    StoredValue,
    describe,
    metadata_matches,
    open_lines,
)
from ..base import BaseStore, Lease, ThreadInfo
from . import _cluster_index as cluster_index
from . import _seal as sealing
from ._checkpoints import (
    THREAD_ROW,
    check_listing,
    decode_envelope,
    decode_thread,
    header_metadata,
    put_outcome,
)
from ._client import (
    POOL_SIZE,
    POOL_TIMEOUT,
    GatedCluster,
    describe_client,
    describe_pool,
    open_client,
)
from ._errors import translate_error
from ._keys import STORE, RedisKeys, encode_id, text, to_micros
from ._leases import Leases, millis
from ._logs import decode_reply_items
from ._schema import recorded_layout, upgrade
from ._scripts import ALL_SCRIPTS, Scripts

if TYPE_CHECKING:
    from ...crypto import Encryption

__all__ = ["RedisStore"]

logger = logging.getLogger("agent_persist")


Client = aioredis.Redis | GatedCluster
"""One server's client or a cluster's."""


async def _close_client(client: Client) -> None:
    await client.aclose()


_PAGE = 200
"""Checkpoints or threads fetched per round trip when a listing has to filter or go on."""


class RedisStore(BaseStore):
    """Checkpoints, logs and leases in one Redis database.

    A URL's query parameters are redis-py's (``socket_timeout``, ``socket_connect_timeout``,
    ``client_name``, ``ssl_cert_reqs``, ``db``, ...); an unknown one, a port outside 1-65535
    or a database that is not a number is an ``InvalidStoreURLError`` raised here, before
    any I/O. A database number the server does not have (``/99`` with 16 databases) is a
    ``StoreUnavailableError`` at the first operation, like a refused connection or login:
    the URL is well formed, the server just has no such database.

    Args:
        client_or_url: a ``redis://``, ``rediss://`` or ``unix://`` URL, or a
            ``redis+cluster://host:port,...`` (``rediss+cluster://``) one for a Redis
            Cluster (the store then owns its clients, one per event loop, so any thread
            and any loop can use it, and closes them), or a ``redis.asyncio.Redis`` built
            with ``decode_responses=False`` that the caller keeps owning, used on the
            first event loop the store runs on only (another raises
            ``EventLoopMismatchError``).
        namespace: the tenant; stores of other namespaces never see its threads.
        ttl: delete a thread that has not been written for this long (Redis expiry).
        keep_last: keep only the newest N checkpoints of each thread, trimmed on each put.
        prefix: the start of every key name, so several applications can share a database.
        codec: how payloads and items are sealed (compression, encryption); any registered
            codec is read whatever this one is.
        auto_setup: run :meth:`setup` before the first operation if nobody did.
        pool_size: connections a client opens at most, per event loop (default 16); an
            operation that finds them all busy waits for one. For a store opened from a
            URL only (a client passed in keeps its own pool).
        pool_timeout: seconds (or a ``timedelta``) an operation waits for a free
            connection (default 30); then ``StoreUnavailableError`` naming the pool's
            limits.
        wait_replicas: make every write (put, append, pop, clear, delete, lease) wait
            until this many replicas have it (Redis ``WAIT``, on the same connection).
            Without it a write is acknowledged once the master has it, and a master that
            fails before its replicas copied it loses it. Costs a round trip from the
            master to its replicas per write. If fewer replicas confirm within
            ``wait_timeout`` the write raises ``StoreUnavailableError`` (it was written on
            the master, not yet on enough replicas).
        wait_timeout: seconds (or a ``timedelta``) a write waits for ``wait_replicas``
            (default 5).
        warm_pool: :meth:`setup` also opens the running loop's client to ``pool_size``
            connections and collects the startup garbage, so the first burst of calls
            does not wait for connections and a full collection of what the process piled
            up at start does not stall them. Default off. Not on a cluster, nor for a
            client passed in.
    """

    def __init__(
        self,
        client_or_url: aioredis.Redis | str,
        *,
        namespace: str = "default",
        ttl: timedelta | None = None,
        keep_last: int | None = None,
        prefix: str = "agent_persist",
        codec: PayloadCodec | None = None,
        auto_setup: bool = True,
        pool_size: int | None = None,
        pool_timeout: float | timedelta = POOL_TIMEOUT,
        wait_replicas: int | None = None,
        wait_timeout: float | timedelta = 5.0,
        encryption: Encryption | None = None,
        warm_pool: bool = False,
    ) -> None:
        super().__init__(
            namespace=namespace, ttl=ttl, keep_last=keep_last, codec=codec, encryption=encryption
        )
        self._warm_pool = check_bool("warm_pool", warm_pool)
        self._keys = RedisKeys(prefix, namespace)
        self._clients: LoopBound[Client]
        replicas = check_pool_size("wait_replicas", wait_replicas, minimum=0) or 0
        wait_seconds = check_pool_timeout(wait_timeout, name="wait_timeout")
        self._wait = (replicas, millis(timedelta(seconds=wait_seconds)))
        size = check_pool_size("pool_size", pool_size) or POOL_SIZE
        timeout = check_pool_timeout(pool_timeout)
        if isinstance(client_or_url, str):
            url = client_or_url
            first, self._shown = open_client(url, pool_size=size, pool_timeout=timeout)
            self._clients = PerLoop(
                lambda: open_client(url, pool_size=size, pool_timeout=timeout)[0],
                _close_client,
                first=first,
            )
        elif isinstance(client_or_url, RedisCluster):
            raise TypeError(
                "open a Redis Cluster store from a redis+cluster://host:port,... URL: the "
                "store builds its own cluster client, which waits for a pooled connection"
            )
        else:
            first, self._shown = client_or_url, describe_client(client_or_url)
            self._clients = Pinned(first, what=f"the Redis client for {self._shown}")
        self._pool = describe_pool(first)
        self._cluster = isinstance(first, GatedCluster)
        self.prefix = prefix
        self._auto_setup = auto_setup
        self._ready = False
        self._setup_lock = LoopLock()
        self._scripts = Scripts(first)  # each call names the running loop's client
        self._leases = Leases(self._keys, self._scripts, self._write)
        self._ttl_arg = str(millis(ttl)) if ttl is not None else ""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """A store on its own client for ``url`` (``redis://``, ``rediss://``, ``unix://``).

        ``options`` are the constructor's keyword options. Nothing is contacted yet: an
        unreachable server shows at the first operation as ``StoreUnavailableError``.
        """
        return cls(url, **options)

    def __repr__(self) -> str:
        return f"RedisStore({self._shown!r}, namespace={self.namespace!r}, prefix={self.prefix!r})"

    # -- plumbing ------------------------------------------------------------------------

    @property
    def _client(self) -> Client:
        """The running event loop's client: redis-py connections belong to their loop.

        A store opened from a URL has one client (connection pool) per loop, closed on its
        loop (:mod:`.._loops`); a client passed in serves the first loop only.
        """
        return self._clients.get()

    async def _setup(self) -> None:
        """Record the key layout version, or check (and upgrade) the recorded one.

        Safe to run concurrently. Also loads every script, so the first operations cost one
        round trip each. Keys of an older layout are upgraded by the steps of
        :mod:`._schema`; stop processes running older agent-persist before, as for any
        schema migration.

        Raises:
            StoreSchemaError: the keys were written by a newer agent-persist.
            StoreUnavailableError: the server cannot be reached.
        """
        client, keys = self._client, self._keys
        where = f"Redis at {self._shown}, key {keys.schema!r}"
        version = await recorded_layout(client, keys, where=where)
        if isinstance(client, GatedCluster):  # SCRIPT LOAD goes to every master
            for source in ALL_SCRIPTS:
                await client.script_load(source)
        else:
            async with client.pipeline(transaction=False) as pipe:
                for source in ALL_SCRIPTS:
                    pipe.script_load(source)
                await pipe.execute()
        await upgrade(client, keys, self._scripts, version, where=where)
        if self._warm_pool and isinstance(self._clients, PerLoop) and not self._cluster:
            try:
                await _open_connections(client)
            except redis_errors.RedisError as exc:  # the calls that follow meet it themselves
                logger.warning("%r: warming the pool failed, going on: %s", self, exc)
            gc.collect()  # the startup garbage, now rather than in a pause during traffic
        self._ready = True

    async def _close(self) -> None:
        """Close the clients the store opened (a client passed in stays open)."""
        await self._clients.close()

    def _translate_error(self, exc: Exception) -> AgentPersistError | None:
        """redis-py's errors as agent-persist's (see :func:`._errors.translate_error`)."""
        return translate_error(exc, self._shown, self._pool)

    async def _ensure_ready(self) -> None:
        """Run :meth:`setup` once before the first operation (with ``auto_setup``)."""
        if self._ready or not self._auto_setup:
            return
        async with self._setup_lock.get():  # per loop: setup is safe run concurrently
            if not self._ready:
                await self._setup()

    async def _run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script after the one-time setup: the unit of work of every operation."""
        await self._ensure_ready()
        return await script(keys=keys, args=args, client=self._client)

    async def _write(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script that writes the thread of ``keys[0]``; with ``wait_replicas``, wait.

        ``WAIT`` counts the replicas that have every write of its connection, so it goes
        in one pipeline with the script: one connection, one round trip from here.
        """
        replicas, timeout = self._wait
        if not replicas:
            return await self._run(script, keys, args)
        await self._ensure_ready()
        client: Any = self._client
        if self._cluster:
            reply, confirmed = await _eval_and_wait(client, script, keys, args, self._wait)
        else:
            async with client.pipeline(transaction=False) as pipe:
                await script(keys=keys, args=args, client=pipe)
                pipe.execute_command("WAIT", replicas, timeout)
                reply, confirmed = await pipe.execute()
        if int(confirmed) < replicas:
            raise StoreUnavailableError(
                f"Redis at {self._shown}: the write reached the master but only "
                f"{confirmed} of wait_replicas={replicas} replicas confirmed it within "
                f"wait_timeout={timeout} ms; it may be lost if the master fails now"
            )
        return reply

    def _index_key(self) -> list[str]:
        """The index as a script's last key, on one server; a cluster updates it apart."""
        return [] if self._cluster else [self._keys.index]

    def _thread_keys(self, thread_id: str) -> list[str]:
        return [self._keys.thread(thread_id), *self._index_key()]

    def _written_keys(self, thread_id: str) -> list[str]:
        """The keys of a put or append: the thread's, and its lease to check the token."""
        return [self._keys.thread(thread_id), self._keys.lease(thread_id), *self._index_key()]

    async def _note_thread(self, thread_id: str) -> None:
        """On a cluster, add the thread to the index before writing it (see the module)."""
        if self._cluster:
            await self._ensure_ready()
            now = to_micros(datetime.now(timezone.utc))
            await cluster_index.note(self._client, self._keys, thread_id, now)

    # -- checkpoints ---------------------------------------------------------------------

    async def _put(
        self,
        envelope: Envelope,
        encoded: EncodedCheckpoint,
        sealed: Mapping[str, Sequence[bytes]],
        lease: Lease | None,
        clear: Sequence[str],
        first: Mapping[str, int] | None,
    ) -> Envelope:
        """One script, one round trip, O(new items + cleared items)."""
        logs: list[Any] = []
        for name, items in sealed.items():
            logs += [name, "" if first is None else first[name], len(items), *items]
        await self._note_thread(envelope.thread_id)
        reply = await self._write(
            self._scripts.put,
            self._written_keys(envelope.thread_id),
            [
                encode_id(envelope.thread_id),
                envelope.checkpoint_id,
                "0" if envelope.parent_id is None else "1",
                envelope.parent_id or "",
                encoded.header,
                encoded.payload,
                to_micros(envelope.created_at),
                envelope.kind,
                envelope.schema_version,
                envelope.step,
                envelope.status.value,
                canonical_json(envelope.metadata, what="metadata"),
                self._ttl_arg,
                self.keep_last or "",
                len(sealed),
                *_lease_args(lease),
                len(clear),
                *clear,
                *logs,
            ],
        )
        if text(reply[0]) == "leaselost" and lease is not None:
            raise _lease_lost(lease)
        return envelope.model_copy(update={"logs": put_outcome(envelope, reply)})

    async def _get(self, thread_id: str, checkpoint_id: str | None) -> Envelope:
        """One round trip, checksum verified."""
        args = ["0", ""] if checkpoint_id is None else ["1", checkpoint_id]
        reply = await self._run(self._scripts.get, [self._keys.thread(thread_id)], args)
        outcome = text(reply[0])
        if outcome == "nothread":
            raise ThreadNotFoundError(f"{describe(STORE, thread_id)} does not exist")
        if outcome == "nocheckpoint":
            raise CheckpointNotFoundError(f"{describe(STORE, thread_id, checkpoint_id)} not found")
        return decode_envelope(thread_id, reply[1:], self.codec)

    async def _list_checkpoints(
        self, thread_id: str, *, limit: int | None, before: str | None, wanted: dict[str, JSON]
    ) -> list[Envelope]:
        """Pages, newest first."""
        page = max(1, min(limit, _PAGE)) if limit is not None and not wanted else _PAGE
        mode, ref = ("first", "") if before is None else ("before", before)
        found: list[Envelope] = []
        while True:
            reply = await self._run(
                self._scripts.list_checkpoints, [self._keys.thread(thread_id)], [mode, ref, page]
            )
            check_listing(thread_id, before, text(reply[0]))
            rows = [reply[i : i + 5] for i in range(1, len(reply), 5)]
            for row in rows:
                if limit is not None and len(found) >= limit:
                    return found
                stored = header_metadata(row[2])
                if stored is None or metadata_matches(stored, wanted):
                    decoded = decode_envelope(thread_id, [row[0], *row[2:]], self.codec)
                    if metadata_matches(decoded.metadata, wanted):
                        found.append(decoded)
            if len(rows) < page or (limit is not None and len(found) >= limit):
                return found
            mode, ref = "after", text(rows[-1][1])

    async def _list_threads(
        self, *, wanted: dict[str, JSON], limit: int | None
    ) -> list[ThreadInfo]:
        """The namespace's index, newest first."""
        found: dict[str, ThreadInfo] = {}
        listing = _Listing()
        while reply := await self._thread_page(listing):
            for index in range(0, len(reply), THREAD_ROW):
                info = decode_thread(reply[index : index + THREAD_ROW])
                if info is None or info.thread_id in found:
                    continue
                full = limit is not None and len(found) >= limit
                if not full and metadata_matches(info.metadata, wanted):
                    found[info.thread_id] = info
            if listing.done or (limit is not None and len(found) >= limit):
                break
        return list(found.values())

    async def _thread_page(self, listing: _Listing) -> list[Any]:
        """The next page of ``LIST_THREADS`` rows, newest first; empty at the end.

        A coroutine, not an async generator: the store may be used from a loop whose async
        generators were shut down (the Agents SDK's ``Runner.run_sync`` does that). On a
        cluster, the index shards merged, then each thread read in its own slot: not one
        atomic read, so a thread written meanwhile shows its state of either moment.
        """
        if listing.done:
            return []
        if not self._cluster:
            reply = await self._run(
                self._scripts.list_threads,
                [self._keys.index],
                [*self._keys.thread_key_parts, listing.offset, _PAGE],
            )
            listing.offset += _PAGE
            listing.done = len(reply) < _PAGE * THREAD_ROW
            return reply
        if listing.merge is None:
            await self._ensure_ready()
            listing.merge = cluster_index.NewestFirst(self._client, self._keys, _PAGE)
        members = await listing.merge.next_page()
        listing.done = len(members) < _PAGE
        if not members:
            return []
        return await cluster_index.thread_rows(self._client, self._keys, members)

    async def _thread_exists(self, thread_id: str) -> bool:
        """``EXISTS`` on the thread key: Redis expiry already removed an expired thread."""
        await self._ensure_ready()
        return bool(await self._client.exists(self._keys.thread(thread_id)))

    async def _delete_thread(self, thread_id: str) -> bool:
        """Every key of the thread, its lease too; on a cluster the index member after."""
        keys = self._written_keys(thread_id)
        existed = await self._write(self._scripts.delete_thread, keys, [encode_id(thread_id)])
        if self._cluster:
            await cluster_index.drop(self._client, self._keys, thread_id)
        return bool(existed)

    # -- logs ----------------------------------------------------------------------------

    def _log_where(self, thread_id: str, log: str) -> str:
        return f"{describe(STORE, thread_id)}: log {log!r}"

    async def _append(
        self,
        thread_id: str,
        log: str,
        sealed: Sequence[bytes],
        lease: Lease | None,
        first: int | None,
    ) -> None:
        """Atomic, creates the thread if needed."""
        at = "" if first is None else first
        args = [encode_id(thread_id), log, self._ttl_arg, *_lease_args(lease), at, *sealed]
        await self._note_thread(thread_id)
        appended = await self._write(self._scripts.append, self._written_keys(thread_id), args)
        if isinstance(appended, list):  # {'moved', seq}: nothing written
            raise PositionsMoved({log: int(cast("list[Any]", appended)[1])})
        if not int(appended) and lease is not None:
            raise _lease_lost(lease)

    async def _read_log(
        self, thread_id: str, log: str, *, start: int, stop: int | None, version: int | None
    ) -> list[JSON]:
        """Only the requested items cross the network."""
        seen = "" if version is None else str(version)
        args = [log, seen, start, "" if stop is None else stop]
        reply = await self._run(self._scripts.read, [self._keys.thread(thread_id)], args)
        return decode_reply_items(
            reply, self.codec.for_log(thread_id, log), where=self._log_where(thread_id, log)
        )

    async def _read_logs(
        self, thread_id: str, wanted: Mapping[str, tuple[int, int | None, int]]
    ) -> dict[str, list[JSON]]:
        """Every log's read script in one pipeline: one round trip for all of them.

        On a cluster the reads go one by one (the thread's keys share a slot, but the
        cluster pipeline does not run scripts).
        """
        if self._cluster or len(wanted) < 2:
            return await super()._read_logs(thread_id, wanted)
        await self._ensure_ready()
        keys = [self._keys.thread(thread_id)]
        client: Any = self._client
        async with client.pipeline(transaction=False) as pipe:
            for name, (start, stop, version) in wanted.items():
                args = [name, str(version), start, "" if stop is None else stop]
                await self._scripts.read(keys=keys, args=args, client=pipe)
            replies = await pipe.execute()
        return {
            name: decode_reply_items(
                reply,
                self.codec.for_log(thread_id, name),
                where=self._log_where(thread_id, name),
            )
            for name, reply in zip(wanted, replies, strict=True)
        }

    async def _tail(self, thread_id: str, log: str, count: int) -> list[JSON]:
        keys = [self._keys.thread(thread_id)]
        reply = await self._run(self._scripts.tail, keys, [log, count])
        return decode_reply_items(
            reply, self.codec.for_log(thread_id, log), where=self._log_where(thread_id, log)
        )

    async def _read_log_lines(
        self, thread_id: str, log: str, *, start: int, stop: int | None, version: int | None
    ) -> bytes:
        """The stored text, joined without parsing.

        The whole live log is one ``LRANGE`` of its mirror (``:d``), which the writing
        scripts keep exact (layout 2), so no script and no check: a script would copy every
        item into Lua and back, several times the cost of the read on a long log.
        """
        lines = None
        if version is None and start == 0 and stop is None:
            lines = await self._mirror_lines(thread_id, log, 0)
        if lines is None:  # a slice, a checkpoint's view, another codec, a missing item
            return await super()._read_log_lines(
                thread_id, log, start=start, stop=stop, version=version
            )
        return lines

    async def _tail_lines(self, thread_id: str, log: str, count: int) -> bytes:
        """One ``LRANGE`` of the mirror's last items."""
        lines = await self._mirror_lines(thread_id, log, -count)
        if lines is None:  # another codec, or a missing item (reported by the slow path)
            return await super()._tail_lines(thread_id, log, count)
        return lines

    async def _mirror_lines(self, thread_id: str, log: str, first: int) -> bytes | None:
        """The live items' JSON Lines from the mirror, or ``None``: read them otherwise.

        The items are those from position ``first`` (negative: from the end) to the end.
        Items in clear are joined as stored: one ``LRANGE``. Sealed items are bound to their
        ``seq``, so the order list (``:o``) is read with the mirror in one ``MULTI``, both as
        of the same moment: still one round trip, no script. A cluster client cannot run a
        ``MULTI`` with redis-py 5, so sealed logs there are read by the script (``None``).
        """
        await self._ensure_ready()
        client: Any = self._client
        codec = self.codec.for_log(thread_id, log)
        mirror = self._keys.mirror(thread_id, log)
        if not codec.seals_logs:  # positions bind nothing: open_lines does not look at them
            return open_lines(await client.lrange(mirror, first, -1), codec, ())
        if self._cluster:
            return None
        async with client.pipeline(transaction=True) as pipe:
            pipe.lrange(self._keys.log(thread_id, log) + ":o", first, -1)
            pipe.lrange(mirror, first, -1)
            seqs, sealed = await pipe.execute()
        try:
            positions = list(map(int, seqs))
        except ValueError:  # a damaged order list: the script's read names the item
            return None
        return open_lines(sealed, codec, positions) if len(positions) == len(sealed) else None

    async def _log_length(self, thread_id: str, log: str) -> int:
        """One ``LLEN``."""
        await self._ensure_ready()
        length = await self._client.llen(self._keys.log(thread_id, log) + ":o")
        return int(length)

    async def _list_logs(self, thread_id: str) -> list[str]:
        """One ``HKEYS`` of the thread's log versions."""
        await self._ensure_ready()
        client: Any = self._client
        names: list[bytes] = await client.hkeys(self._keys.thread(thread_id) + ":v")
        return [name.decode("utf-8") for name in names]

    async def _pop(self, thread_id: str, log: str) -> JSON | None:
        """Decode the newest item, then pop it only while it is still the newest.

        Atomic, so no two callers get the same item; and a damaged item raises before
        anything is removed, as in the other stores. Costs two round trips.
        """
        where = self._log_where(thread_id, log)
        while True:
            newest = await self._run(self._scripts.tail, [self._keys.thread(thread_id)], [log, 1])
            if len(newest) < 2:
                return None
            (item,) = decode_reply_items(newest, self.codec.for_log(thread_id, log), where=where)
            args = [encode_id(thread_id), log, self._ttl_arg, text(newest[0])]
            await self._note_thread(thread_id)
            reply = await self._write(self._scripts.pop, self._thread_keys(thread_id), args)
            if reply is None:
                return None
            if len(reply) == 2:
                return item

    async def _clear_log(self, thread_id: str, log: str) -> None:
        """Checkpoints that saw the items still do."""
        args = [encode_id(thread_id), log, self._ttl_arg]
        await self._note_thread(thread_id)
        await self._write(self._scripts.clear, self._thread_keys(thread_id), args)

    # -- leases --------------------------------------------------------------------------

    async def _acquire_lease(
        self, thread_id: str, owner: str, *, ttl: timedelta, take_over: str | None
    ) -> Lease:
        """Compare-and-set on the server."""
        return await self._leases.acquire(thread_id, owner, ttl, take_over=take_over)

    async def _renew_lease(self, lease: Lease, *, ttl: timedelta) -> Lease:
        """Only while the token still holds it."""
        return await self._leases.renew(lease, ttl)

    async def _release_lease(self, lease: Lease) -> None:
        """A stale token releases nothing."""
        await self._leases.release(lease)

    # -- retention -----------------------------------------------------------------------

    async def _prune(
        self, thread_id: str, *, keep_last: int | None, older_than: timedelta | None
    ) -> int:
        """One script; then drops items nobody sees."""
        cutoff = ""
        if older_than is not None:
            cutoff = str(to_micros(datetime.now(timezone.utc) - older_than))
        args = ["" if keep_last is None else keep_last, cutoff]
        removed = int(await self._run(self._scripts.prune, [self._keys.thread(thread_id)], args))
        if removed < 0:
            raise ThreadNotFoundError(f"{describe(STORE, thread_id)} does not exist")
        return removed

    async def _stored_values(self, thread_id: str) -> list[StoredValue]:
        reply = await self._run(self._scripts.stored_values, [self._keys.thread(thread_id)], [])
        return sealing.stored_values(reply, where=describe(STORE, thread_id))

    async def _replace_values(
        self, thread_id: str, changes: Sequence[tuple[StoredValue, bytes]]
    ) -> int:
        keys, replaced = [self._keys.thread(thread_id)], 0
        for first in range(0, len(changes), 500):  # a script's arguments stay bounded
            args = sealing.replace_args(changes[first : first + 500])
            replaced += int(await self._write(self._scripts.replace_values, keys, args))
        return replaced

    async def _purge_expired(self) -> int:
        """Expiry deletes the keys, this the index.

        Walks the index with ``ZSCAN`` (no pattern), so it never blocks the server for long.
        """
        await self._ensure_ready()
        indexes = self._keys.index_shards if self._cluster else (self._keys.index,)
        purged = 0
        for index in indexes:
            cursor = 0
            while True:
                scan = self._client.zscan(index, cursor, count=_PAGE)  # pyright: ignore[reportUnknownMemberType]
                cursor, page = await scan
                purged += await self._purge_page(index, page)
                if cursor == 0:
                    break
        return purged

    async def _purge_page(self, index: str, page: Sequence[Any]) -> int:
        """Drop the members of ``page`` whose thread is gone (on a cluster: if unchanged)."""
        if not page:
            return 0
        if not self._cluster:
            args = [*self._keys.thread_key_parts, *(member for member, _ in page)]
            return int(await self._run(self._scripts.purge, [index], args))
        gone = await cluster_index.stale_members(self._client, self._keys, page)
        if not gone:
            return 0
        return int(await self._run(self._scripts.purge_index, [index], gone))


@dataclass(slots=True)
class _Listing:
    """Where a ``list_threads`` is in the namespace's index (see ``_thread_page``)."""

    offset: int = 0
    merge: cluster_index.NewestFirst | None = None
    done: bool = False


async def _eval_and_wait(
    client: GatedCluster,
    script: AsyncScript,
    keys: Sequence[str],
    args: Sequence[Any],
    wait: tuple[int, int],
) -> tuple[Any, int]:
    """On a cluster: ``EVALSHA`` then ``WAIT`` on one connection to the keys' master.

    redis-py's cluster pipeline refuses scripts, and ``WAIT`` counts the replicas of the
    writes of its own connection, so both go to the master in one write on one connection.
    A script the master lacks (a promoted replica) is loaded there and the pair sent again.
    """
    node: Any = client.get_node_from_key(keys[0])
    for attempt in (1, 2):
        async with client.gate:
            connection: Any = node.acquire_connection()
            try:
                commands = [
                    ("EVALSHA", script.sha, len(keys), *keys, *args),
                    ("WAIT", *wait),
                ]
                await connection.send_packed_command(connection.pack_commands(commands))
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(await connection.read_response())
                    except redis_errors.ResponseError as exc:
                        replies.append(exc)
            except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError):
                await connection.disconnect()
                await _refresh_topology(client)  # a failover: find the new master next time
                raise
            except BaseException:
                await connection.disconnect()
                raise
            finally:
                node.release(connection)
        reply, confirmed = replies
        if isinstance(reply, redis_errors.MovedError | redis_errors.AskError):
            await _refresh_topology(client)  # slots moved: the next write goes to the new node
        if isinstance(reply, redis_errors.NoScriptError) and attempt == 1:
            await node.execute_command("SCRIPT", "LOAD", script.script)
            continue
        for answer in replies:
            if isinstance(answer, Exception):
                raise answer
        return reply, int(confirmed)
    raise AssertionError("unreachable")  # pragma: no cover


async def _refresh_topology(client: GatedCluster) -> None:
    """Re-read the cluster's slots (best effort: during a failover it may fail too)."""
    try:
        await client.nodes_manager.initialize()
    except Exception:  # the caller raises the error that brought it here
        return


def _lease_args(lease: Lease | None) -> list[str]:
    """A write's lease arguments for its script: has_lease and the token."""
    return ["0", ""] if lease is None else ["1", lease.token]


def _lease_lost(lease: Lease) -> LeaseLostError:
    return LeaseLostError(
        f"{describe(STORE, lease.thread_id)}: the lease of {lease.owner!r} expired or was "
        "taken over; nothing was written"
    )


async def _open_connections(client: Any) -> None:
    """Open every connection the client's pool may hold, then give them back to it."""
    pool = client.connection_pool
    held: list[Any] = []
    try:
        for _ in range(pool.max_connections):
            try:
                held.append(await pool.get_connection())
            except TypeError:  # redis-py before 5.3 wants a command name
                held.append(await pool.get_connection("PING"))
    finally:
        for connection in held:
            await pool.release(connection)
