"""The Redis store: the conformance suite, plus what only Redis has (scripts, expiry, keys).

Every test writes under its own prefix ``aptest:<uuid hex>`` and deletes it afterwards.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import random
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

pytest.importorskip("redis", reason="the redis extra is not installed")

from backends import check_redis_journal_freed, redis_tamper
from redis.asyncio import Redis

from agent_persist.codecs import PayloadCodec
from agent_persist.envelope import Envelope
from agent_persist.errors import (
    CodecError,
    CorruptCheckpointError,
    InvalidStoreURLError,
    LeaseHeldError,
    MissingDependencyError,
    StoreSchemaError,
    StoreUnavailableError,
)
from agent_persist.stores.base import BaseStore
from agent_persist.stores.memory import MemoryStore
from agent_persist.stores.redis import RedisStore
from agent_persist.stores.redis import _schema as schema
from agent_persist.stores.redis._client import mask_url
from agent_persist.stores.redis._keys import (
    RedisKeys,
)
from agent_persist.testing import StoreConformance, StoreFactory, Tamper
from agent_persist.testing.conformance import envelope

Factory = Callable[..., Awaitable[RedisStore]]


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"aptest:{uuid.uuid4().hex}"


@pytest.fixture
async def raw(redis_url: str, prefix: str) -> AsyncIterator[Redis]:
    """A plain client on the test's database; deletes the test's keys at the end."""
    client = Redis.from_url(redis_url)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
    if keys:
        await client.unlink(*keys)
    await client.aclose()


@pytest.fixture
async def make_store(redis_url: str, prefix: str, raw: Redis) -> AsyncIterator[Factory]:
    """``await make_store(**options)``: a set-up store under the test's prefix."""
    stores: list[RedisStore] = []

    async def make(**options: Any) -> RedisStore:
        options.setdefault("prefix", prefix)
        store = RedisStore.from_url(redis_url, **options)
        stores.append(store)
        await store.setup()
        return store

    yield make
    for store in stores:
        await store.close()


@pytest.mark.redis
class TestRedisStore(StoreConformance):
    @pytest.fixture
    def store_factory(self, make_store: Factory) -> StoreFactory:
        return make_store

    @pytest.fixture
    def tamper(self, prefix: str, raw: Redis) -> Tamper:
        return redis_tamper(prefix, raw)


# -- what the suite cannot see ---------------------------------------------------------------


class Counter:
    """Counts the commands a client sends (a script call is one EVALSHA)."""

    def __init__(self, client: Redis) -> None:
        self.commands: list[str] = []
        send = client.execute_command

        async def counted(*args: Any, **options: Any) -> Any:
            self.commands.append(str(args[0]))
            return await send(*args, **options)

        client.execute_command = counted  # type: ignore[method-assign]


@pytest.mark.redis
async def test_every_operation_is_one_round_trip_but_pop(
    redis_url: str, prefix: str, raw: Redis
) -> None:
    client = Redis.from_url(redis_url)
    store = RedisStore(client, prefix=prefix, ttl=timedelta(minutes=5), keep_last=2)
    try:
        first = await store.put(envelope("t"), appends={"a": [1, 2], "b": ["x"]})
        counter = Counter(client)
        parent = first
        for turn in range(5):
            appends = {"a": list(range(50)), "b": [turn], f"new-{turn}": [turn]}
            parent = await store.put(envelope("t", parent=parent), appends=appends)
        assert counter.commands == ["EVALSHA"] * 5
        counter.commands.clear()
        await store.append("t", "a", [1, 2, 3])
        await store.get("t")
        await store.read_log("t", "a", at=parent, start=3, stop=9)
        await store.tail("t", "a", 4)
        await store.clear_log("t", "b")
        assert counter.commands == ["EVALSHA"] * 5
        counter.commands.clear()
        await store.pop("t", "a")  # reads and decodes the newest item first, then pops it
        assert counter.commands == ["EVALSHA"] * 2
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_every_key_of_a_thread_expires_natively(make_store: Factory, raw: Redis) -> None:
    store = await make_store(ttl=timedelta(seconds=90))
    keys = RedisKeys(store.prefix, store.namespace)
    first = await store.put(envelope("t"), appends={"a": [1, 2, 3], "b": ["x"]})
    await store.put(envelope("t", parent=first))
    await store.pop("t", "a")  # stamps an item: creates the removed hash and queue
    await store.append("t", "c", ["late"])
    await store.prune("t", keep_last=1)
    thread_keys = [key async for key in raw.scan_iter(match=f"{keys.thread('t')}*")]
    assert len(thread_keys) >= 5 + 3 * 2 + 2
    assert {keys.mirror("t", log).encode() for log in "abc"} <= set(thread_keys)
    for key in thread_keys:
        assert 0 < await raw.pttl(key) <= 90_000, key

    forever = await make_store()  # a store without ttl makes the thread permanent again
    await forever.append("t", "a", ["kept"])
    for key in [key async for key in raw.scan_iter(match=f"{keys.thread('t')}*")]:
        assert await raw.pttl(key) == -1, key


