"""The session's safety: settings given as a dict, encryption with a wrong key, damaged items.

The SDK's own sessions are the reference: ``SQLiteSession`` for how ``session_settings`` are
taken and how a row that does not parse is skipped, and the SDK's ``EncryptedSession`` over
``SQLiteSession`` for what a wrong key, an expired item and normal use do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner, SessionSettings, SQLiteSession
from agents.extensions.memory import EncryptedSession
from agents.testing import ScriptedModel, assistant_message
from click.testing import CliRunner
from cryptography.fernet import Fernet, InvalidToken
from oa_support import Backend

from agent_persist import open_store
from agent_persist.cli import cli
from agent_persist.errors import AgentPersistError
from damage_support import GARBAGE, TRUNCATED, damage_log_item
from openai_agents_persist import (
    ITEMS_LOG,
    CorruptItemError,
    DamagedItemError,
    EncryptedStoreSession,
    StoreSession,
    UnauthenticatedItemError,
)

KEY = Fernet.generate_key().decode()
WRONG_KEY = Fernet.generate_key().decode()
LOGGER = "openai_agents_persist"


def message(n: int) -> dict[str, Any]:
    return {"role": "user", "content": f"m{n}"}


def outcome(make: Callable[[], Any]) -> tuple[str, Any]:
    """A value, or which of the two argument errors was raised (pydantic's is a ValueError)."""
    try:
        return "ok", make()
    except TypeError as exc:
        return "TypeError", str(exc)
    except ValueError as exc:
        return "ValueError", str(exc)


async def async_outcome(call: Awaitable[Any]) -> Any:
    """A result, or the SDK-visible kind of error (``InvalidToken`` whatever its subclass)."""
    try:
        return await call
    except InvalidToken:
        return "InvalidToken"


# -- session_settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        SessionSettings(limit=1),
        {"limit": 2},
        {},
        {"limit": None},
        {"limit": "3"},
        {"limt": 1},
        {"limit": "lots"},
        "limit=2",
        3,
        [("limit", 1)],
    ],
)
def test_session_settings_are_taken_as_the_sdk_takes_them(value: Any) -> None:
    def sdk() -> Any:
        reference = SQLiteSession("s", session_settings=value)
        try:
            return reference.session_settings
        finally:
            reference.close()

    expected = outcome(sdk)
    store = open_store("memory://settings")
    got = outcome(lambda: StoreSession("s", store=store, session_settings=value).session_settings)
    assert got[0] == expected[0]
    if got[0] == "ok":
        assert got[1] == expected[1]
        assert type(got[1]) is SessionSettings
    else:
        assert "session_settings" in got[1]


async def test_a_dict_of_settings_works_with_the_runner_and_when_assigned() -> None:
    model = ScriptedModel([[assistant_message("hi")]])
    agent = Agent(name="a", instructions="be brief", model=model)
    async with open_store("memory://dict-settings") as store:
        session = StoreSession("s", store=store, session_settings={"limit": 2})
        await session.add_items([message(n) for n in range(5)])
        result = await Runner.run(agent, "next", session=session)
        assert result.final_output == "hi"
        assert model.last_call is not None
        seen = [item.get("content") for item in model.last_call.input if isinstance(item, dict)]
        assert seen == ["m3", "m4", "next"]  # the limit applied to the history read
        session.session_settings = {"limit": 1}  # type: ignore[assignment]
        assert session.session_settings == SessionSettings(limit=1)
        encrypted = EncryptedStoreSession("s", session, KEY)
        encrypted.session_settings = {"limit": 3}  # type: ignore[assignment]
        assert session.session_settings == SessionSettings(limit=3)
        with pytest.raises(TypeError, match="session_settings"):
            session.session_settings = "all"  # type: ignore[assignment]
        assert session.session_settings == SessionSettings(limit=3)
    with pytest.raises(ValueError, match="session_settings"):
        StoreSession.from_url("s", url="memory://x", session_settings={"limit": "lots"})
    with pytest.raises(ValueError, match="on_bad_item"):
        StoreSession("s", store=store, on_bad_item="ignore")  # type: ignore[arg-type]


