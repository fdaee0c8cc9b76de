"""The Redis store's key layout versions: the append-only steps that upgrade old keys.

    version = await recorded_layout(client, keys, where=where)   # a new database: the newest
    await upgrade(client, keys, scripts, version, where=where)   # the missing steps, in order

The keys carry their own version, separate from the envelope format, in ``P:schema`` (one per
prefix, shared by its namespaces; see :mod:`._keys` for the layout). ``setup()`` applies the
steps the keys lack, in order, and refuses keys that a newer release already upgraded
(:class:`~agent_persist.errors.StoreSchemaError`), so an old worker never writes keys it does
not understand. A new database records the newest layout at once: keys appear with each
write, already in that layout, so there is nothing to upgrade.

Rules for changing the layout, as for the SQL store's ``DDL_STEPS``:

* never edit a step that was released; append a new one (``LayoutStep(3, ...)``) and
  change the scripts and :mod:`._keys` to the new layout in the same release;
* a step must be idempotent: several workers starting at once may all run it. The version
  is recorded after the step, by compare-and-set from the step's predecessor (``SET_LAYOUT``),
  so a step that failed halfway runs again at the next ``setup()``;
* as for any schema migration, stop every process running the older agent-persist first:
  one still writing during the upgrade would write the old layout (and once the new version
  is recorded, older code refuses to start).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio.cluster import RedisCluster

from ...errors import StoreSchemaError
from ._keys import RedisKeys, shard_number
from ._lua import HELPERS

if TYPE_CHECKING:
    from redis.asyncio import Redis as OneServer

    Redis = OneServer | RedisCluster

    from ._scripts import Scripts

__all__ = [
    "LAYOUT_STEPS",
    "LAYOUT_VERSION",
    "MOVE_THREAD",
    "SET_LAYOUT",
    "UPGRADE_MIRRORS",
    "LayoutStep",
    "check_layout",
    "recorded_layout",
    "upgrade",
]

_PAGE = 200
"""Threads upgraded per round trip."""

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

MOVE_THREAD = (
    HELPERS
    + r"""
-- KEYS: old thread, new thread, old lease, new lease (single server only: the names are in
-- different slots). Layout 2 -> 3: renames every key of one thread from the namespace's
-- hash tag {N} to the thread's own {N.T}; RENAME keeps each key's TTL. The logs go first
-- (their names are in :v), the thread hash last. Idempotent: a key already moved is gone.
-- Returns the number of keys renamed.
local old, new = KEYS[1], KEYS[2]
local moved = 0
local function move(from, to)
  if redis.call('EXISTS', from) == 1 then
    redis.call('RENAME', from, to)
    moved = moved + 1
  end
end
for _, name in ipairs(redis.call('HKEYS', old .. ':v')) do
  local log = ':l:' .. hex(name)
  for _, suffix in ipairs({':i', ':o', ':r', ':q', ':d'}) do
    move(old .. log .. suffix, new .. log .. suffix)
  end