@pytest.mark.redis
async def test_keep_last_collects_removed_items_without_reading_the_log(
    make_store: Factory, raw: Redis
) -> None:
    store = await make_store(keep_last=2)
    keys = RedisKeys(store.prefix, store.namespace)
    parent: Envelope | None = None
    for turn in range(30):
        parent = await store.put(envelope("t", parent=parent), appends={"q": [turn, -turn]})
        assert await store.pop("t", "q") == -turn
    log = keys.log("t", "q")
    assert await raw.hlen(log + ":r") <= 2
    assert await raw.llen(log + ":q") <= 2
    assert await raw.hlen(log + ":i") == 30 + await raw.hlen(log + ":r")
    for checkpoint in await store.list_checkpoints("t"):
        step = checkpoint.step
        assert await store.read_log("t", "q", at=checkpoint) == [*range(step), step, -step]


@pytest.mark.redis
def test_listing_after_the_loop_shut_down_its_async_generators(redis_url: str, prefix: str) -> None:
    """``Runner.run_sync`` shuts a loop's async generators down and keeps using the loop.

    A loop of its own: the test's fixtures clean up with async generators of their own.
    """

    async def main() -> None:
        store = RedisStore.from_url(redis_url, prefix=prefix)
        try:
            await store.put(envelope("t"))
            await asyncio.get_running_loop().shutdown_asyncgens()
            assert [info.thread_id for info in await store.list_threads(limit=1)] == ["t"]
            assert await store.delete_thread("t")
        finally:
            await store.close()
            client = Redis.from_url(redis_url)
            await client.delete(f"{prefix}:schema")
            await client.aclose()

    asyncio.run(main())


@pytest.mark.redis
async def test_concurrent_setup_and_a_layout_from_the_future(
    make_store: Factory, prefix: str, raw: Redis
) -> None:
    await asyncio.gather(*(make_store() for _ in range(8)))
    assert await raw.get(f"{prefix}:schema") == str(schema.LAYOUT_VERSION).encode()
    await raw.set(f"{prefix}:schema", 99)
    with pytest.raises(StoreSchemaError, match="99"):
        await make_store()
    await raw.set(f"{prefix}:schema", "garbage")
    with pytest.raises(StoreSchemaError, match="garbage"):
        await make_store()


@pytest.mark.redis
async def test_auto_setup_runs_once_before_the_first_operation(
    redis_url: str, prefix: str, raw: Redis
) -> None:
    async with RedisStore.from_url(redis_url, prefix=prefix) as _:
        pass
    await raw.set(f"{prefix}:schema", schema.LAYOUT_VERSION + 1)
    lazy = RedisStore.from_url(redis_url, prefix=prefix)
    try:
        with pytest.raises(StoreSchemaError):
            await lazy.log_length("t", "log")
    finally:
        await lazy.close()
    manual = RedisStore.from_url(redis_url, prefix=prefix, auto_setup=False)
    try:
        assert await manual.log_length("t", "log") == 0  # no setup, so no check
    finally:
        await manual.close()