# -- EncryptedSession: ours over StoreSession equals the SDK's over SQLiteSession ---------------


Wrap = Callable[[str], EncryptedSession]


def old_envelope(encrypted: EncryptedSession, content: str) -> dict[str, Any]:
    """An item encrypted as ``encrypted`` does, but three hours ago: past any short TTL."""
    token = encrypted.cipher.encrypt_at_time(
        json.dumps({"role": "user", "content": content}).encode(), int(time.time()) - 10_800
    )
    return {"__enc__": 1, "v": 1, "kid": "hkdf-v1", "payload": token.decode()}


async def normal_use(underlying: Any, wrap: Wrap) -> list[Any]:
    session = wrap(KEY)
    trace: list[Any] = [await session.get_items(), await session.pop_item()]
    await session.add_items([message(1), message(2)])
    await session.add_items([message(3)])
    trace += [await session.get_items(), await session.get_items(2), await session.pop_item()]
    trace += [await session.get_items(), await wrap(KEY).get_items(1)]
    await session.clear_session()
    trace += [await session.get_items(), await session.pop_item()]
    await session.add_items([message(4)])
    trace += [await session.pop_item(), await session.pop_item(), len(await underlying.get_items())]
    return trace


async def wrong_key(underlying: Any, wrap: Wrap) -> list[Any]:
    await wrap(KEY).add_items([message(n) for n in range(5)])
    wrong = wrap(WRONG_KEY)
    trace: list[Any] = [await wrong.get_items(), await wrong.get_items(2)]
    trace += [await async_outcome(wrong.pop_item()) for _ in range(2)]
    trace += [len(await underlying.get_items()), await wrap(KEY).get_items()]
    trace += [await wrap(KEY).pop_item(), len(await underlying.get_items())]
    return trace


async def expired_items(underlying: Any, wrap: Wrap) -> list[Any]:
    session = wrap(KEY)
    await underlying.add_items([old_envelope(session, "old 1")])
    await session.add_items([message(1)])
    await underlying.add_items([{"role": "user", "content": "plain, not encrypted"}])
    await underlying.add_items([old_envelope(session, "old 2")])
    trace: list[Any] = [await session.get_items(), await session.get_items(1)]
    trace += [await async_outcome(wrap(WRONG_KEY).pop_item()), len(await underlying.get_items())]
    trace += [await session.pop_item(), len(await underlying.get_items())]
    trace += [await session.pop_item(), len(await underlying.get_items())]
    return trace


@pytest.mark.parametrize("scenario", [normal_use, wrong_key, expired_items])
async def test_encrypted_pops_equal_the_sdk_over_sqlite_session(
    backend: Backend, scenario: Callable[[Any, Wrap], Awaitable[list[Any]]]
) -> None:
    reference = SQLiteSession("s")
    try:
        expected = await scenario(
            reference, lambda key: EncryptedSession("s", reference, key, ttl=600)
        )
    finally:
        reference.close()
    async with backend.open() as store:
        ours = StoreSession("s", store=store)
        got = await scenario(ours, lambda key: EncryptedStoreSession("s", ours, key, ttl=600))
    assert got == expected


async def test_a_wrong_key_pop_raises_an_error_of_both_hierarchies() -> None:
    async with open_store("memory://wrong-key") as store:
        session = StoreSession("s", store=store)
        await EncryptedStoreSession("s", session, KEY).add_items([message(1), message(2)])
        with pytest.raises(UnauthenticatedItemError, match="nothing was removed") as raised:
            await EncryptedStoreSession("s", session, WRONG_KEY).pop_item()
        assert isinstance(raised.value, AgentPersistError)
        assert isinstance(raised.value, InvalidToken)
        assert await store.log_length("s", ITEMS_LOG) == 2
        with pytest.raises(TypeError, match="underlying_session"):
            EncryptedStoreSession("s", SQLiteSession("s"), KEY)  # type: ignore[arg-type]


