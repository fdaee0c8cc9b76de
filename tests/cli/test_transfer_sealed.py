"""``export``/``import`` of encrypted stores: sealed exports, ``--decrypt``, re-sealing.

Round trips on memory, SQLite, PostgreSQL and Redis; the refusals once, on SQLite.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cli_support import Backend, arun, first, sqlite_backend

from agent_persist.stores import open_store
from agent_persist.stores.base import BaseStore

pytestmark = pytest.mark.needs_extras  # agent-persist[crypto]; imported lazily below

CANARY = "CANARY-export-91b2"
KEY = os.urandom(32)
ENV: dict[str, str | None] = {
    "AGENT_PERSIST_KEY_k": base64.b64encode(KEY).decode(),
    "AGENT_PERSIST_PRIMARY_KEY": "k",
}
KEYS = ("--keys-env", "AGENT_PERSIST_")


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.postgres]),
        pytest.param("redis", marks=[pytest.mark.redis]),
    ]
)
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "memory":
        url = f"memory://sealed-{tmp_path.name}"
        return Backend("memory", ["--url", url], lambda: open_store(url), _no_tamper)
    if request.param == "sqlite":
        return sqlite_backend(tmp_path / "store.db")
    from cli_support import _postgres, _redis  # pyright: ignore[reportPrivateUsage]

    return _postgres(request) if request.param == "postgres" else _redis(request)


async def _no_tamper(store: BaseStore, thread_id: str, checkpoint_id: str, data: bytes) -> None:
    raise NotImplementedError


def _open(backend: Backend, namespace: str = "default", *, keys: bool = True) -> BaseStore:
    from agent_persist.crypto import Encryption, KeyRing

    url, rest = backend.args[1], backend.args[2:]
    options: dict[str, Any] = {rest[0].removeprefix("--"): rest[1]} if rest else {}
    if keys:
        options["encryption"] = Encryption(KeyRing({"k": KEY}, primary="k"))
    return open_store(url, namespace=namespace, **options)


async def _use(store: BaseStore, work: Any) -> Any:
    await store.setup()
    try:
        return await work(store)
    finally:
        await store.close()


async def _write(store: BaseStore) -> None:
    head = await store.put(
        first("s", payload={"secret": CANARY}), appends={"transcript": [CANARY, {"c": CANARY}]}
    )
    await store.pop("s", "transcript")
    await store.append("s", "items", [{"content": CANARY}])
    await store.put(head.next(payload={"secret": CANARY, "n": 2}), appends={"transcript": ["x"]})
    await store.append("s", "transcript", [f"{CANARY} after the head"])


async def _write_clear(store: BaseStore) -> None:
    await store.put(first("c", payload={"clear": 1}), appends={"log": ["clear"]})


async def _contents(store: BaseStore) -> Any:
    checkpoints = await store.list_checkpoints("s")
    logs = [await store.read_log("s", "transcript", at=c) for c in checkpoints]
    return checkpoints, logs, await store.read_log("s", "items")


def test_a_sealed_export_round_trips_into_another_namespace(
    any_backend: Backend, tmp_path: Path
) -> None:
    backend = any_backend
    arun(_use(_open(backend), _write))
    arun(_use(_open(backend, keys=False), _write_clear))
    exported = backend.invoke("export", "--all", "-o", str(tmp_path / "out.json"))
    assert exported.exit_code == 0, exported.output
    text = (tmp_path / "out.json").read_text()
    assert CANARY not in text
    threads = {t["thread_id"]: t for t in json.loads(text)["threads"]}
    assert threads["s"]["sealed"] == {"namespace": "default"}
    assert "sealed" not in threads["c"]  # written before encryption: in clear
    assert "$sealed" in json.dumps(threads["s"]["checkpoints"][0]["payload"])
    added = threads["s"]["checkpoints"][0]["log_changes"]["transcript"]["add"]
    assert [item["at"] for item in added] == list(range(1, len(added) + 1))  # their seqs

    imported = backend.invoke(
        "import", str(tmp_path / "out.json"), "--namespace", "other", *KEYS, env=ENV
    )
    assert imported.exit_code == 0, imported.output
    source = arun(_use(_open(backend), _contents))
    assert arun(_use(_open(backend, "other"), _contents)) == source
    # Sealed again under the target thread's own key (bound to namespace "other").
    with pytest.raises(Exception, match="sealed by an encrypted store"):
        arun(_use(_open(backend, "other", keys=False), lambda s: s.get("s")))
    same = [
        backend.invoke("export", "s", "--namespace", ns, "--decrypt", *KEYS, env=ENV).output
        for ns in ("default", "other")
    ]
    assert same[0] == same[1]
    assert CANARY in same[0]
    assert '"sealed"' not in same[0]


def test_a_sealed_export_without_keys_is_refused_and_nothing_written(
    sqlite: Backend, tmp_path: Path
) -> None:
    arun(_use(_open(sqlite), _write))
    assert sqlite.invoke("export", "s", "-o", str(tmp_path / "s.json")).exit_code == 0
    refused = sqlite.invoke("import", str(tmp_path / "s.json"), "--namespace", "other")
    assert refused.exit_code == 1
    assert "sealed by an encrypted store" in refused.output
    assert "--keys-env" in refused.output
    listed = sqlite.invoke("ls", "--namespace", "other", "--json")
    assert json.loads(listed.output) == []


def test_an_export_of_a_shredded_thread_cannot_be_imported(sqlite: Backend, tmp_path: Path) -> None:
    arun(_use(_open(sqlite), _write))
    assert sqlite.invoke("export", "s", "-o", str(tmp_path / "s.json")).exit_code == 0
    arun(_use(_open(sqlite), lambda s: s.delete_thread("s")))  # shreds its data key
    result = sqlite.invoke(
        "import", str(tmp_path / "s.json"), "--namespace", "other", *KEYS, env=ENV
    )
    assert result.exit_code == 1
    assert "ShreddedThreadError" in result.output or "data key is gone" in result.output
    assert json.loads(sqlite.invoke("ls", "--namespace", "other", "--json").output) == []


def test_export_decrypt_options(sqlite: Backend) -> None:
    arun(_use(_open(sqlite), _write))
    opened = sqlite.invoke("export", "s", "--decrypt", *KEYS, env=ENV)
    assert opened.exit_code == 0, opened.output
    assert CANARY in opened.output
    assert sqlite.invoke("export", "s", "--decrypt").exit_code == 2
    assert sqlite.invoke("export", "s", *KEYS, env=ENV).exit_code == 2


def test_a_clear_export_imported_with_keys_is_sealed(sqlite: Backend, tmp_path: Path) -> None:
    arun(_use(_open(sqlite, keys=False), _write))
    assert sqlite.invoke("export", "s", "-o", str(tmp_path / "s.json")).exit_code == 0
    assert CANARY in (tmp_path / "s.json").read_text()
    done = sqlite.invoke("import", str(tmp_path / "s.json"), "--namespace", "enc", *KEYS, env=ENV)
    assert done.exit_code == 0, done.output
    source = arun(_use(_open(sqlite, keys=False), _contents))
    assert arun(_use(_open(sqlite, "enc"), _contents)) == source
    with pytest.raises(Exception, match="sealed by an encrypted store"):
        arun(_use(_open(sqlite, "enc", keys=False), lambda s: s.get("s")))


def test_a_sealed_export_restores_its_own_thread_with_replace(
    sqlite: Backend, tmp_path: Path
) -> None:
    arun(_use(_open(sqlite), _write))
    before = arun(_use(_open(sqlite), _contents))
    assert sqlite.invoke("export", "s", "-o", str(tmp_path / "s.json")).exit_code == 0
    arun(_use(_open(sqlite), lambda s: s.append("s", "items", ["changed since"])))
    # Everything is opened before --replace deletes (and shreds) the thread, then sealed
    # again under the new thread's new key.
    done = sqlite.invoke("import", str(tmp_path / "s.json"), "--replace", *KEYS, env=ENV)
    assert done.exit_code == 0, done.output
    assert arun(_use(_open(sqlite), _contents)) == before
    # The old key is gone with the old thread: the export cannot be opened any more.
    again = sqlite.invoke("import", str(tmp_path / "s.json"), "--namespace", "x", *KEYS, env=ENV)
    assert again.exit_code == 1


def test_import_with_a_source_url_does_not_set_up_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_persist.stores.sql import SQLStore

    source, target = sqlite_backend(tmp_path / "src.db"), sqlite_backend(tmp_path / "dst.db")
    arun(_use(_open(source), _write))
    assert source.invoke("export", "s", "-o", str(tmp_path / "s.json")).exit_code == 0
    set_up: list[str] = []
    setup = SQLStore.setup

    async def recorded(store: SQLStore) -> None:
        set_up.append(str(store._runner.engine.url.database))  # pyright: ignore[reportPrivateUsage]
        await setup(store)

    monkeypatch.setattr(SQLStore, "setup", recorded)
    result = target.invoke(
        "import", str(tmp_path / "s.json"), *KEYS, "--source-url", source.args[1], env=ENV
    )
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "dst.db") in set_up
    assert str(tmp_path / "src.db") not in set_up  # only read, never set up
    monkeypatch.undo()
    assert arun(_use(_open(target), _contents)) == arun(_use(_open(source), _contents))