@pytest.mark.redis
async def test_raw_damage_raises_typed_errors(make_store: Factory, raw: Redis) -> None:
    store = await make_store()
    keys = RedisKeys(store.prefix, store.namespace)
    await store.put(envelope("t", metadata={"user": "ada"}), appends={"log": ["a", "b"]})
    await raw.hset(keys.log("t", "log") + ":i", "2", b"not sealed")
    with pytest.raises(CodecError, match=r"thread 't': log 'log' item 2"):
        await store.read_log("t", "log")
    assert await store.read_log("t", "log", stop=1) == ["a"]
    await raw.hdel(keys.log("t", "log") + ":i", "1")
    with pytest.raises(CorruptCheckpointError, match="item 1: the item is missing"):
        await store.tail("t", "log", 2)
    await raw.hset(keys.thread("t"), "meta", "{not json")
    with pytest.raises(CorruptCheckpointError, match="thread 't'"):
        await store.list_threads()
    await raw.delete(keys.checkpoints("t"))
    await raw.set(keys.checkpoints("t"), "a string where a hash belongs")
    with pytest.raises(CorruptCheckpointError, match="another type"):
        await store.get("t")


@pytest.mark.redis
async def test_keys_hold_ids_as_data(make_store: Factory, raw: Redis, prefix: str) -> None:
    store = await make_store(namespace="*")
    nested = await make_store(prefix=prefix + ":x")
    await store.put(envelope("{t}*"), appends={"[log]?": ["item"], "ünï\n🤖": ["a", "b"]})
    assert await store.log_length("{t}*", "ünï\n🤖") == 2  # Python and Lua agree on keys
    assert await nested.list_threads() == []
    all_keys = [key.decode() async for key in raw.scan_iter(match=f"{prefix}:*")]
    assert all(not set("*?[]") & set(key.partition("{")[2]) for key in all_keys)
    assert await store.delete_thread("{t}*")
    left = {key.decode() async for key in raw.scan_iter(match=f"{prefix}:*")}
    assert left == {f"{prefix}:schema", f"{prefix}:x:schema"}
    with pytest.raises(ValueError, match="braces"):
        RedisStore.from_url("redis://127.0.0.1:6379/0", prefix="my{app}")


@pytest.mark.redis
async def test_long_histories_many_threads_and_big_logs_page_correctly(
    make_store: Factory,
) -> None:
    store = await make_store()
    parent: Envelope | None = None
    for index in range(450):
        parent = await store.put(envelope("long", parent=parent, metadata={"odd": index % 2}))
    listed = await store.list_checkpoints("long")
    assert [e.step for e in listed] == list(range(449, -1, -1))
    odd = await store.list_checkpoints("long", metadata={"odd": 1}, limit=210)
    assert [e.step for e in odd] == list(range(449, 30, -2))
    before = await store.list_checkpoints("long", before=listed[10].checkpoint_id, limit=300)
    assert [e.step for e in before] == list(range(438, 138, -1))
    for index in range(430):
        await store.append(f"thread-{index}", "log", [index])
    threads = await store.list_threads()
    assert len(threads) == 431
    assert [t.thread_id for t in await store.list_threads(limit=3)] == [
        "thread-429",
        "thread-428",
        "thread-427",
    ]
    assert [t.thread_id for t in await store.list_threads(metadata={"odd": 1})] == ["long"]
    big = list(range(12_000))
    first = await store.put(envelope("big"), appends={"log": big})
    assert await store.read_log("big", "log", start=8_000, stop=8_003) == [8_000, 8_001, 8_002]
    assert await store.tail("big", "log", 9_000) == big[-9_000:]
    await store.clear_log("big", "log")
    assert await store.read_log("big", "log", at=first) == big
    assert await store.log_length("big", "log") == 0
    assert await store.prune("big", keep_last=1) == 0


