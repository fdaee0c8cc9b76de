"""Bad input through the command: never a traceback, one line on stderr, the documented code.

Each row is one kind of bad input: store URLs, damaged import files, hostile ids, deep
nesting written straight into the SQLite file, plugins that do not load. For each the exit
code is checked, stderr is exactly one line (no ``Traceback``, no exception escaping click),
and where the input could have written something, a full export before and after is equal.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import KIND, Backend, arun, first, invoke, make_registry
from click.testing import Result

from agent_persist.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_STORE, EXIT_USAGE
from agent_persist.errors import CorruptCheckpointError, StoreUnavailableError
from agent_persist.stores._records import PLAIN_FRAME
from agent_persist.stores.base import BaseStore


def assert_one_line(result: Result, code: int) -> str:
    """The result exited with ``code``, printing one line on stderr and no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agent-persist: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


# -- store URLs ---------------------------------------------------------------------------------

URL_ROWS: list[Any] = [
    pytest.param("nosuch://host/db", "ls", EXIT_STORE, id="unknown-scheme"),
    pytest.param("sqlite:///{tmp}/missing.db", "ls", EXIT_STORE, id="missing-sqlite-file"),
    pytest.param("sqlite:///{tmp}/no/such/dir/x.db", "import", EXIT_STORE, id="missing-sqlite-dir"),
    pytest.param("postgresql://[::1/db", "ls", EXIT_STORE, id="malformed-host"),
    pytest.param(
        "postgresql://postgres:secret@127.0.0.1:99999/test",
        "ls",
        EXIT_STORE,
        id="postgres-port-out-of-range",
    ),
    pytest.param("redis://127.0.0.1:70000/0", "ls", EXIT_STORE, id="redis-port-out-of-range"),
    pytest.param(
        "postgresql://nobody:secret@127.0.0.1:1/db",
        "ls",
        EXIT_STORE,
        marks=pytest.mark.needs_extras,
        id="postgres-refused-port",
    ),
    pytest.param(
        "postgresql://nobody:se/cr:et@127.0.0.1:1/db",
        "ls",
        EXIT_STORE,
        marks=pytest.mark.needs_extras,
        id="password-with-slash-reaches-the-server",
    ),
    pytest.param(
        "redis://127.0.0.1:1/0",
        "ls",
        EXIT_STORE,
        marks=pytest.mark.needs_extras,
        id="redis-refused-port",
    ),
    pytest.param(
        "{postgres}/agent_persist_no_such_db",
        "ls",
        EXIT_STORE,
        marks=[pytest.mark.postgres, pytest.mark.needs_extras],
        id="postgres-missing-db",
    ),
    pytest.param(
        "{postgres_role}",
        "ls",
        EXIT_STORE,
        marks=[pytest.mark.postgres, pytest.mark.needs_extras],
        id="postgres-missing-role",
    ),
    pytest.param(
        "{redis}/99999",
        "ls",
        EXIT_STORE,
        marks=[pytest.mark.redis, pytest.mark.needs_extras],
        id="redis-db-out-of-range",
    ),
    pytest.param(
        "{redis}/abc",
        "ls",
        EXIT_STORE,
        marks=[pytest.mark.redis, pytest.mark.needs_extras],
        id="redis-bad-db-path",
    ),
]


