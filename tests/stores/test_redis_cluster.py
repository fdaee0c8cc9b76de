"""The Redis store on a real local Redis Cluster (three masters, three replicas).

The cluster is started once per session by :mod:`redis_cluster` (``redis-server
--cluster-enabled yes`` on free loopback ports); where that is impossible the tests skip,
and under ``CI`` they fail, as for a missing server. Every test writes under its own prefix.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("redis", reason="the redis extra is not installed")

from backends import check_redis_journal_freed, redis_tamper
from redis.asyncio.cluster import RedisCluster
from redis_cluster import ClusterUnavailable, LocalCluster

from agent_persist.crypto import Encryption, KeyRing
from agent_persist.errors import (
    AgentPersistError,
    ConflictError,
    DecryptionError,
    InvalidStoreURLError,
    StoreUnavailableError,
    ThreadNotFoundError,
)
from agent_persist.stores import MemoryStore
from agent_persist.stores.redis import RedisStore
from agent_persist.stores.redis import _store as redis_store_module
from agent_persist.stores.redis._keys import RedisKeys, encode_id
from agent_persist.testing import StoreConformance, StoreFactory, Tamper
from agent_persist.testing.conformance import envelope

# One worker runs this module under pytest-xdist, so one cluster is started, not one per worker.
pytestmark = pytest.mark.xdist_group("redis_cluster")

Factory = Callable[..., Awaitable[RedisStore]]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A local cluster for the session; skipped where it cannot start (failed under CI)."""
    directory: Path = tmp_path_factory.mktemp("redis-cluster")
    try:
        local = LocalCluster(directory).__enter__()
    except (ClusterUnavailable, OSError) as exc:
        reason = f"a local Redis Cluster could not be started ({exc})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}. CI requires every service test to run.", pytrace=False)
        pytest.skip(reason)
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def prefix() -> str:
    return f"aptest:{uuid.uuid4().hex}"


@pytest.fixture
async def raw(cluster: LocalCluster, prefix: str) -> AsyncIterator[RedisCluster]:
    """A plain cluster client; deletes the test's keys on every master at the end."""
    client = RedisCluster(host="127.0.0.1", port=cluster.ports[0])
    await client.initialize()
    yield client
    scanning: Any = client
    keys: list[bytes] = [key async for key in scanning.scan_iter(match=f"{prefix}:*", count=500)]
    for key in keys:
        await client.unlink(key)
    await client.aclose()


@pytest.fixture
async def make_store(
    cluster: LocalCluster, prefix: str, raw: RedisCluster
) -> AsyncIterator[Factory]:
    stores: list[RedisStore] = []

    async def make(**options: Any) -> RedisStore:
        options.setdefault("prefix", prefix)
        store = RedisStore.from_url(cluster.url, **options)
        stores.append(store)
        await store.setup()
        return store

    yield make
    for store in stores:
        await store.close()


@pytest.mark.redis
class TestRedisClusterStore(StoreConformance):
    @pytest.fixture
    def store_factory(self, make_store: Factory) -> StoreFactory:
        return make_store

    @pytest.fixture
    def tamper(self, prefix: str, raw: RedisCluster) -> Tamper:
        return redis_tamper(prefix, raw)


@pytest.mark.redis
async def test_threads_of_one_namespace_spread_over_every_master(
    make_store: Factory, raw: RedisCluster
) -> None:
    store = await make_store(namespace="one-tenant")
    keys = RedisKeys(store.prefix, store.namespace)
    for number in range(30):
        await store.put(envelope(f"t{number}"), appends={"log": [number]})
    nodes = [raw.get_node_from_key(keys.thread(f"t{n}")) for n in range(30)]
    masters = {node.name for node in nodes if node is not None}
    assert len(masters) == 3
    for number in range(30):  # every key of a thread, its lease too, in one slot
        thread = keys.thread(f"t{number}")
        slot = raw.keyslot(thread)
        assert raw.keyslot(keys.mirror(f"t{number}", "log")) == slot
        assert raw.keyslot(keys.lease(f"t{number}")) == slot
    listed = await store.list_threads()
    assert sorted(info.thread_id for info in listed) == sorted(f"t{n}" for n in range(30))
    # the index too: its shards are on every master, the unsharded index is not used
    members = {keys.index_shard(encode_id(f"t{n}")) for n in range(30)}
    assert len(members) > 8
    assert len({node.name for node in map(raw.get_node_from_key, members) if node}) == 3
    assert not await raw.exists(keys.index)