def test_urls_are_checked_and_passwords_masked() -> None:
    for url in ("http://127.0.0.1:6379", "postgresql://u@h/db", "127.0.0.1:6379"):
        with pytest.raises(InvalidStoreURLError):
            RedisStore.from_url(url)
    with pytest.raises(InvalidStoreURLError):
        RedisStore.from_url("redis://127.0.0.1:6379/not-a-db")
    assert mask_url("redis://:hunter2@cache:6379/0") == "redis://:***@cache:6379/0"
    assert mask_url("rediss://me:hunter2@cache/1") == "rediss://me:***@cache/1"
    assert mask_url("unix:///tmp/r.sock?db=2&password=hunter2") == (
        "unix:///tmp/r.sock?db=2&password=***"
    )
    assert mask_url("redis://cache:6379/0") == "redis://cache:6379/0"
    assert mask_url("me:hunter2@cache:6379") == "***@cache:6379"


async def test_an_unreachable_server_is_named_without_its_password() -> None:
    store = RedisStore.from_url("redis://:hunter2@127.0.0.1:1/0")
    try:
        with pytest.raises(StoreUnavailableError, match=r"redis://:\*\*\*@127\.0\.0\.1:1/0") as e:
            await store.get("t")
        assert "hunter2" not in str(e.value)
    finally:
        await store.close()


