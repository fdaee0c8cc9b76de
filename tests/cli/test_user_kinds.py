"""A program's own kinds through the command: ``verify && export`` after the quickstart, and
``--plugin`` / ``AGENT_PERSIST_PLUGINS`` loading the program's ``Registry`` for migrate/verify.

The quickstart writes ``quickstart.chat`` checkpoints that no installed adapter registers;
``verify`` must check them (structure, checksums, parents, logs) and say so in a note, not
fail, so the README's backup recipe works for every core user.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cli_support import Backend, arun, invoke

from agent_persist.stores.base import BaseStore

EXAMPLE = Path(__file__).parents[2] / "examples" / "quickstart.py"
NOTE = (
    "kind 'quickstart.chat' is not registered by any plugin; checked structure and checksums only"
)

USER_KINDS = """
from agent_persist import Registry

registry = Registry()
registry.register_kind("quickstart.chat", version=3)


@registry.register("quickstart.chat", 2, 3)
def rename_tokens(payload):
    payload["budget_left"] = payload.pop("tokens_left")
    return payload


def register(target):
    target.include(registry)


def make():
    return registry
"""
"""A user's module: version 3 of the quickstart's kind renames ``tokens_left``."""


def quickstart() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quickstart_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chat(sqlite: Backend) -> None:
    """The quickstart's chat loop, run to the end against the test's SQLite store."""
    url = sqlite.args[1]
    arun(quickstart().run_chat(url, "chat"))


def test_verify_and_export_after_the_quickstart(sqlite: Backend, tmp_path: Path) -> None:
    chat(sqlite)
    verified = invoke("verify", *sqlite.args)  # the installed plugins' registry only
    assert verified.exit_code == 0, verified.output
    assert f"note: {NOTE}" in verified.stdout
    assert "verified 1 thread, 5 checkpoints: ok" in verified.stdout
    body = json.loads(invoke("verify", "--json", *sqlite.args).stdout)
    assert (body["ok"], body["unknown_kinds"]) == (True, {"quickstart.chat": 1})

    exported = invoke("export", "--all", "-o", str(tmp_path / "backup"), *sqlite.args)
    assert exported.exit_code == 0, exported.output
    (file,) = (tmp_path / "backup").glob("*.json")
    thread = json.loads(file.read_text())["threads"][0]
    assert [cp["kind"] for cp in thread["checkpoints"]] == ["quickstart.chat"] * 5

    script = Path(sys.executable).with_name("agent-persist")
    if not script.exists():
        pytest.skip("the console script is not installed in this environment")
    env = {**os.environ, "AGENT_PERSIST_URL": sqlite.args[1]}
    env.pop("AGENT_PERSIST_PLUGINS", None)
    recipe = f'"{script}" verify && "{script}" export --all -o "{tmp_path / "shell"}"'
    done = subprocess.run(  # noqa: S602 - the README's recipe, as a shell runs it
        recipe, shell=True, capture_output=True, text=True, env=env, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "shell").glob("*.json"))) == 1


def test_a_damaged_checkpoint_of_an_unregistered_kind_still_fails(
    sqlite: Backend,
) -> None:
    chat(sqlite)

    async def damage(store: BaseStore) -> str:
        checkpoints = await store.list_checkpoints("chat")
        from agent_persist.codecs import PayloadCodec

        await sqlite.tamper(store, "chat", checkpoints[1].checkpoint_id, PayloadCodec().seal({}))
        return checkpoints[1].checkpoint_id

    damaged = arun(sqlite.with_store(damage))
    result = invoke("verify", *sqlite.args)
    assert result.exit_code == 1, result.output
    assert f"thread chat checkpoint {damaged}: ChecksumMismatchError" in result.stdout
    assert f"note: {NOTE}" in result.stdout


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The user's module, importable from the current directory only (as a user runs it)."""
    folder = tmp_path / "project"
    folder.mkdir()
    name = f"user_kinds_{abs(hash(str(tmp_path)))}"
    (folder / f"{name}.py").write_text(USER_KINDS)
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the command appends the directory
    return name


def heads(sqlite: Backend) -> list[tuple[int, Any]]:
    async def read(store: BaseStore) -> list[tuple[int, Any]]:
        return [(cp.schema_version, cp.payload) for cp in await store.list_checkpoints("chat")]

    return arun(sqlite.with_store(read))


@pytest.mark.parametrize("attr", [":registry", "", ":register", ":make"])
def test_a_plugin_migrates_the_users_kind(sqlite: Backend, user_module: str, attr: str) -> None:
    chat(sqlite)
    spec = f"{user_module}{attr}"
    verified = invoke("verify", "--plugin", spec, *sqlite.args)
    assert verified.exit_code == 0, verified.output
    assert "note:" not in verified.stdout  # the kind is known: its versions were checked

    dry = invoke("migrate", "--dry-run", "--json", "--plugin", spec, *sqlite.args)
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["counts"]["would_migrate"] == 5
    assert planned["would_migrate"][0]["changes"] == ["+ $.budget_left", "- $.tokens_left"]

    migrated = invoke("migrate", "--plugin", spec, *sqlite.args)
    assert migrated.exit_code == 0, migrated.output
    assert "migrated 1, skipped 0" in migrated.stdout
    (version, payload), *older = heads(sqlite)
    assert (version, payload) == (3, {"turn": 5, "budget_left": 750})
    assert [v for v, _ in older] == [2] * 5  # history stays

    again = invoke("migrate", "--plugin", spec, *sqlite.args)
    assert "migrated 0, skipped 1 (1 current, 0 future version)" in again.stdout
    without = invoke("migrate", *sqlite.args)  # the kind unknown again: skipped, noted
    assert without.exit_code == 0, without.output
    assert "skipped 1 head (--plugin MODULE:ATTR loads its migrations)" in without.stdout


def test_plugins_from_the_environment(sqlite: Backend, user_module: str) -> None:
    chat(sqlite)
    env = {"AGENT_PERSIST_PLUGINS": f"{user_module}:make, {user_module}:registry"}
    migrated = invoke("migrate", "--json", *sqlite.args, env=env)
    assert migrated.exit_code == 0, migrated.output
    assert json.loads(migrated.stdout)["counts"]["migrated"] == 1
    assert heads(sqlite)[0][0] == 3
    verified = invoke("verify", *sqlite.args, env=env)
    assert verified.exit_code == 0, verified.output
    assert "note:" not in verified.stdout


def test_a_future_version_of_a_plugin_kind_is_a_problem(sqlite: Backend, user_module: str) -> None:
    """Once a plugin registers the kind, verify checks its versions like any other's."""

    async def future(store: BaseStore) -> None:
        head = await store.get("chat")
        await store.put(head.replace(schema_version=9).next(payload={"turn": 6}))

    chat(sqlite)
    arun(sqlite.with_store(future))
    result = invoke("verify", "--plugin", user_module, *sqlite.args)
    assert result.exit_code == 1, result.output
    assert "FutureVersionError" in result.stdout
