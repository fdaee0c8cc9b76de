"""Item TTL on an encrypted store equals the SDK's ``EncryptedSession`` over ``SQLiteSession``.

Both sides read one clock the test moves: ours through ``StoreSession(clock=...)``, the
SDK's through the ``time`` that ``cryptography.fernet`` stamps and checks its tokens with.
Hypothesis draws ``add_items`` / ``get_items(limit)`` / ``pop_item`` / ``clear_session``
calls and clock ticks; every result is compared, then the whole readable history.
"""

from __future__ import annotations

import asyncio
import os
import types
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import cryptography.fernet
import pytest
from agents import SessionSettings, SQLiteSession
from agents.extensions.memory import EncryptedSession
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oa_support import Backend

from agent_persist import BaseStore, canonical_json, open_store
from agent_persist.crypto import Encryption, KeyRing
from openai_agents_persist import ITEMS_LOG, EncryptedStoreSession, StoreSession, wrap_item
from openai_agents_persist._item_lines import stamped_items

TTL = 10
START = 1_800_000_000.5
KEY = Fernet.generate_key().decode()
RING = KeyRing({"k": os.urandom(32)}, primary="k")


class Clock:
    """Seconds since the epoch, moved by the test."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@contextmanager
def fernet_reads(clock: Clock) -> Iterator[None]:
    """Make the SDK's Fernet tokens stamp and expire by ``clock`` (its only time source)."""
    module: Any = cryptography.fernet
    real = module.time
    module.time = types.SimpleNamespace(time=clock)
    try:
        yield
    finally:
        module.time = real


def sealed(backend: Backend) -> BaseStore:
    return backend.open(encryption=Encryption(RING))


def message(n: int) -> Any:
    return {"role": "user", "content": f"m{n}"}


text = st.text(max_size=8)
items = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": text})
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(items, max_size=3)),
        st.tuples(st.just("get"), st.one_of(st.none(), st.integers(0, 6))),
        st.tuples(st.just("pop"), st.none()),
        st.tuples(st.just("clear"), st.none()),
        st.tuples(st.just("tick"), st.sampled_from([0.4, 1, 3, TTL - 1, TTL, TTL + 1, 3 * TTL])),
    ),
    max_size=25,
)


async def _call(session: Any, clock: Clock, operation: str, argument: Any) -> Any:
    if operation == "add":
        return await session.add_items(list(argument))
    if operation == "get":
        return await session.get_items(argument)
    if operation == "pop":
        return await session.pop_item()
    if operation == "tick":
        clock.now += argument
        return None
    return await session.clear_session()


async def _compare(backend: Backend, ops: list[tuple[str, Any]], limit: int | None) -> None:
    clock = Clock()
    settings_ = SessionSettings(limit=limit)
    underlying = SQLiteSession("s", session_settings=settings_)
    reference = EncryptedSession("s", underlying, KEY, ttl=TTL)
    async with sealed(backend) as store:
        ours = StoreSession("s", store=store, session_settings=settings_, ttl=TTL, clock=clock)
        await ours.clear_session()  # examples share the backend
        try:
            with fernet_reads(clock):
                for operation, argument in ops:
                    expected = await _call(reference, clock, operation, argument)
                    got = await _call(ours, clock, operation, argument)
                    assert got == expected, (operation, argument)
                assert await ours.get_items() == await reference.get_items()
        finally:
            underlying.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations, limit=st.one_of(st.none(), st.integers(1, 4)))
def test_ttl_equals_the_sdk_encrypted_session(
    backend: Backend, ops: list[tuple[str, Any]], limit: int | None
) -> None:
    asyncio.run(_compare(backend, ops, limit))


async def scenario(session: Any, clock: Clock) -> list[Any]:
    """Items written 0, 4 and 8 seconds in; reads at 8, 12, 14 (a boundary) and 15 seconds."""
    await session.add_items([message(1), message(2)])
    clock.now += 4
    await session.add_items([message(3)])
    clock.now += 4
    await session.add_items([message(4), message(5)])
    trace: list[Any] = [await session.get_items(), await session.get_items(2)]
    clock.now += 4  # 12 s: the first two are past their 10 s
    trace += [await session.get_items(), await session.get_items(4), await session.get_items(1)]
    trace += [await session.pop_item(), await session.pop_item()]
    clock.now += 2  # 14 s: the third is exactly 10 s old, still readable (as Fernet says)
    trace += [await session.get_items()]
    clock.now += 1  # 15 s: the third is past too
    trace += [await session.get_items(), await session.pop_item()]
    await session.add_items([message(6)])
    trace += [await session.get_items(), await session.pop_item(), await session.pop_item()]
    return trace