async def test_a_client_decoding_to_str_is_refused() -> None:
    client = Redis(decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses=False"):
            RedisStore(client)
    finally:
        await client.aclose()


def test_importing_without_redis_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(sys.modules):
        if (
            name == "redis"
            or name.startswith("redis.")
            or name.startswith("agent_persist.stores.redis")
        ):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "agent-persist\[redis\]"'):
        importlib.import_module("agent_persist.stores.redis")


# -- the memory store is the reference --------------------------------------------------------


async def run_random_script(store: BaseStore, seed: int) -> list[Any]:
    """Apply one seeded sequence of operations; return everything observable."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible script, not a secret
    seen: list[Any] = []
    heads: dict[str, Envelope | None] = {"t": None, "u": None}
    logs = ["a", "b"]
    for step in range(120):
        thread = rng.choice(list(heads))
        log = rng.choice(logs)
        op = rng.random()
        if op < 0.3:
            appends = {
                name: [f"{step}-{i}" for i in range(rng.randint(0, 3))]
                for name in rng.sample(logs, rng.randint(0, 2))
            }
            saved = await store.put(envelope(thread, parent=heads[thread]), appends=appends)
            heads[thread] = saved
            seen.append(("put", saved.logs))
        elif op < 0.45:
            await store.append(thread, log, [f"{step}-x"] * rng.randint(0, 2))
        elif op < 0.6:
            seen.append(("pop", await store.pop(thread, log)))
        elif op < 0.65:
            await store.clear_log(thread, log)
        elif op < 0.7 and heads[thread] is not None:
            options: dict[str, Any] = rng.choice(
                [
                    {"keep_last": rng.randint(0, 3)},
                    {"older_than": timedelta(0)},
                    {"keep_last": 2, "older_than": timedelta(0)},
                ]
            )
            seen.append(("prune", await store.prune(thread, **options)))
        else:
            now = await store.read_log(thread, log)
            start, count = rng.randint(0, 2), rng.randint(0, 3)
            seen.append(
                (
                    "now",
                    now,
                    await store.read_log(thread, log, start=start),
                    await store.log_length(thread, log),
                )
            )
            # MemoryStore.tail(count) is wrong when count > length (items[-1:]), so tail is
            # checked against the contract's definition instead of against the reference.
            if not isinstance(store, MemoryStore):
                assert await store.tail(thread, log, count) == (now[-count:] if count else [])
        for name in heads:
            if heads[name] is None:
                continue
            for checkpoint in await store.list_checkpoints(name):
                for name_of_log in logs:
                    seen.append(
                        (
                            name,
                            checkpoint.step,
                            name_of_log,
                            await store.read_log(name, name_of_log, at=checkpoint),
                        )
                    )
    return seen


@pytest.mark.redis
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("keep_last", [None, 3])
async def test_same_results_as_the_memory_store(
    make_store: Factory, raw: Redis, seed: int, keep_last: int | None
) -> None:
    redis_store = await make_store(keep_last=keep_last, codec=PayloadCodec())
    memory_store = MemoryStore(keep_last=keep_last)
    assert await run_random_script(redis_store, seed) == await run_random_script(memory_store, seed)
    # Garbage collection too: Redis keeps exactly the items the reference keeps.
    keys = RedisKeys(redis_store.prefix, redis_store.namespace)
    for thread_id, thread in memory_store._threads.items():
        for name, log in thread.logs.items():
            stored = await raw.hkeys(keys.log(thread_id, name) + ":i")
            assert sorted(int(seq) for seq in stored) == [item.seq for item in log.items]


@pytest.mark.redis
async def test_the_mirror_is_exactly_the_live_items_and_one_lrange_reads_it(
    redis_url: str, prefix: str, raw: Redis
) -> None:
    """Every script that changes a log changes ``:d`` with it, so reads trust it unchecked."""
    client = Redis.from_url(redis_url)
    store = RedisStore(client, prefix=prefix, keep_last=1)
    keys = RedisKeys(prefix, store.namespace)
    mirror = keys.mirror("t", "log")

    async def check(*live: str) -> None:
        assert await raw.lrange(mirror, 0, -1) == [f'json:"{x}"'.encode() for x in live]
        assert await store.read_log("t", "log") == list(live)
        counter = Counter(client)
        assert await store.read_log_lines("t", "log") == b"\n".join(f'"{x}"'.encode() for x in live)
        assert await store.tail_lines("t", "log", 2) == b"\n".join(
            f'"{x}"'.encode() for x in live[-2:]
        )
        assert counter.commands == ["LRANGE", "LRANGE"]  # no script, no check
        del client.execute_command  # the counter's wrapper: back to the class's method

    try:
        first = await store.put(envelope("t"), appends={"log": ["a", "b"]})
        await check("a", "b")
        await store.append("t", "log", ["c"])
        await check("a", "b", "c")
        assert await store.pop("t", "log") == "c"
        await check("a", "b")
        await store.put(envelope("t", parent=first), appends={"log": ["d"]})  # trims
        await check("a", "b", "d")
        await store.prune("t", keep_last=1)
        await check("a", "b", "d")
        await store.clear_log("t", "log")
        await check()
        assert not await raw.exists(mirror)
        await store.append("t", "log", ["e"])
        await check("e")
        assert await store.delete_thread("t")
        assert not await raw.exists(mirror)
    finally:
        await client.aclose()


async def to_layout_2(raw: Redis, prefix: str) -> None:
    """Rename the prefix's keys to layout 2's names (the namespace as the only hash tag).

    What released code before layout 3 wrote: ``P:{N}:t:T...`` and ``P:{N}:lease:T``.
    """
    async for key in raw.scan_iter(match=f"{prefix}:{{*.*}}:*"):
        name = key.decode()
        head, _, rest = name.partition("{")
        tag, _, tail = rest.partition("}")
        namespace, _, thread = tag.partition(".")
        if tail == ":lease":
            old = f"{head}{{{namespace}}}:lease:{thread}"
        else:
            old = f"{head}{{{namespace}}}:t:{thread}{tail.removeprefix(':t')}"
        await raw.rename(name, old)


@pytest.mark.redis
async def test_setup_upgrades_layout_2_keys_to_one_hash_tag_per_thread(
    make_store: Factory, raw: Redis, prefix: str
) -> None:
    """Every key of every thread and lease moves to ``{N.T}``, data and TTLs intact."""
    stores = {ns: await make_store(namespace=ns, ttl=timedelta(hours=1)) for ns in ("a", "b")}
    saved: dict[str, Envelope] = {}
    for namespace, store in stores.items():
        first = await store.put(envelope("t1"), appends={"x": ["1", "2"], "y": [{"k": 1}]})
        await store.pop("t1", "x")
        saved[namespace] = await store.put(envelope("t1", parent=first), appends={"x": ["3"]})
        await store.append("t2", "x", list(range(300)))
        await store.acquire_lease("t3", "worker", ttl=timedelta(minutes=5))  # never written
    before = sorted([k async for k in raw.scan_iter(match=f"{prefix}:*")])
    await to_layout_2(raw, prefix)
    assert not [k async for k in raw.scan_iter(match=f"{prefix}:{{*.*}}*")]
    await raw.set(f"{prefix}:schema", 2)

    await asyncio.gather(*(make_store(namespace="a") for _ in range(4)))  # concurrent setups
    assert await raw.get(f"{prefix}:schema") == str(schema.LAYOUT_VERSION).encode()
    assert sorted([k async for k in raw.scan_iter(match=f"{prefix}:*")]) == before
    for namespace in ("a", "b"):
        store = await make_store(namespace=namespace)
        keys = RedisKeys(prefix, namespace)
        assert (await store.get("t1")).checkpoint_id == saved[namespace].checkpoint_id
        assert await store.read_log("t1", "x") == ["1", "3"]
        assert await store.read_log("t1", "x", at=saved[namespace]) == ["1", "3"]
        assert await store.read_log("t2", "x") == list(range(300))
        assert sorted(t.thread_id for t in await store.list_threads()) == ["t1", "t2"]
        assert 0 < await raw.pttl(keys.mirror("t1", "x")) <= 3_600_000
        with pytest.raises(LeaseHeldError):
            await store.acquire_lease("t3", "other", ttl=timedelta(minutes=1))


@pytest.mark.redis
async def test_setup_upgrades_layout_1_keys(make_store: Factory, raw: Redis, prefix: str) -> None:
    """Layout 1 mirrors (missing, headed by a version, stale) are rebuilt in every namespace."""
    old = {ns: await make_store(namespace=ns) for ns in ("a", "b")}
    for namespace, store in old.items():
        keys = RedisKeys(prefix, namespace)
        parent = await store.put(envelope("t1"), appends={"x": ["1", "2", "3"], "y": [{"k": 1}]})
        await store.pop("t1", "x")
        await store.put(envelope("t1", parent=parent), appends={"x": ["4"], "z": []})
        await store.append("t2", "x", list(range(2500)))  # more than one batch of 1000
        await store.append("t3", "gone", ["only"])
        await store.clear_log("t3", "gone")
        # Layout 1 forms: a headed mirror, no mirror, a stale one (older code appended)
        x1 = keys.mirror("t1", "x")
        await raw.lpush(x1, await raw.hget(keys.thread("t1") + ":v", "x") or b"0")
        await raw.delete(keys.mirror("t1", "y"), keys.mirror("t2", "x"))
        await raw.rpush(keys.mirror("t3", "gone"), b"1")  # a header with no items
        await raw.hset(keys.log("t1", "x") + ":i", "99", b'json:"old code"')
        await raw.rpush(keys.log("t1", "x") + ":o", "99")
        await raw.hset(keys.thread("t1") + ":v", "x", "99")
    await to_layout_2(raw, prefix)
    await raw.set(f"{prefix}:schema", 1)

    new = await make_store(namespace="a")
    assert await raw.get(f"{prefix}:schema") == str(schema.LAYOUT_VERSION).encode()
    for namespace in ("a", "b"):
        store = await make_store(namespace=namespace)
        for thread_id, logs in {"t1": "xyz", "t2": "x", "t3": ["gone"]}.items():
            for log in logs:
                items = await store.read_log(thread_id, log)
                lines = b"\n".join(json.dumps(i, separators=(",", ":")).encode() for i in items)
                assert await store.read_log_lines(thread_id, log) == lines
                assert await store.tail_lines(thread_id, log, 3) == b"\n".join(
                    lines.split(b"\n")[-3:]
                )
                mirror = await raw.lrange(
                    RedisKeys(prefix, namespace).mirror(thread_id, log), 0, -1
                )
                assert len(mirror) == len(items)
        assert await store.read_log("t1", "x") == ["1", "2", "4", "old code"]
        assert len(await store.read_log("t2", "x")) == 2500
    # a missing item: the mirror cannot hold it, so reads take the path that reports it
    keys = RedisKeys(prefix, "a")
    await raw.hdel(keys.log("t1", "x") + ":i", "1")
    await to_layout_2(raw, prefix)
    await raw.set(f"{prefix}:schema", 1)
    await make_store(namespace="b")
    with pytest.raises(CorruptCheckpointError, match="missing"):
        await new.read_log_lines("t1", "x")
    with pytest.raises(CorruptCheckpointError, match="missing"):
        await new.tail_lines("t1", "x", 4)
    assert await new.tail_lines("t1", "x", 3) == b'"2"\n"4"\n"old code"'


@pytest.mark.redis
async def test_layout_steps_run_in_order_each_recorded_once(
    make_store: Factory, raw: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A declared step runs after the ones before it are recorded, and never again after."""
    seen: list[bytes | None] = []
    last = schema.LAYOUT_VERSION
    test_version = last + 1

    async def layout_test(client: Any, keys: Any, scripts: Any) -> None:
        """A test step: notes the layout recorded when it runs."""
        seen.append(await raw.get(f"{prefix}:schema"))

    step = schema.LayoutStep(test_version, "a test step", layout_test)
    monkeypatch.setattr(schema, "LAYOUT_STEPS", (*schema.LAYOUT_STEPS, step))
    monkeypatch.setattr(schema, "LAYOUT_VERSION", test_version)
    await make_store()
    # a new database: the newest, no step
    assert await raw.get(f"{prefix}:schema") == str(test_version).encode()
    assert seen == []
    await raw.set(f"{prefix}:schema", 1)
    await asyncio.gather(*(make_store() for _ in range(4)))
    assert await raw.get(f"{prefix}:schema") == str(test_version).encode()
    assert seen
    # the test step runs only once every step before it is recorded
    assert not set(seen) & {str(version).encode() for version in range(1, last)}
    runs = len(seen)
    await make_store()
    assert len(seen) == runs
    monkeypatch.setattr(schema, "LAYOUT_STEPS", schema.LAYOUT_STEPS[:last])
    monkeypatch.setattr(schema, "LAYOUT_VERSION", last)
    with pytest.raises(
        StoreSchemaError, match=f"layout version {test_version}, newer than this code's {last}"
    ):
        await make_store()


@pytest.mark.redis
async def test_the_mirror_expires_with_its_thread(make_store: Factory, raw: Redis) -> None:
    store = await make_store(ttl=timedelta(seconds=1))
    keys = RedisKeys(store.prefix, store.namespace)
    await store.append("t", "log", ["a"])
    await store.put(envelope("t"), appends={"log": ["b"]})
    async with raw.pipeline(transaction=True) as pipe:  # both read at one moment
        pipe.pttl(keys.mirror("t", "log"))
        pipe.pttl(keys.thread("t"))
        mirror_ttl, thread_ttl = await pipe.execute()
    assert 0 < mirror_ttl <= 1000
    assert abs(mirror_ttl - thread_ttl) < 50
    await asyncio.sleep(1.2)
    assert not await raw.exists(keys.mirror("t", "log"), keys.thread("t"))
    assert await store.read_log_lines("t", "log") == b""
    assert await store.tail_lines("t", "log", 5) == b""


@pytest.mark.redis
async def test_wait_replicas_on_a_server_without_replicas_says_the_write_is_unconfirmed(
    make_store: Factory,
) -> None:
    """``WAIT`` runs in the put's round trip; too few replicas is a typed error, not a hang."""
    store = await make_store(wait_replicas=1, wait_timeout=0.05)
    with pytest.raises(StoreUnavailableError, match="reached the master but only 0 of"):
        await store.put(envelope("t"))
    assert (await store.get("t")).step == 0  # written on the master all the same
    assert (await (await make_store(wait_replicas=0)).put(envelope("u"))).thread_id == "u"
    with pytest.raises(TypeError, match="wait_timeout"):
        await make_store(wait_timeout="soon")


async def test_put_clear_logs_frees_the_journal_keys(make_store: Factory, raw: Any) -> None:
    await check_redis_journal_freed(await make_store(), raw)