async def test_the_sdk_wrapper_over_a_store_session_still_drains_and_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The reason EncryptedStoreSession exists; if this fails, the SDK fixed its wrapper."""
    async with open_store("memory://sdk-wrapper") as store:
        session = StoreSession("s", store=store)
        await EncryptedSession("s", session, KEY).add_items([message(n) for n in range(5)])
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert await EncryptedSession("s", session, WRONG_KEY).pop_item() is None
        assert await store.log_length("s", ITEMS_LOG) == 0
        warnings = [r for r in caplog.records if r.name == LOGGER]
        assert len(warnings) == 1  # once per session object, not once per item
        assert "EncryptedStoreSession" in warnings[0].getMessage()


# -- damaged items -------------------------------------------------------------------------------


async def damage(backend: Backend, position: int, data: bytes) -> None:
    await damage_log_item(backend.url, "s", ITEMS_LOG, position, data, **backend.options)


@pytest.mark.parametrize("data", [TRUNCATED, GARBAGE])
async def test_a_damaged_item_raises_naming_it_and_how_to_go_on(
    durable_backend: Backend, data: bytes
) -> None:
    async with durable_backend.open() as store:
        session = StoreSession("s", store=store)
        await session.add_items([message(n) for n in range(5)])
        await damage(durable_backend, 2, data)
        for call in (session.get_items(), session.get_items(3)):
            with pytest.raises(DamagedItemError) as raised:
                await call
            assert raised.value.positions == [2]
            assert (raised.value.session_id, raised.value.log) == ("s", ITEMS_LOG)
            text = str(raised.value)
            for needed in ("session 's'", "position 2", "'items'", "on_bad_item='skip'"):
                assert needed in text
            assert "agent-persist quarantine --url STORE_URL s items 2`" in text
        assert isinstance(raised.value, CorruptItemError)
        assert await session.get_items(2) == [message(3), message(4)]  # outside the damage
        assert await store.log_length("s", ITEMS_LOG) == 5


async def test_skip_leaves_damaged_items_out_and_logs_each_once(
    durable_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    async with durable_backend.open() as store:
        session = StoreSession("s", store=store, on_bad_item="skip")
        await session.add_items([message(n) for n in range(6)])
        await damage(durable_backend, 1, GARBAGE)
        await damage(durable_backend, 3, TRUNCATED)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert await session.get_items() == [message(0), message(2), message(4), message(5)]
            assert await session.get_items(3) == [message(2), message(4), message(5)]
            assert await session.get_items() == [message(0), message(2), message(4), message(5)]
        warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
        assert len(warnings) == 2
        assert "session 's'" in warnings[0]
        assert "position 1 of log 'items'" in warnings[0]
        assert "position 3 of log 'items'" in warnings[1]
        assert "agent-persist quarantine" in warnings[1]
        assert await session.pop_item() == message(5)
        assert await store.log_length("s", ITEMS_LOG) == 5


@pytest.mark.parametrize("on_bad_item", ["raise", "skip"])
async def test_a_damaged_newest_item_is_never_popped_nor_stepped_over(
    durable_backend: Backend, on_bad_item: Any
) -> None:
    async with durable_backend.open() as store:
        session = StoreSession("s", store=store, on_bad_item=on_bad_item)
        await session.add_items([message(n) for n in range(3)])
        await damage(durable_backend, 2, GARBAGE)
        for pop in (session.pop_item, lambda: session.pop_item_checked(lambda item: None)):
            with pytest.raises(DamagedItemError, match=r"newest item \(position 2\)") as raised:
                await pop()
            assert raised.value.positions == [2]
        assert await store.log_length("s", ITEMS_LOG) == 3
        if on_bad_item == "skip":
            assert await session.get_items(2) == [message(0), message(1)]
        else:
            with pytest.raises(DamagedItemError):
                await session.get_items(2)


async def test_a_stored_value_that_is_not_an_item_asks_for_force(backend: Backend) -> None:
    """The store reads it, so quarantining it takes ``--force``; on every store, memory too."""
    async with backend.open() as store:
        session = StoreSession("s", store=store)
        await session.add_items([message(0)])
        await store.append("s", ITEMS_LOG, ["just a string"])
        await session.add_items([message(2)])
        with pytest.raises(DamagedItemError, match=r"s items 1 --force`") as raised:
            await session.get_items()
        assert raised.value.positions == [1]
        skipping = StoreSession("s", store=store, on_bad_item="skip")
        assert await skipping.get_items() == [message(0), message(2)]
        assert await skipping.pop_item() == message(2)
        with pytest.raises(DamagedItemError, match=r"newest item \(position 1\).*--force"):
            await skipping.pop_item()
        assert (await store.read_log("s", ITEMS_LOG))[1:] == ["just a string"]


async def test_skip_returns_what_the_sdk_sqlite_session_returns(
    tmp_path: Path, backend: Backend
) -> None:
    """A row that does not parse: the SDK skips it silently, ``skip`` skips it with a warning."""
    reference = SQLiteSession("s", db_path=tmp_path / "sdk.db")
    try:
        await reference.add_items([message(n) for n in range(5)])
        raw = sqlite3.connect(tmp_path / "sdk.db")
        with raw:
            raw.execute("UPDATE agent_messages SET message_data = '{' WHERE id = 3")
        raw.close()
        expected = [await reference.get_items(), await reference.get_items(3)]
    finally:
        reference.close()
    async with backend.open() as store:
        session = StoreSession("s", store=store, on_bad_item="skip")
        await session.add_items([message(n) for n in range(5)])
        if backend.name == "memory":  # no raw bytes to reach: a value that is not an item
            await store.clear_log("s", ITEMS_LOG)
            await session.add_items([message(0), message(1)])
            await store.append("s", ITEMS_LOG, [17])
            await session.add_items([message(3), message(4)])
        else:
            await damage(backend, 2, TRUNCATED)
        assert [await session.get_items(), await session.get_items(3)] == expected


def location_args(backend: Backend) -> list[str]:
    """The store options of ``backend`` as the command spells them."""
    args: list[str] = []
    for key, value in backend.options.items():
        args += [f"--{key}", str(value)]
    return args


@pytest.mark.parametrize("kind", ["damaged bytes", "not an item"])
async def test_the_suggested_quarantine_command_makes_the_session_readable(
    durable_backend: Backend, kind: str
) -> None:
    async with durable_backend.open() as store:
        session = StoreSession("s", store=store)
        await session.add_items([message(0), message(1)])
        await store.append("s", ITEMS_LOG, ["not an item"])
        await session.add_items([message(3), message(4)])
    if kind == "damaged bytes":
        await damage(durable_backend, 2, TRUNCATED)
    async with durable_backend.open() as store:
        with pytest.raises(DamagedItemError) as raised:
            await StoreSession("s", store=store).get_items()
    command = shlex.split(str(raised.value).split("`")[1])
    assert command[:2] == ["agent-persist", "quarantine"]
    args = [durable_backend.url if arg == "STORE_URL" else arg for arg in command[1:]]
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, [*args, *location_args(durable_backend)]
    )
    assert result.exit_code == 0, result.output
    async with durable_backend.open() as store:
        session = StoreSession("s", store=store)
        assert await session.get_items() == [message(n) for n in (0, 1, 3, 4)]
        assert await session.pop_item() == message(4)
        (record,) = await store.read_log("s", f"quarantine/{ITEMS_LOG}")
        (moved,) = record["items"]
        assert moved["position"] == 2
        if kind == "not an item":
            assert moved["item"] == "not an item"
        else:
            assert moved["text"] == TRUNCATED.removeprefix(b"json:").decode()


async def test_remembered_damage_is_a_hint_that_never_hides_an_item(
    durable_backend: Backend,
) -> None:
    """Skip remembers where damage was; once the log is rewritten, every item reads again."""
    async with durable_backend.open() as store:
        session = StoreSession("s", store=store, on_bad_item="skip")
        await session.add_items([message(n) for n in range(5)])
        await damage(durable_backend, 1, GARBAGE)
        assert len(await session.get_items()) == 4
        assert await session.get_items(4) == [message(n) for n in (0, 2, 3, 4)]
        await store.clear_log("s", ITEMS_LOG)  # what a quarantine does: position 1 is now good
        await session.add_items([message(n) for n in range(3)])
        assert await session.get_items(2) == [message(1), message(2)]
        assert await session.get_items() == [message(n) for n in range(3)]