async def test_a_scenario_reads_what_the_ttl_says_on_every_store(backend: Backend) -> None:
    clock = Clock()
    underlying = SQLiteSession("s")
    try:
        with fernet_reads(clock):
            expected = await scenario(EncryptedSession("s", underlying, KEY, ttl=TTL), clock)
    finally:
        underlying.close()
    m = message
    assert expected == [
        [m(1), m(2), m(3), m(4), m(5)],
        [m(4), m(5)],
        [m(3), m(4), m(5)],
        [m(3), m(4), m(5)],
        [m(5)],
        m(5),
        m(4),
        [m(3)],
        [],
        None,  # the third expired: dropped, and nothing readable is left
        [m(6)],
        m(6),
        None,
    ]
    clock = Clock()
    async with sealed(backend) as store:
        session = StoreSession("s", store=store, ttl=timedelta(seconds=TTL), clock=clock)
        assert await scenario(session, clock) == expected
        assert await store.log_length("s", ITEMS_LOG) == 0  # pops dropped the expired ones


async def test_expired_items_stay_stored_until_popped_and_untimed_items_count_as_expired() -> None:
    clock = Clock()
    async with open_store("memory://", encryption=Encryption(RING)) as store:
        await StoreSession("s", store=store).add_items([message(0)])  # no ttl: no time
        session = StoreSession("s", store=store, ttl=TTL, clock=clock)
        await session.add_items([message(1)])
        clock.now += TTL + 1
        await session.add_items([message(2)])
        assert await session.get_items() == [message(2)]
        assert await StoreSession("s", store=store).get_items() == [message(n) for n in range(3)]
        assert await session.pop_item() == message(2)
        assert await session.pop_item() is None
        assert await store.log_length("s", ITEMS_LOG) == 0


def test_bad_ttl_arguments() -> None:
    store = open_store("memory://")
    for bad in (0, -5, timedelta(seconds=1.5), timedelta(0)):
        with pytest.raises(ValueError, match="ttl"):
            StoreSession("s", store=store, ttl=bad)
    for wrong in ("600", 1.5, True):
        with pytest.raises(TypeError, match="ttl"):
            StoreSession("s", store=store, ttl=wrong)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock"):
        StoreSession("s", store=store, ttl=5, clock=5)  # type: ignore[arg-type]


async def test_wrapping_a_session_on_an_encrypted_store_keeps_working() -> None:
    """The SDK's ``EncryptedSession`` and ours over a ``StoreSession`` on a sealed store."""
    async with open_store("memory://", encryption=Encryption(RING)) as store:
        for wrapper in (EncryptedSession, EncryptedStoreSession):
            inner = StoreSession(wrapper.__name__, store=store)
            session = wrapper(wrapper.__name__, inner, KEY, ttl=600)  # type: ignore[arg-type]
            await session.add_items([message(1), message(2)])
            assert await session.get_items() == [message(1), message(2)]
            assert await session.pop_item() == message(2)
            assert await session.get_items() == [message(1)]


async def test_items_from_a_clock_that_went_back_are_each_judged_by_their_own_time() -> None:
    """Writers whose clocks disagree interleave old and new times: each item is judged alone."""
    clock = Clock()
    async with open_store("memory://", encryption=Encryption(RING)) as store:
        session = StoreSession("s", store=store, ttl=TTL, clock=clock)
        await session.add_items([message(1)])
        clock.now -= 2 * TTL  # a writer whose clock is behind
        await session.add_items([message(2)])
        clock.now += 2 * TTL + 3
        await session.add_items([message(3)])
        assert await session.get_items() == [message(1), message(3)]
        assert await session.get_items(1) == [message(3)]
        assert await session.get_items(2) == [message(1), message(3)]
        assert await session.pop_item() == message(3)
        assert await session.pop_item() == message(1)  # the newest readable, past message 2
        assert await session.pop_item() is None
        assert await store.log_length("s", ITEMS_LOG) == 0


def test_stamped_lines_are_cut_where_the_readable_items_start() -> None:
    def line(at: int, n: int) -> bytes:
        return canonical_json(wrap_item(message(n), at=at))

    stamped = b"\n".join([line(100, 1), line(105, 2), line(110, 3)])
    assert stamped_items(stamped, 100) == [message(1), message(2), message(3)]
    assert stamped_items(stamped, 101) == [message(2), message(3)]
    assert stamped_items(stamped, 111) == []
    assert stamped_items(b"", 0) == []
    interleaved = b"\n".join([line(100, 1), line(90, 2), line(110, 3)])
    assert stamped_items(interleaved, 95) is None  # judged one by one instead
    untimed = b"\n".join([line(100, 1), canonical_json(wrap_item(message(2)))])
    assert stamped_items(untimed, 0) is None