def _url(template: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = template.replace("{tmp}", str(tmp_path))
    if "{postgres" in url:
        base: str = request.getfixturevalue("postgres_url")
        server = base.rsplit("/", 1)[0]
        role = server.replace("postgres@", "agent_persist_no_such_role@", 1)
        url = url.replace("{postgres_role}", f"{role}/test").replace("{postgres}", server)
    if "{redis}" in url:
        redis: str = request.getfixturevalue("redis_url")
        url = url.replace("{redis}", redis.rsplit("/", 1)[0])
    return url


def _run_url(url: str, command: str, tmp_path: Path) -> Result:
    if command == "import":
        export = tmp_path / "empty.json"
        export.write_text('{"format": "agent-persist-export", "version": 1, "threads": []}')
        return invoke("import", "--url", url, str(export))
    return invoke(command, "--url", url)


@pytest.mark.parametrize(("template", "command", "code"), URL_ROWS)
def test_bad_store_url_is_one_line(
    template: str,
    command: str,
    code: int,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    result = _run_url(_url(template, request, tmp_path), command, tmp_path)
    line = assert_one_line(result, code)
    assert "secret" not in line
    assert "cr:et" not in line


def test_a_missing_sqlite_dir_creates_nothing(tmp_path: Path) -> None:
    result = _run_url(f"sqlite:///{tmp_path}/no/such/dir/x.db", "import", tmp_path)
    assert "unavailable" in assert_one_line(result, EXIT_STORE)
    assert not (tmp_path / "no").exists()


def test_an_option_the_store_refuses_is_a_one_line_usage_error(sqlite: Backend) -> None:
    arun(sqlite.with_store(lambda s: s.list_threads()))
    line = assert_one_line(sqlite.invoke("ls", "--schema", "x"), EXIT_USAGE)
    assert "PostgreSQL option" in line


# -- import files --------------------------------------------------------------------------------


async def two_threads(store: BaseStore) -> None:
    """``essay`` and ``fresh``, each with a log that was popped from and grew after the head."""
    for thread_id in ("essay", "fresh"):
        one = await store.put(first(thread_id, metadata={"user": 1}), appends={"t": [1, 2]})
        await store.pop(thread_id, "t")
        two = await store.put(one.next(payload={"n": 1}), appends={"t": [{"m": "x"}]})
        await store.put(two.next(payload={"n": 2}), appends={"t": ["z"]})
        await store.append(thread_id, "t", ["after"])


@pytest.fixture
def exported(sqlite: Backend) -> dict[str, Any]:
    """A valid export of ``essay`` and ``fresh``; the store keeps ``essay`` only.

    Importing it with ``--replace`` replaces ``essay`` and creates ``fresh``, so a damage in
    ``fresh`` (the second thread) catches an import that writes before checking.
    """
    arun(sqlite.with_store(two_threads))
    document = json.loads(sqlite.invoke("export", "--all").stdout)
    arun(sqlite.with_store(lambda s: s.delete_thread("fresh")))
    return document


Damage = Callable[[dict[str, Any]], Any]
"""Damages a valid export document in place (returns ``None``) or returns what to write
instead (a value to dump as JSON, or raw bytes)."""


def cp(document: dict[str, Any], index: int = 0, thread: int = 1) -> dict[str, Any]:
    checkpoint: dict[str, Any] = document["threads"][thread]["checkpoints"][index]
    return checkpoint


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    target[key] = value


def _drop(target: dict[str, Any], key: str) -> None:
    del target[key]


def _literal(document: dict[str, Any], literal: str) -> bytes:
    """The document with checkpoint 1's payload ``n`` spelled as ``literal``."""
    cp(document, 1)["payload"]["n"] = "@@LITERAL@@"
    return json.dumps(document).replace('"@@LITERAL@@"', literal).encode()


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def _bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2).encode()


IMPORT_DAMAGE: dict[str, tuple[Damage, str]] = {
    "non-utf8": (lambda d: _bytes(d).replace(b'"after"', b'"aft\xffer"'), "not UTF-8"),
    "utf16-bom": (lambda d: b"\xff\xfe" + _bytes(d), "not UTF-8"),
    "not-json": (lambda d: b"hello, world", "not valid JSON"),
    "truncated": (lambda d: _bytes(d)[: len(_bytes(d)) * 2 // 3], "not valid JSON"),
    "empty": (lambda d: b"", "empty file"),
    "trailing-garbage": (lambda d: _bytes(d) + b"}", "not valid JSON"),
    "json-lines": (
        lambda d: b"\n".join(json.dumps(t).encode() for t in d["threads"]),
        "not valid JSON",
    ),
    "a-list": (lambda d: [d], "not an agent-persist export"),
    "wrong-format": (lambda d: {**d, "format": "something-else"}, "not an agent-persist export"),
    "future-format": (lambda d: {**d, "version": 2}, "export format version 2"),
    "threads-not-a-list": (lambda d: {**d, "threads": {"a": 1}}, "'threads' is not a list"),
    "thread-not-an-object": (lambda d: {**d, "threads": [d["threads"][0], 7]}, "not a thread"),
    "thread-id-not-a-string": (
        lambda d: _set(d["threads"][1], "thread_id", 5),
        "no thread_id string",
    ),
    "no-checkpoints": (lambda d: _set(d["threads"][1], "checkpoints", []), "non-empty"),
    "checkpoint-not-an-object": (
        lambda d: _set(d["threads"][1], "checkpoints", [cp(d), "x"]),
        "not a checkpoint record",
    ),
    "missing-kind": (lambda d: _drop(cp(d, 1), "kind"), "kind: Field required"),
    "unknown-field": (lambda d: _set(cp(d, 1), "colour", "red"), "colour: Extra inputs"),
    "naive-created-at": (
        lambda d: _set(cp(d, 2), "created_at", "2024-01-01T00:00:00"),
        "timezone-aware",
    ),
    "bad-status": (lambda d: _set(cp(d, 1), "status", "sleeping"), "status:"),
    "producer-not-an-object": (lambda d: _set(cp(d, 1), "producer", 3), "producer:"),
    "checkpoint-of-another-thread": (
        lambda d: _set(cp(d, 1), "thread_id", "essay"),
        "belongs to thread 'essay'",
    ),
    "duplicate-checkpoint-in-thread": (
        lambda d: _set(cp(d, 1), "checkpoint_id", cp(d, 0)["checkpoint_id"]),
        "used twice in the thread",
    ),
    "duplicate-checkpoint-across-threads": (
        lambda d: (
            _set(cp(d, 0), "checkpoint_id", cp(d, 0, thread=0)["checkpoint_id"])
            or _set(cp(d, 1), "parent_id", cp(d, 0, thread=0)["checkpoint_id"])
        ),
        "is also used in",
    ),
    "parents-do-not-chain": (
        lambda d: _set(cp(d, 2), "parent_id", cp(d, 0)["checkpoint_id"]),
        "is not the checkpoint before it",
    ),
    "parent-missing": (lambda d: _set(cp(d, 1), "parent_id", None), "is not the checkpoint"),
    "thread-repeated": (
        lambda d: {**d, "threads": [d["threads"][1], copy.deepcopy(d["threads"][1])]},
        "thread 'fresh' is also in",
    ),
    "checksum-mismatch": (
        lambda d: _set(cp(d, 1), "payload", {"n": 99}),
        "does not match the payload",
    ),
    "no-checksum": (lambda d: _drop(cp(d, 1), "checksum"), "no checksum"),
    "huge-step": (lambda d: _set(cp(d, 1), "step", 10**30), "step 1000000000000000000000"),
    "huge-schema-version": (
        lambda d: _set(cp(d, 1), "schema_version", 2**31),
        "out of range 0..2147483647",
    ),
    "negative-step": (lambda d: _set(cp(d, 1), "step", -1), "step -1 is out of range"),
    "future-envelope-format": (
        lambda d: _set(cp(d, 1), "format_version", 99),
        "envelope format 99",
    ),
    "format-version-text": (
        lambda d: _set(cp(d, 1), "format_version", "1"),
        "format_version '1' is not a version",
    ),
    "float-overflow": (lambda d: _literal(d, "1e999"), "out of range of a float"),
    "huge-integer-literal": (lambda d: _literal(d, "7" * 5000), "an integer of 5000 digits"),
    "nan-literal": (lambda d: _literal(d, "NaN"), "NaN is not a JSON number"),
    "infinity-in-a-log-item": (
        lambda d: _set(cp(d, 1)["log_changes"]["t"], "add", [float("-inf")]),
        "-Infinity is not a JSON number",
    ),
    "deep-payload": (
        lambda d: _set(cp(d, 1), "payload", nested(300)),
        "payload: nested more than 256 levels",
    ),
    "deep-log-item": (
        lambda d: _set(cp(d, 2)["log_changes"]["t"], "add", [nested(300)]),
        "log 't' item 2: nested more than 256 levels",
    ),
    "deep-metadata": (
        lambda d: _set(cp(d, 0), "metadata", {"x": nested(300)}),
        "metadata: nested more than 256 levels",
    ),
    "deeper-than-the-parser": (lambda d: _literal(d, "[" * 100_000), "nested too deeply"),
    "log-changes-a-list": (
        lambda d: _set(cp(d, 1), "log_changes", [1]),
        "log changes are not an object (a JSON array)",
    ),
    "log-change-not-an-object": (
        lambda d: _set(cp(d, 1)["log_changes"], "t", 3),
        "not a log change",
    ),
    "keep-out-of-range": (
        lambda d: _set(cp(d, 2)["log_changes"]["t"], "keep", 99),
        "keep 99 out of range",
    ),
    "keep-a-boolean": (
        lambda d: _set(cp(d, 1)["log_changes"]["t"], "keep", True),
        "keep True out of range",
    ),
    "add-not-a-list": (
        lambda d: _set(cp(d, 1)["log_changes"]["t"], "add", "abc"),
        "not a log change",
    ),
    "after-head-a-list": (
        lambda d: _set(d["threads"][1], "log_changes_after_head", ["x"]),
        "log_changes_after_head: log changes are not an object",
    ),
}


@pytest.mark.parametrize("damage", sorted(IMPORT_DAMAGE))
def test_a_damaged_import_file_is_refused_whole(
    damage: str, sqlite: Backend, exported: dict[str, Any], tmp_path: Path
) -> None:
    make, message = IMPORT_DAMAGE[damage]
    document = copy.deepcopy(exported)
    replaced = make(document)
    damaged = document if replaced is None else replaced
    path = tmp_path / "damaged.json"
    path.write_bytes(damaged if isinstance(damaged, bytes) else json.dumps(damaged).encode())
    before = sqlite.invoke("export", "--all").stdout
    assert "fresh" not in json.dumps([t["thread_id"] for t in json.loads(before)["threads"]])

    result = sqlite.invoke("import", "--replace", str(path))
    line = assert_one_line(result, EXIT_FAILED)
    assert message in line
    assert str(path) in line
    assert sqlite.invoke("export", "--all").stdout == before


def test_the_undamaged_document_imports(
    sqlite: Backend, exported: dict[str, Any], tmp_path: Path
) -> None:
    """The control for the table above: the same file, undamaged, is accepted."""
    path = tmp_path / "fine.json"
    path.write_text(json.dumps(exported))
    result = sqlite.invoke("import", "--replace", str(path))
    assert result.exit_code == 0, result.output
    assert json.loads(sqlite.invoke("export", "--all").stdout) == exported


def test_a_damaged_file_among_good_ones_writes_nothing(
    sqlite: Backend, exported: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "backup"
    folder.mkdir()
    good = {**exported, "threads": [exported["threads"][1]]}
    (folder / "a-good.json").write_text(json.dumps(good))
    (folder / "b-bad.json").write_bytes(b'{"format": "agent-persist-export", "vers')
    before = sqlite.invoke("export", "--all").stdout
    line = assert_one_line(sqlite.invoke("import", str(folder)), EXIT_FAILED)
    assert "b-bad.json" in line
    assert sqlite.invoke("export", "--all").stdout == before
    (folder / "b-bad.json").write_text(json.dumps(good))  # the same thread in two files
    line = assert_one_line(sqlite.invoke("import", str(folder)), EXIT_FAILED)
    assert "thread 'fresh' is also in" in line
    assert sqlite.invoke("export", "--all").stdout == before


def test_an_existing_thread_refuses_the_whole_import(
    sqlite: Backend, exported: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "both.json"
    path.write_text(json.dumps(exported))
    before = sqlite.invoke("export", "--all").stdout
    result = sqlite.invoke("import", str(path))
    line = assert_one_line(result, EXIT_FAILED)
    assert "1 thread exists (essay); nothing imported (pass --replace" in line
    assert sqlite.invoke("export", "--all").stdout == before  # `fresh` was not written


def test_stdin_that_is_not_utf8(sqlite: Backend) -> None:
    arun(sqlite.with_store(lambda s: s.list_threads()))
    result = sqlite.invoke("import", "-", input=b"\x80\x81")
    assert "stdin: not UTF-8 text (byte 0x80 at offset 0)" in assert_one_line(result, EXIT_FAILED)


def test_a_nul_in_an_imported_id_is_refused_before_writing(
    backend: Backend, tmp_path: Path
) -> None:
    """No store can hold a NUL in a thread id: the file is refused whole, nothing written."""
    arun(backend.with_store(two_threads))
    document = json.loads(backend.invoke("export", "--all").stdout)
    nul = copy.deepcopy(document["threads"][1])
    nul["thread_id"] = "zz\x00nul"
    for checkpoint in nul["checkpoints"]:
        checkpoint["thread_id"] = "zz\x00nul"
    document["threads"].append(nul)
    path = tmp_path / "nul.json"
    path.write_text(json.dumps(document))
    before = backend.invoke("export", "--all").stdout

    line = assert_one_line(backend.invoke("import", "--replace", str(path)), EXIT_FAILED)
    assert "NUL" in line
    assert backend.invoke("export", "--all").stdout == before


def test_a_write_the_store_fails_is_undone(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store fails the third thread's write after ``essay`` was replaced (deleted,
    rewritten) and ``fresh`` written: the import deletes what it wrote, writes ``essay``
    back, and the store ends as it began."""
    arun(backend.with_store(two_threads))
    document = json.loads(backend.invoke("export", "--all").stdout)
    arun(backend.with_store(lambda s: s.delete_thread("fresh")))
    third = copy.deepcopy(document["threads"][1])
    third["thread_id"] = "third"
    for checkpoint in third["checkpoints"]:
        checkpoint["thread_id"] = "third"
        checkpoint["checkpoint_id"] += "-copy"
        if checkpoint["parent_id"] is not None:
            checkpoint["parent_id"] += "-copy"
    document["threads"].append(third)
    path = tmp_path / "three.json"
    path.write_text(json.dumps(document))
    before = backend.invoke("export", "--all").stdout

    put = BaseStore.put

    async def failing_put(self: BaseStore, envelope: Any, **options: Any) -> Any:
        if envelope.thread_id == "third":  # the connection drops on this thread's write
            raise StoreUnavailableError("injected: the connection was lost")
        return await put(self, envelope, **options)

    monkeypatch.setattr(BaseStore, "put", failing_put)
    result = backend.invoke("import", "--replace", str(path))
    monkeypatch.undo()
    line = assert_one_line(result, EXIT_STORE)
    assert "import failed, nothing of it was kept" in line
    assert backend.invoke("export", "--all").stdout == before


# -- ids with quotes, wildcards and NUL ----------------------------------------------------------

ODD_IDS = ['it\'s "quoted"', "*", "%", "a_%", "[a-z]", "a\x00b", "\x00", "line\nbreak"]


@pytest.mark.parametrize("thread_id", ODD_IDS)
def test_odd_ids_that_do_not_exist_are_not_found(backend: Backend, thread_id: str) -> None:
    arun(backend.with_store(lambda s: s.put(first("a-real-one"))))
    for args in (
        ("show", thread_id),
        ("history", thread_id),
        ("diff", thread_id, "a", "b"),
        ("export", thread_id),
        ("prune", thread_id, "--keep-last", "1", "--yes"),
        ("show", "a-real-one", "--checkpoint", thread_id),
    ):
        line = assert_one_line(backend.invoke(*args), EXIT_FAILED)
        assert repr(thread_id) in line or thread_id in line


# -- damaged rows written straight into the SQLite file -----------------------------------------


def _raw(path: Path, sql: str, *args: Any) -> None:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(sql, args)
    connection.close()


ESSAY_ITEM = (
    "UPDATE agent_persist_log_items SET data = ? WHERE seq = ? AND log_pk = (SELECT logs.pk "
    "FROM agent_persist_logs AS logs JOIN agent_persist_threads AS threads "
    "ON logs.thread_pk = threads.pk WHERE threads.thread_id = 'essay')"
)
"""Overwrite the stored bytes of ``essay``'s log item ``seq`` (pops and clears use numbers too)."""


def write_payload(path: Path, checkpoint_id: str, canonical: bytes) -> None:
    """Store ``canonical`` as a checkpoint's payload, with a matching checksum in its header."""
    connection = sqlite3.connect(path)
    with connection:
        (header,) = connection.execute(
            "SELECT header FROM agent_persist_checkpoints WHERE checkpoint_id = ?",
            (checkpoint_id,),
        ).fetchone()
        fields = json.loads(header)
        fields["checksum"] = "sha256:" + hashlib.sha256(canonical).hexdigest()
        connection.execute(
            "UPDATE agent_persist_checkpoints SET header = ?, payload = ? WHERE checkpoint_id = ?",
            (json.dumps(fields), PLAIN_FRAME + canonical, checkpoint_id),
        )
    connection.close()


DEEP = b"[" * 50_000 + b"]" * 50_000


@pytest.fixture
def stored(sqlite: Backend) -> list[Any]:
    """``essay`` and ``fresh`` in the SQLite store; returns ``essay``'s checkpoints, oldest
    first."""
    arun(sqlite.with_store(two_threads))

    async def ids(store: BaseStore) -> list[Any]:
        return list(reversed(await store.list_checkpoints("essay")))

    return arun(sqlite.with_store(ids))


def test_a_deeply_nested_payload(sqlite: Backend, stored: list[Any], tmp_path: Path) -> None:
    write_payload(tmp_path / "store.db", stored[1].checkpoint_id, DEEP)
    registry = make_registry()
    verified = sqlite.invoke("verify", registry=registry)
    assert verified.exit_code == EXIT_FAILED, verified.output
    assert verified.stderr == ""
    assert f"thread essay checkpoint {stored[1].checkpoint_id}: CorruptCheckpointError" in (
        verified.stdout
    )
    assert "nests deeper than the limit of 200" in verified.stdout
    assert "verified 2 threads, 5 checkpoints: 1 problem" in verified.stdout  # read past it
    for args in (
        ("show", "essay", "--checkpoint", stored[1].checkpoint_id),
        ("history", "essay"),
        ("export", "--all"),
    ):
        line = assert_one_line(sqlite.invoke(*args, registry=registry), EXIT_FAILED)
        assert "nests deeper than the limit of 200" in line
    dry = sqlite.invoke("migrate", "--dry-run", registry=registry)  # reported, and read past
    assert dry.exit_code == EXIT_FAILED, dry.output
    assert "1 would fail" in dry.stdout
    assert "would fail essay: CorruptCheckpointError" in dry.stderr
    assert "Traceback" not in dry.output
    migrated = sqlite.invoke("migrate", "--json", registry=registry)
    assert migrated.exit_code == 0, migrated.output  # both heads read: only they are migrated
    assert json.loads(migrated.stdout)["counts"]["migrated"] == 2


def test_a_deeply_nested_head_fails_its_thread_in_migrate(
    sqlite: Backend, stored: list[Any], tmp_path: Path
) -> None:
    write_payload(tmp_path / "store.db", stored[2].checkpoint_id, DEEP)
    result = sqlite.invoke("migrate", "--json", registry=make_registry())
    assert result.exit_code == EXIT_FAILED
    body = json.loads(result.stdout)
    assert [e["thread_id"] for e in body["failed"]] == ["essay"]
    assert body["failed"][0]["reason"].startswith("CorruptCheckpointError")
    assert body["counts"]["migrated"] == 1


def test_a_deeply_nested_log_item(sqlite: Backend, stored: list[Any], tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    _raw(path, ESSAY_ITEM, PLAIN_FRAME + DEEP, 1)
    verified = sqlite.invoke("verify", "--json", registry=make_registry())
    assert verified.exit_code == EXIT_FAILED, verified.output
    problems = json.loads(verified.stdout)["problems"]
    assert [(p["thread_id"], p["log"], p["position"]) for p in problems] == [("essay", "t", 0)]
    assert problems[0]["checkpoint_id"] == stored[0].checkpoint_id  # the first to see it
    assert problems[0]["problem"].startswith("CorruptCheckpointError")
    line = assert_one_line(sqlite.invoke("show", "essay", "--logs"), EXIT_FAILED)
    assert "nests deeper than the limit of 200" in line


def test_damaged_headers_and_items_are_named(
    sqlite: Backend, stored: list[Any], tmp_path: Path
) -> None:
    path = tmp_path / "store.db"
    _raw(
        path,
        "UPDATE agent_persist_checkpoints SET header = ? WHERE checkpoint_id = ?",
        "{not json",
        stored[0].checkpoint_id,
    )
    _raw(path, ESSAY_ITEM, b"garbage", 4)  # {"m": "x"}, item 1 of every view
    result = sqlite.invoke("verify", registry=make_registry())
    assert result.exit_code == EXIT_FAILED, result.output
    assert f"thread essay checkpoint {stored[0].checkpoint_id}: CorruptCheckpointError" in (
        result.stdout
    )
    assert "thread essay checkpoint" in result.stdout
    assert "log t item 1: CodecError" in result.stdout
    line = assert_one_line(sqlite.invoke("history", "essay"), EXIT_FAILED)
    assert "not valid JSON" in line


def test_debug_shows_the_traceback(sqlite: Backend, stored: list[Any], tmp_path: Path) -> None:
    write_payload(tmp_path / "store.db", stored[2].checkpoint_id, DEEP)
    result = sqlite.invoke("show", "essay", env={"AGENT_PERSIST_DEBUG": "1"})
    assert isinstance(result.exception, CorruptCheckpointError)


# -- plugins -----------------------------------------------------------------------------------


PLUGIN_ROWS: dict[str, tuple[str, str, str]] = {
    # name: (module source, spec, message)
    "missing-module": ("", "agent_persist_no_such_module:registry", "no module named"),
    "syntax-error": ("def broken(:\n", "{m}:registry", "SyntaxError"),
    "raises-on-import": ("raise RuntimeError('boom')\n", "{m}", "RuntimeError: boom"),
    "imports-something-missing": ("import agent_persist_not_there\n", "{m}", "not_there"),
    "missing-attr": ("x = 1\n", "{m}:nope", "has no attribute 'nope'"),
    "no-default-attr": ("x = 1\n", "{m}", "has no attribute 'registry' or 'register'"),
    "wrong-type": ("registry = 42\n", "{m}", "int is not a Registry"),
    "returns-something-else": ("def make():\n    return 3\n", "{m}:make", "returned int"),
    "raises-when-called": (
        "def register(registry):\n    raise ValueError('no')\n",
        "{m}",
        "it raised ValueError: no",
    ),
    "takes-two-arguments": (
        "def register(a, b):\n    pass\n",
        "{m}",
        "a function must take a registry, or nothing and return one",
    ),
    "malformed-spec": ("", "not a module:x", "expected MODULE[:ATTR]"),
    "empty-module-name": ("", ":registry", "expected MODULE[:ATTR]"),
}


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on ``sys.path`` (restored afterwards) for the tests' plugin modules."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.setattr(sys, "path", [str(folder), *sys.path])
    return folder


def write_module(folder: Path, source: str) -> str:
    """A module with a name no other test uses; returns its name."""
    name = f"user_kinds_{hashlib.sha256(str(folder).encode() + source.encode()).hexdigest()[:12]}"
    (folder / f"{name}.py").write_text(source)
    return name


@pytest.mark.parametrize("row", sorted(PLUGIN_ROWS))
@pytest.mark.parametrize("command", ["verify", "migrate"])
def test_a_plugin_that_does_not_load(
    row: str, command: str, sqlite: Backend, plugin_dir: Path
) -> None:
    source, spec, message = PLUGIN_ROWS[row]
    module = write_module(plugin_dir, source) if source else "unused"
    arun(sqlite.with_store(lambda s: s.put(first("x"))))
    before = sqlite.invoke("export", "--all").stdout
    result = sqlite.invoke(command, "--plugin", spec.format(m=module))
    line = assert_one_line(result, EXIT_USAGE)
    assert message in line
    assert sqlite.invoke("export", "--all").stdout == before


def test_a_plugin_from_the_environment_that_does_not_load(sqlite: Backend) -> None:
    arun(sqlite.with_store(lambda s: s.put(first("x"))))
    env = {"AGENT_PERSIST_PLUGINS": " , agent_persist_no_such_module:registry"}
    line = assert_one_line(sqlite.invoke("verify", env=env), EXIT_USAGE)
    assert "plugin 'agent_persist_no_such_module:registry': no module named" in line


def test_an_interrupt_exits_130(sqlite: Backend, plugin_dir: Path) -> None:
    module = write_module(plugin_dir, "def register(registry):\n    raise KeyboardInterrupt\n")
    arun(sqlite.with_store(lambda s: s.put(first("x"))))
    line = assert_one_line(sqlite.invoke("migrate", "--plugin", module), EXIT_INTERRUPTED)
    assert line == "agent-persist: interrupted"


def test_a_kind_no_plugin_registers_in_verify_is_a_note(sqlite: Backend) -> None:
    arun(sqlite.with_store(lambda s: s.put(first("x"))))
    from agent_persist.migrations import Registry

    result = sqlite.invoke("verify", "--json", registry=Registry())
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is True
    assert body["unknown_kinds"] == {KIND: 1}
    assert body["notes"][0].startswith(
        f"kind '{KIND}' is not registered by any plugin; checked structure and checksums only"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ls", "--no-such-option"), "No such option"),
        (("ls", "--where", "k=[1]"), "compare with a text, number, boolean or null"),
        (("ls", "--limit", str(10**20)), "is not in the range 0<=x<=2147483647"),
        (("history", "x", "--limit", "-1"), "is not in the range"),
        (("prune", "--all", "--older-than", "99999999999d"), "longer than a timedelta holds"),
        (("prune", "--all", "--keep-last", str(2**40)), "is not in the range"),
        (("migrate", "--concurrency", "100000"), "is not in the range 1<=x<=1000"),
        (("export",), "name one or more THREADs, or pass --all"),
    ],
)
def test_usage_errors_of_click_stay_exit_2(
    sqlite: Backend, args: tuple[str, ...], message: str
) -> None:
    """Click's own usage errors keep click's usage hint (exit 2, never a traceback)."""
    arun(sqlite.with_store(lambda s: s.list_threads()))
    result = sqlite.invoke(*args)
    assert result.exit_code == EXIT_USAGE, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert message in result.stderr


def test_an_option_of_another_store_is_a_one_line_usage_error(sqlite: Backend) -> None:
    arun(sqlite.with_store(lambda s: s.list_threads()))
    line = assert_one_line(sqlite.invoke("ls", "--prefix", "x"), EXIT_USAGE)
    assert "--prefix does not apply to this store" in line


def test_the_real_script_prints_one_line(
    sqlite: Backend, stored: list[Any], tmp_path: Path
) -> None:
    """As a shell runs it: a damaged payload and a damaged import file, one line each."""
    write_payload(tmp_path / "store.db", stored[2].checkpoint_id, DEEP)
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff")
    env = {**os.environ, "AGENT_PERSIST_URL": sqlite.args[1]}
    env.pop("AGENT_PERSIST_DEBUG", None)
    for args in (["show", "essay"], ["import", str(bad)]):
        done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "agent_persist.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        assert done.returncode == EXIT_FAILED, done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
