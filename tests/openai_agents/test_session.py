"""The Session on every store: concurrent pops, item versions, bad input, the Runner."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from agents import Agent, Runner, SessionSettings
from agents.testing import ScriptedModel, assistant_message
from oa_support import Backend

from agent_persist.errors import (
    CorruptCheckpointError,
    FutureVersionError,
    InvalidPayloadError,
    MigrationFailedError,
)
from openai_agents_persist import (
    ITEMS_LOG,
    CorruptItemError,
    FutureItemFormatError,
    InvalidLimitError,
    ItemFormats,
    StoreSession,
    wrap_item,
)
from openai_agents_persist.items import ITEM_FORMAT_VERSION, SDK_VERSION

HOSTILE_ID = "user' OR '1'='1\"; DROP TABLE x; -- %_*?[a]{b}:\n\u00e9\U0001f600" * 3


def message(n: int) -> dict[str, Any]:
    return {"role": "user", "content": f"m{n}"}


async def test_concurrent_pops_never_share_an_item(backend: Backend) -> None:
    stores = [backend.open() for _ in range(6)]
    try:
        writer = StoreSession(HOSTILE_ID, store=stores[0])
        await writer.add_items([message(n) for n in range(60)])

        async def drain(session: StoreSession) -> list[Any]:
            popped: list[Any] = []
            while (item := await session.pop_item()) is not None:
                popped.append(item["content"])
            return popped

        results = await asyncio.gather(*(drain(StoreSession(HOSTILE_ID, store=s)) for s in stores))
        everything = [content for popped in results for content in popped]
        assert sorted(everything) == sorted(f"m{n}" for n in range(60))
        assert len(set(everything)) == 60
    finally:
        for store in stores:
            await store.close()


async def test_items_carry_their_versions_and_ids_are_data(backend: Backend) -> None:
    async with backend.open() as store:
        session = StoreSession(HOSTILE_ID, store=store)
        other = StoreSession("user", store=store)
        await session.add_items([message(1)])
        assert await other.get_items() == []
        assert await store.read_log(HOSTILE_ID, ITEMS_LOG) == [
            {"v": ITEM_FORMAT_VERSION, "sdk": SDK_VERSION, "item": message(1)}
        ]


async def test_bare_items_migrate_and_drop_reasoning_ids(backend: Backend) -> None:
    reasoning = {"type": "reasoning", "id": "rs_123", "summary": []}
    async with backend.open() as store:
        await store.append("s", ITEMS_LOG, [reasoning, message(1)])
        session = StoreSession("s", store=store)
        assert await session.get_items() == [{"type": "reasoning", "summary": []}, message(1)]


async def test_custom_item_migration_chain() -> None:
    formats = ItemFormats()
    with pytest.raises(ValueError, match="item migrations go"):
        formats.register(ITEM_FORMAT_VERSION)

    @formats.register(0)
    def broken(item: Any) -> Any:
        raise KeyError("boom")

    with pytest.raises(MigrationFailedError, match="boom"):
        formats.unwrap({"role": "user"}, where="t")
    assert ItemFormats().unwrap(wrap_item(message(1)), where="t") == message(1)
    with pytest.raises(Exception, match="no session item migration"):
        ItemFormats().unwrap({"role": "user"}, where="t")


@pytest.mark.parametrize(
    ("stored", "error"),
    [
        ({"v": 99, "sdk": "9.0", "item": {}}, FutureItemFormatError),
        ({"v": "1", "item": {}}, CorruptItemError),
        ({"v": 1}, CorruptItemError),
        ("just a string", CorruptItemError),
    ],
)
async def test_unreadable_items_raise_and_stay(
    backend: Backend, stored: Any, error: type[Exception]
) -> None:
    async with backend.open() as store:
        session = StoreSession("s", store=store)
        await session.add_items([message(1)])
        await store.append("s", ITEMS_LOG, [stored])
        with pytest.raises(error):
            await session.get_items()
        with pytest.raises(error):
            await session.get_items(1)
        with pytest.raises(error):
            await session.pop_item()
        assert await store.read_log("s", ITEMS_LOG) == [wrap_item(message(1)), stored]
    assert issubclass(FutureItemFormatError, FutureVersionError)
    assert issubclass(CorruptItemError, CorruptCheckpointError)


async def test_bad_input_is_refused_and_nothing_is_lost(backend: Backend) -> None:
    async with backend.open() as store:
        session = StoreSession("s", store=store)
        await session.add_items([message(1)])
        for bad in ([message(2), {"x": object()}], [{"x": math.nan}]):
            with pytest.raises(InvalidPayloadError):
                await session.add_items(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidLimitError, match="-1"):
            await session.get_items(-1)
        negative = StoreSession("s", store=store, session_settings=SessionSettings(limit=-2))
        with pytest.raises(InvalidLimitError):
            await negative.get_items()
        with pytest.raises(TypeError):
            StoreSession(3, store=store)  # type: ignore[arg-type]
        assert await session.get_items() == [message(1)]


async def test_runner_uses_it_as_its_session(backend: Backend) -> None:
    model = ScriptedModel([[assistant_message("hi")], [assistant_message("again")]])
    agent = Agent(name="a", instructions="be brief", model=model)
    async with backend.open() as store:
        session = StoreSession("u", store=store)
        await Runner.run(agent, "hello", session=session)
        result = await Runner.run(agent, "more", session=session)
        assert result.final_output == "again"
        contents = [item.get("content") for item in await session.get_items()]
        assert contents[0] == "hello"
        assert contents[2] == "more"
        assert len(contents) == 4
        assert model.last_call is not None


async def test_from_url_owns_its_store(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    session = StoreSession.from_url("u", url=url, session_settings=SessionSettings(limit=1))
    closed: list[bool] = []
    close = session.store.close

    async def spy() -> None:
        closed.append(True)
        await close()

    session.store.close = spy  # type: ignore[method-assign]
    async with session:
        await session.add_items([message(1), message(2)])
        assert await session.get_items() == [message(2)]
    assert closed == [True], "the session owns the store it opened, and closes it"
    async with StoreSession.from_url(
        "u", url=url, store_options={"namespace": "other"}
    ) as elsewhere:
        assert await elsewhere.get_items() == []  # the store option reached the store
    async with StoreSession.from_url("u", url=url) as session:
        assert await session.get_items() == [message(1), message(2)]


async def test_open_is_a_deprecated_alias_of_from_url(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with pytest.warns(DeprecationWarning, match=r"StoreSession\.from_url"):
        session = StoreSession.open("u", url, namespace="n", session_settings={"limit": 1})
    async with session:
        await session.add_items([message(1), message(2)])
        assert await session.get_items() == [message(2)]
        assert session.store.namespace == "n"


async def test_items_of_every_format_and_sdk_version_read_back(backend: Backend) -> None:
    """The one-parse read and the item-by-item one give the same items, in order."""
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    async with backend.open() as store:
        session = StoreSession("s", store=store)
        await session.add_items([message(1)])
        await store.append("s", ITEMS_LOG, [{"v": 1, "sdk": "0.1.0", "item": message(2)}])
        await session.add_items([message(3), message(4)])
        assert await session.get_items() == [message(n) for n in range(1, 5)]
        assert await session.get_items(3) == [message(n) for n in range(2, 5)]
        await store.append("s", ITEMS_LOG, [reasoning])  # bare, as the SDK's sessions store it
        await session.add_items([message(5)])
        migrated = {"type": "reasoning", "summary": []}
        expected = [*(message(n) for n in range(1, 5)), migrated, message(5)]
        assert await session.get_items() == expected
        assert await session.get_items(2) == expected[-2:]
        assert await session.pop_item() == message(5)
        assert await session.get_items(1) == [migrated]