@pytest.mark.redis
async def test_listing_merges_the_index_shards_newest_first_page_by_page(
    make_store: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 3 over 16 shards: every thread once, newest first; limits and filters hold."""
    monkeypatch.setattr(redis_store_module, "_PAGE", 3)
    store = await make_store()
    written = [f"t{number}" for number in range(20)]
    for number, thread in enumerate(written):
        await store.put(envelope(thread, metadata={"even": number % 2 == 0}))
    newest_first = written[::-1]
    assert [info.thread_id for info in await store.list_threads()] == newest_first
    assert [info.thread_id for info in await store.list_threads(limit=7)] == newest_first[:7]
    evens = [info.thread_id for info in await store.list_threads(metadata={"even": True})]
    assert evens == newest_first[1::2]
    await store.put(envelope("t3", parent=await store.get("t3")))  # re-scored: newest now
    assert (await store.list_threads(limit=1))[0].thread_id == "t3"


@pytest.mark.redis
async def test_setup_splits_an_unsharded_index(
    make_store: Factory, raw: RedisCluster, prefix: str
) -> None:
    """Layout 4: a layout-3 index ``P:{N}:threads`` is moved into its shards by ``setup()``."""
    store = await make_store()
    keys = RedisKeys(store.prefix, store.namespace)
    threads = [f"t{number}" for number in range(25)]
    for thread in threads:
        await store.put(envelope(thread))
    scores: dict[bytes, float] = {}
    for shard in keys.index_shards:  # back to layout 3: one index
        scores.update(dict(await raw.zrange(shard, 0, -1, withscores=True)))
        await raw.delete(shard)
    await raw.zadd(keys.index, scores)
    await raw.set(f"{prefix}:schema", 3)
    await asyncio.gather(*(make_store() for _ in range(3)))  # concurrent setups
    assert await raw.get(f"{prefix}:schema") == b"4"
    assert not await raw.exists(keys.index)
    moved: dict[bytes, float] = {}
    for shard in keys.index_shards:
        moved.update(dict(await raw.zrange(shard, 0, -1, withscores=True)))
    assert moved == scores
    assert [info.thread_id for info in await store.list_threads()] == threads[::-1]


@pytest.mark.redis
def test_listing_after_the_loop_shut_down_its_async_generators(
    cluster: LocalCluster, prefix: str
) -> None:
    """``Runner.run_sync`` shuts a loop's async generators down and keeps using the loop.

    A loop of its own: the test's fixtures clean up with async generators of their own.
    """

    async def main() -> None:
        store = RedisStore.from_url(cluster.url, prefix=prefix)
        try:
            await store.put(envelope("t"))
            await asyncio.get_running_loop().shutdown_asyncgens()
            assert [info.thread_id for info in await store.list_threads(limit=1)] == ["t"]
            assert await store.delete_thread("t")
        finally:
            await store.close()
            client = RedisCluster(host="127.0.0.1", port=cluster.ports[0])
            await client.delete(f"{prefix}:schema")
            await client.aclose()

    asyncio.run(main())


@pytest.mark.redis
async def test_the_index_is_a_hint_repaired_by_purge(
    make_store: Factory, raw: RedisCluster
) -> None:
    """A crash between the index write and the thread's leaves a member without a thread."""
    store = await make_store()
    keys = RedisKeys(store.prefix, store.namespace)
    await store.put(envelope("kept"))
    orphan = encode_id("orphan")
    await raw.zadd(keys.index_shard(orphan), {orphan: 1})  # as a crash would leave it
    assert [info.thread_id for info in await store.list_threads()] == ["kept"]
    assert await store.purge_expired() == 1
    assert await raw.zscore(keys.index_shard(orphan), orphan) is None
    kept = keys.index_shard(encode_id("kept"))
    assert await raw.zcard(kept) == 1
    assert await store.delete_thread("kept")
    assert await raw.zcard(kept) == 0


@pytest.mark.redis
async def test_wait_replicas_confirms_each_write_on_a_replica(make_store: Factory) -> None:
    store = await make_store(wait_replicas=1, wait_timeout=timedelta(seconds=5))
    saved = await store.put(envelope("t"), appends={"log": ["a"]})
    await store.append("t", "log", ["b"])
    assert await store.read_log("t", "log", at=saved) == ["a"]
    assert await store.read_log("t", "log") == ["a", "b"]
    greedy = await make_store(wait_replicas=2, wait_timeout=0.2)  # each master has one
    with pytest.raises(StoreUnavailableError, match="only 1 of wait_replicas=2"):
        await greedy.put(envelope("u"))
    with pytest.raises(ValueError, match="wait_replicas"):
        RedisStore.from_url("redis://127.0.0.1:6379/0", wait_replicas=-1)


@pytest.mark.redis
async def test_a_thread_store_moves_from_one_server_to_the_cluster(
    make_store: Factory, redis_url: str, prefix: str, cluster: LocalCluster, tmp_path: Path
) -> None:
    """The documented path: ``agent-persist export`` from one server, ``import`` to a cluster."""
    from click.testing import CliRunner

    from agent_persist.cli import cli

    single = RedisStore.from_url(redis_url, prefix=prefix)
    try:
        first = await single.put(envelope("t"), appends={"log": ["a", "b"]})
        await single.pop("t", "log")
        await single.put(envelope("t", parent=first), appends={"log": ["c"]})
        runner = CliRunner()
        source = f"{redis_url}"
        out = await asyncio.to_thread(
            runner.invoke,
            cli,
            ["export", "--url", source, "--prefix", prefix, "--all", "-o", str(tmp_path)],
        )
        assert out.exit_code == 0, out.output
        into = await asyncio.to_thread(
            runner.invoke, cli, ["import", "--url", cluster.url, "--prefix", prefix, str(tmp_path)]
        )
        assert into.exit_code == 0, into.output
        target = await make_store()
        assert [c.checkpoint_id for c in await target.list_checkpoints("t")] == [
            c.checkpoint_id for c in await single.list_checkpoints("t")
        ]
        assert await target.read_log("t", "log") == ["a", "c"]
        assert await target.read_log("t", "log", at=first) == ["a", "b"]
    finally:
        await single.delete_thread("t")
        await single.close()


def test_cluster_urls_are_checked_before_any_io() -> None:
    with pytest.raises(InvalidStoreURLError, match="not host:port"):
        RedisStore.from_url("redis+cluster://a:1,b:99999")
    with pytest.raises(InvalidStoreURLError, match="database 0 only"):
        RedisStore.from_url("redis+cluster://a:1/3")
    with pytest.raises(InvalidStoreURLError, match="unknown parameter 'db'"):
        RedisStore.from_url("redis+cluster://a:1?db=2")
    store = RedisStore.from_url("rediss+cluster://user:secret@[::1]:7000,b?socket_timeout=2")
    assert "secret" not in repr(store)
    asyncio.run(store.close())
    with pytest.raises(TypeError, match=r"redis\+cluster://"):
        RedisStore(RedisCluster(host="127.0.0.1", port=7000))  # type: ignore[arg-type]


@pytest.mark.redis
async def test_a_master_killed_mid_run_loses_no_acknowledged_checkpoint(
    cluster: LocalCluster, tmp_path: Path, prefix: str
) -> None:
    """SIGKILL a master while writers run with wait_replicas=1; its replica takes over.

    Every put that returned must be in the history afterwards. Puts that raised may or may
    not have landed (the writers re-read the head and go on). A cluster of its own, so the
    session's stays whole.
    """
    with LocalCluster(tmp_path / "failover") as local:
        url = local.url + "?socket_timeout=2&socket_connect_timeout=1"
        store = RedisStore.from_url(url, prefix=prefix, wait_replicas=1, wait_timeout=1)
        raw = RedisCluster(host="127.0.0.1", port=local.ports[0])
        await raw.initialize()
        try:
            await store.setup()
            threads = [f"t{n}" for n in range(12)]
            acked: dict[str, list[str]] = {thread: [] for thread in threads}
            failed = 0
            stop = asyncio.Event()

            async def writer(thread: str) -> None:
                nonlocal failed
                head = None
                while not stop.is_set():
                    try:
                        head = await store.put(envelope(thread, parent=head))
                        acked[thread].append(head.checkpoint_id)
                    except (AgentPersistError, ConflictError):
                        failed += 1
                        await asyncio.sleep(0.05)
                        try:
                            head = await store.get(thread)
                        except ThreadNotFoundError:
                            head = None
                        except AgentPersistError:
                            pass

            node = raw.get_node_from_key(RedisKeys(prefix, "default").thread("t0"))
            assert node is not None
            victim = node.port
            writers = [asyncio.create_task(writer(thread)) for thread in threads]
            await asyncio.sleep(1.0)
            before = sum(len(ids) for ids in acked.values())
            t0_before = len(acked["t0"])
            replica = await asyncio.to_thread(local.replica_of, int(victim))
            await asyncio.to_thread(local.kill, int(victim))
            await asyncio.to_thread(local.wait_for, replica, "INFO replication", "role:master")
            await asyncio.to_thread(local.wait_for, replica, "CLUSTER INFO", "cluster_state:ok")
            # back only once its replica took over: without persistence it restarts empty,
            # and as the master still in charge it would wipe its replica (see the README)
            await asyncio.to_thread(local.start_node, int(victim))
            await asyncio.sleep(3.0)
            stop.set()
            await asyncio.gather(*writers)
            assert before > 0
            assert failed > 0  # the kill was felt
            for thread, ids in acked.items():
                stored = {c.checkpoint_id for c in await store.list_checkpoints(thread)}
                assert set(ids) <= stored, thread
            assert len(acked["t0"]) > t0_before  # its shard took writes again after failover
        finally:
            await store.close()
            await raw.aclose()


async def test_put_clear_logs_frees_the_journal_keys(make_store: Factory, raw: Any) -> None:
    await check_redis_journal_freed(await make_store(), raw)


@pytest.mark.redis
async def test_sealed_items_are_bound_to_their_seq_on_a_cluster(
    make_store: Factory, raw: Any, prefix: str
) -> None:
    """Interleaved encrypted writers re-seal where their items land (one through ``WAIT``);
    the reads (scripts here: no ``MULTI`` on a cluster) open each item at its seq."""
    keys, key_store = KeyRing({"k": os.urandom(32)}, primary="k"), MemoryStore()
    a = await make_store(encryption=Encryption(keys, key_store=key_store), wait_replicas=1)
    b = await make_store(encryption=Encryption(keys, key_store=key_store))
    head = await a.put(envelope("t"), appends={"log": ["a0"]})
    await b.append("t", "log", ["b0", "b1"])
    await a.put(envelope("t", parent=head), appends={"log": ["a1"]}, clear_logs=["log"])
    await b.append("t", "log", ["b2"])
    await a.append("t", "log", ["a2"])
    assert await b.read_log("t", "log") == ["a1", "b2", "a2"]
    assert await a.read_log_lines("t", "log") == b'"a1"\n"b2"\n"a2"'
    assert await a.tail_lines("t", "log", 2) == b'"b2"\n"a2"'

    base = RedisKeys(prefix, "default").log("t", "log")
    seqs = await raw.lrange(base + ":o", 0, -1)
    first, second = await raw.hget(base + ":i", seqs[0]), await raw.hget(base + ":i", seqs[1])
    await raw.hset(base + ":i", seqs[0], second)
    await raw.hset(base + ":i", seqs[1], first)
    await raw.lset(base + ":d", 0, second)
    await raw.lset(base + ":d", 1, first)
    for read in (a.read_log, a.read_log_lines):
        with pytest.raises(DecryptionError, match="'t'"):
            await read("t", "log")
