"""``agent-persist rekey``: re-wraps data keys under the primary, with a dry run, resumable."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cli_support import Backend, arun

from agent_persist.errors import UnknownKeyError
from agent_persist.stores import open_store
from agent_persist.stores.base import BaseStore

if TYPE_CHECKING:
    from agent_persist.crypto import KeyRing

pytestmark = pytest.mark.needs_extras  # agent-persist[crypto]; imported lazily below


def _ring(key_id: str, key: bytes) -> KeyRing:
    from agent_persist.crypto import KeyRing

    return KeyRing({key_id: key}, primary=key_id)


KEY_OLD = os.urandom(32)
KEY_NEW = os.urandom(32)


def _env(primary: str | None = None, **keys: bytes) -> dict[str, str | None]:
    env: dict[str, str | None] = {
        f"AGENT_PERSIST_KEY_{key_id}": base64.b64encode(key).decode()
        for key_id, key in keys.items()
    }
    env["AGENT_PERSIST_PRIMARY_KEY"] = primary
    return env


def _open(backend: Backend, keys: KeyRing) -> BaseStore:
    url, rest = backend.args[1], backend.args[2:]
    options: dict[str, Any] = {rest[0].removeprefix("--"): rest[1]} if rest else {}
    from agent_persist.crypto import Encryption

    return open_store(url, encryption=Encryption(keys), **options)


async def _write(backend: Backend, keys: KeyRing, threads: int) -> None:
    async with _open(backend, keys) as store:
        for index in range(threads):
            await store.append(f"t{index}", "log", [f"secret {index}"])


async def _read(backend: Backend, keys: KeyRing, thread_id: str) -> Any:
    async with _open(backend, keys) as store:
        return await store.read_log(thread_id, "log")


def test_rekey_dry_run_then_rewraps_and_skips_on_rerun(backend: Backend) -> None:
    arun(_write(backend, _ring("old", KEY_OLD), 3))
    env = _env("new", old=KEY_OLD, new=KEY_NEW)

    dry = backend.invoke("rekey", "--dry-run", "--json", env=env)
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output) == {
        "threads": 3,
        "rewrapped": 3,
        "already_primary": 0,
        "primary": "new",
        "dry_run": True,
    }
    only_new = _ring("new", KEY_NEW)
    try:
        arun(_read(backend, only_new, "t0"))
    except UnknownKeyError:
        pass  # the dry run wrote nothing: the keys are still under the old key
    else:
        raise AssertionError("the dry run re-wrapped a key")

    done = backend.invoke("rekey", env=env)
    assert done.exit_code == 0, done.output
    assert "re-wrapped 3 data keys under key 'new'; 0 of 3 threads already under it" in done.output
    assert arun(_read(backend, only_new, "t2")) == ["secret 2"]

    again = backend.invoke("rekey", "--json", env=env)
    assert json.loads(again.output)["rewrapped"] == 0
    assert json.loads(again.output)["already_primary"] == 3


def test_rekey_without_keys_is_a_usage_error(sqlite: Backend) -> None:
    result = sqlite.invoke("rekey", env={"AGENT_PERSIST_KEY_x": "not base64!"})
    assert result.exit_code == 2
    assert "key ring" in result.output
    two = sqlite.invoke("rekey", env=_env(None, a=KEY_OLD, b=KEY_NEW))
    assert two.exit_code == 2
    assert "AGENT_PERSIST_PRIMARY_KEY" in two.output


def test_rekey_with_a_key_missing_from_the_ring_fails_naming_the_thread(sqlite: Backend) -> None:
    arun(_write(sqlite, _ring("old", KEY_OLD), 1))
    result = sqlite.invoke("rekey", env=_env("new", new=KEY_NEW))
    assert result.exit_code == 1
    assert "'t0'" in result.output
    assert "'old'" in result.output


async def _put_two(backend: Backend, keys: KeyRing) -> None:
    from cli_support import first

    async with _open(backend, keys) as store:
        head = await store.put(first("s", payload={"secret": "SEALED-VALUE"}))
        await store.put(head.next(payload={"secret": "SEALED-VALUE-2"}))


def test_show_diff_verify_open_sealed_data_with_keys_env(sqlite: Backend) -> None:
    arun(_put_two(sqlite, _ring("old", KEY_OLD)))
    env = _env("old", old=KEY_OLD)
    shown = sqlite.invoke("show", "s", "--keys-env", "AGENT_PERSIST_", env=env)
    assert shown.exit_code == 0, shown.output
    assert "SEALED-VALUE-2" in shown.output
    changed = sqlite.invoke("diff", "s", "--keys-env", "AGENT_PERSIST_", env=env)
    assert changed.exit_code == 0, changed.output
    assert "SEALED-VALUE-2" in changed.output
    checked = sqlite.invoke("verify", "--keys-env", "AGENT_PERSIST_", env=env)
    assert checked.exit_code == 0, checked.output


def test_show_without_keys_says_the_data_is_sealed(sqlite: Backend) -> None:
    arun(_put_two(sqlite, _ring("old", KEY_OLD)))
    result = sqlite.invoke("show", "s")
    assert result.exit_code == 1
    assert "sealed by an encrypted store" in result.output
    assert "SEALED-VALUE" not in result.output
    wrong = sqlite.invoke("show", "s", "--keys-env", "AGENT_PERSIST_", env=_env("new", new=KEY_NEW))
    assert wrong.exit_code == 1
    assert "UnknownKeyError" in wrong.output or "not in the key ring" in wrong.output
    lone = sqlite.invoke("show", "s", "--key-store", "sqlite:///elsewhere.db")
    assert lone.exit_code == 2


async def _write_clear(backend: Backend, threads: int) -> None:
    url, rest = backend.args[1], backend.args[2:]
    options: dict[str, Any] = {rest[0].removeprefix("--"): rest[1]} if rest else {}
    async with open_store(url, **options) as store:
        for index in range(threads):
            await store.append(f"t{index}", "log", [f"secret {index}", "more"])


def _raw_items(backend: Backend) -> list[bytes]:
    connection = sqlite3.connect(Path(backend.args[1].removeprefix("sqlite:///")))
    try:
        return [row[0] for row in connection.execute("SELECT data FROM agent_persist_log_items")]
    finally:
        connection.close()


def test_seal_dry_run_then_seals_and_a_rerun_finds_nothing(sqlite: Backend) -> None:
    arun(_write_clear(sqlite, 3))
    env = _env("new", new=KEY_NEW)
    dry = sqlite.invoke("seal", "--dry-run", "--json", env=env)
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output) == {
        "threads": 3,
        "threads_sealed": 3,
        "values": 6,
        "primary": "new",
        "dry_run": True,
    }
    assert all(item.startswith(b"json:") for item in _raw_items(sqlite))
    done = sqlite.invoke("seal", "--concurrency", "2", env=env)
    assert done.exit_code == 0, done.output
    assert "sealed 6 values in 3 threads of 3" in done.output
    assert all(item.startswith(b"json+aes256gcm:") for item in _raw_items(sqlite))
    assert arun(_read(sqlite, _ring("new", KEY_NEW), "t2")) == ["secret 2", "more"]
    again = sqlite.invoke("seal", "--json", env=env)
    assert json.loads(again.output)["values"] == 0
    assert sqlite.invoke("seal", "--concurrency", "0", env=env).exit_code == 2


def test_seal_and_rekey_draw_a_bar_only_on_a_terminal(sqlite: Backend) -> None:
    arun(_write_clear(sqlite, 2))
    env = _env("new", new=KEY_NEW)
    quiet = sqlite.invoke("seal", "--dry-run", env=env)
    assert quiet.exit_code == 0, quiet.output
    assert "sealing" not in quiet.stderr
    for args, label in ((("seal",), "sealing"), (("rekey", "--dry-run"), "re-wrapping")):
        drawn = sqlite.invoke(*args, env=env, terminal=True)
        assert drawn.exit_code == 0, drawn.output
        assert label in drawn.stderr
        assert label not in drawn.stdout