end
for _, suffix in ipairs({':c', ':z', ':p', ':v', ''}) do move(old .. suffix, new .. suffix) end
if KEYS[3] then move(KEYS[3], KEYS[4]) end
return moved
"""
)

SET_LAYOUT = r"""
-- KEYS: schema. ARGV: from, to. Records layout `to` only if the keys are still at `from`;
-- returns the layout now recorded.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end
return redis.call('GET', KEYS[1])
"""


@dataclass(frozen=True, slots=True)
class LayoutStep:
    """One released change to the key layout: its version, a one-line summary, the upgrade.

    ``apply`` upgrades keys of the previous layout, in every namespace of the prefix; it
    must be idempotent (see the module's rules).
    """

    version: int
    summary: str
    apply: Callable[[Redis, RedisKeys, Scripts], Awaitable[None]]


async def _layout_1(client: Redis, keys: RedisKeys, scripts: Scripts) -> None:
    """The first layout: nothing to upgrade from.

    Its logs had no mirror (``:d``) at first, and later one headed by the log version it
    mirrored, which every read compared with ``:v`` since older writers left it stale.
    """


async def _layout_2(client: Redis, keys: RedisKeys, scripts: Scripts) -> None:
    """Make every log's mirror (``:d``) exact: rebuilt from its live items (``:o``, ``:i``).

    Layout 1 mirrors may be missing or stale (headed by a log version readers checked);
    layout 2 reads trust the mirror, because every script that changes a log changes its
    mirror in the same atomic step. Each thread is rebuilt by one atomic script
    (``UPGRADE_MIRRORS``), for every namespace of the prefix (they share the layout key).
    Rebuilding is idempotent, so two processes upgrading at once, or one retrying after a
    failure, leave the same keys.
    """
    raw: Any = client
    scan = raw.scan_iter(match=keys.version_pattern(), count=1000, _type="HASH")
    batch: list[str] = []
    async for versions in scan:
        batch.append(bytes(versions).decode()[: -len(":v")])
        if len(batch) >= _PAGE:
            await _rebuild_mirrors(client, scripts, batch)
            batch = []
    await _rebuild_mirrors(client, scripts, batch)


async def _rebuild_mirrors(client: Redis, scripts: Scripts, threads: list[str]) -> None:
    """Rebuild the mirrors of ``threads`` (thread keys) in one pipelined round trip."""
    if not threads:
        return
    raw: Any = client
    async with raw.pipeline(transaction=False) as pipe:
        for thread in threads:
            await scripts.upgrade_mirrors(keys=[thread], client=pipe)
        await pipe.execute()


async def _layout_3(client: Redis, keys: RedisKeys, scripts: Scripts) -> None:
    """Give each thread its own hash tag ``{N.T}`` (was the namespace's ``{N}``).

    On a Redis Cluster a namespace was one slot, so one tenant lived on one shard; now the
    threads spread over all slots and every script's keys still share one. Each thread's
    keys are renamed by one atomic script (``MOVE_THREAD``), found through every
    namespace's index (which kept its name ``P:{N}:threads`` and members); leases taken on
    threads never written are found by their own pattern. Renaming is idempotent (a moved
    key is gone), so concurrent setups, or one retrying after a failure, leave the same keys.
    """
    raw: Any = client
    batch: list[tuple[str, str, str | None, str | None]] = []
    async for index in raw.scan_iter(match=keys.pattern(":{*}:threads"), _type="ZSET"):
        root = bytes(index).decode()[: -len(":threads")]  # P:{N}
        async for member, _ in raw.zscan_iter(index, count=1000):
            thread = bytes(member).decode()
            old_lease, new_lease = f"{root}:lease:{thread}", _moved(root, thread, "lease")
            batch.append((f"{root}:t:{thread}", _moved(root, thread, "t"), old_lease, new_lease))
            if len(batch) >= _PAGE:
                await _move_threads(client, scripts, batch)
                batch = []
    await _move_threads(client, scripts, batch)
    batch = []
    async for lease in raw.scan_iter(match=keys.pattern(":{*}:lease:*"), _type="HASH"):
        root, _, thread = bytes(lease).decode().rpartition(":lease:")
        old_thread, new_thread = f"{root}:t:{thread}", _moved(root, thread, "t")
        batch.append((old_thread, new_thread, bytes(lease).decode(), _moved(root, thread, "lease")))
        if len(batch) >= _PAGE:
            await _move_threads(client, scripts, batch)
            batch = []
    await _move_threads(client, scripts, batch)


def _moved(root: str, thread: str, suffix: str) -> str:
    """Layout 3's name for a thread's key: ``P:{N}`` and ``T`` make ``P:{N.T}:suffix``."""
    return f"{root[:-1]}.{thread}}}:{suffix}"


async def _move_threads(
    client: Redis, scripts: Scripts, threads: list[tuple[str, str, str | None, str | None]]
) -> None:
    """Rename the keys of ``threads`` (old and new thread and lease keys), pipelined."""
    if not threads:
        return
    raw: Any = client
    async with raw.pipeline(transaction=False) as pipe:
        for old, new, old_lease, new_lease in threads:
            leases = [old_lease, new_lease] if old_lease and new_lease else []
            await scripts.move_thread(keys=[old, new, *leases], client=pipe)
        await pipe.execute()


async def _layout_4(client: Redis, keys: RedisKeys, scripts: Scripts) -> None:
    """On a cluster, split each namespace's thread index into shards ``P:{N#k}:threads``.

    One sorted set per namespace put every write of a tenant on one shard; now a thread's
    member lives in the shard its id hashes to (:func:`~._keys.shard_number`). Each member
    is added to its shard with its score (``ZADD GT``: a newer score stays), then removed
    from the old index, page by page, so a step interrupted or run twice at once leaves the
    same keys. One server keeps its single index (its scripts write it with the thread).
    """
    if not isinstance(client, RedisCluster):
        return
    raw: Any = client
    async for found in raw.scan_iter(match=keys.pattern(":{*}:threads"), _type="ZSET"):
        index = bytes(found).decode()
        root = index[: -len(":threads")]  # P:{N}, or P:{N#k} for a shard
        if "#" in root:
            continue
        while page := await raw.zrange(index, 0, _PAGE - 1, withscores=True):
            async with raw.pipeline(transaction=False) as pipe:
                for member, score in page:
                    shard = f"{root[:-1]}#{shard_number(bytes(member).decode()):02x}}}:threads"
                    pipe.zadd(shard, {member: score}, gt=True)
                await pipe.execute()
            await raw.zrem(index, *(member for member, _ in page))


LAYOUT_STEPS: tuple[LayoutStep, ...] = (
    LayoutStep(1, "threads, checkpoints, logs and leases in hashes, lists, sorted sets", _layout_1),
    LayoutStep(2, "each log's mirror (:d) exact: scripts changing a log change it too", _layout_2),
    LayoutStep(
        3, "each thread its own hash tag {N.T}: threads spread over cluster slots", _layout_3
    ),
    LayoutStep(4, "on a cluster, each namespace's thread index split into shards", _layout_4),
)
"""Every layout ever released, oldest first. Append only."""

LAYOUT_VERSION = LAYOUT_STEPS[-1].version
"""The key layout this code reads and writes; ``setup()`` upgrades older ones, refuses newer."""


def _check_steps() -> None:
    versions = [step.version for step in LAYOUT_STEPS]
    if versions != list(range(1, len(LAYOUT_STEPS) + 1)):
        raise RuntimeError(f"layout steps must be numbered 1, 2, 3... without gaps: {versions}")
    if any(not step.summary or "\n" in step.summary for step in LAYOUT_STEPS):
        raise RuntimeError("every layout step needs a one-line summary")
    if any(not step.apply.__doc__ for step in LAYOUT_STEPS):
        raise RuntimeError("every layout step's upgrade needs a docstring saying what changed")


_check_steps()


def check_layout(stored: Any, *, where: str) -> int:
    """The layout version read from the schema key, or why the keys are unusable.

    An older version is returned, not refused: ``setup()`` upgrades it.
    """
    try:
        version = int(stored)
    except (TypeError, ValueError):
        raise StoreSchemaError(f"{where}: {stored!r} is not a key layout version") from None
    if version > LAYOUT_VERSION:
        raise StoreSchemaError(
            f"{where}: the keys use layout version {version}, newer than this code's "
            f"{LAYOUT_VERSION}; upgrade agent-persist"
        )
    if version < 1:
        raise StoreSchemaError(f"{where}: {stored!r} is not a key layout version")
    return version


async def recorded_layout(client: Redis, keys: RedisKeys, *, where: str) -> int:
    """The layout the keys are at; a database without one gets :data:`LAYOUT_VERSION`.

    Raises:
        StoreSchemaError: The keys were written by a newer agent-persist, or the schema key
            holds something that is no version.
    """
    await client.set(keys.schema, LAYOUT_VERSION, nx=True)
    return check_layout(await client.get(keys.schema), where=where)


async def upgrade(
    client: Redis, keys: RedisKeys, scripts: Scripts, version: int, *, where: str
) -> int:
    """Apply the steps after ``version``, in order, each recorded once it is done.

    Safe when several workers start at once: every step is idempotent, and each records its
    version only if the keys are still at the previous one (``SET_LAYOUT``); a worker that
    finds a later version recorded goes on from there, skipping what another one did.

    Returns:
        The layout the keys are at afterwards.

    Raises:
        StoreSchemaError: Meanwhile, a newer agent-persist upgraded the keys further.
    """
    while version < LAYOUT_VERSION:
        step = LAYOUT_STEPS[version]  # the step from ``version`` to ``version + 1``
        await step.apply(client, keys, scripts)
        recorded = scripts.set_layout(
            keys=[keys.schema], args=[step.version - 1, step.version], client=client
        )
        version = check_layout(await recorded, where=where)
    return version
