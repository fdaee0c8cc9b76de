"""The commands end to end: inspection, migration failures and resume, verify, export/import,
prune, hostile ids and bad URLs. SQLite unless the test takes ``backend`` (all three stores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_support import KIND, Backend, arun, first, invoke, make_registry

from agent_persist.codecs import PayloadCodec
from agent_persist.envelope import Envelope, Status
from agent_persist.errors import ThreadNotFoundError
from agent_persist.maintenance import migrate_store
from agent_persist.stores.base import BaseStore
from agent_persist.stores.memory import MemoryStore
from agent_persist.testing.conformance import HOSTILE_IDS

# -- inspection --------------------------------------------------------------------------------


async def three_steps(store: BaseStore, thread_id: str = "essay") -> list[Envelope]:
    one = await store.put(first(thread_id, metadata={"user": 42}), appends={"t": ["hi"]})
    two = await store.put(one.next(payload={"n": 1, "notes": ["a"]}), appends={"t": ["yo"]})
    three = await store.put(
        two.next(payload={"n": 2}, status=Status.DONE, stop_reason="finished"),
        appends={"t": ["bye"]},
    )
    return [one, two, three]


def test_ls_show_history_diff(sqlite: Backend) -> None:
    one, two, three = arun(sqlite.with_store(three_steps))
    arun(sqlite.with_store(lambda s: s.put(first("other", metadata={"user": 7}))))

    listed = sqlite.invoke("ls")
    assert listed.exit_code == 0, listed.output
    assert "essay" in listed.output
    assert "done" in listed.output
    assert KIND in listed.output
    rows = json.loads(sqlite.invoke("ls", "--json", "--where", "user=42").output)
    assert [(r["thread_id"], r["step"], r["schema_version"], r["status"]) for r in rows] == [
        ("essay", 2, 1, "done")
    ]
    assert len(json.loads(sqlite.invoke("ls", "--json", "--limit", "1").output)) == 1

    shown = sqlite.invoke("show", "essay", "--logs")
    assert shown.exit_code == 0, shown.output
    assert three.checkpoint_id in shown.output
    assert "finished" in shown.output
    assert '"n": 2' in shown.output
    assert '[2] "bye"' in shown.output
    document = json.loads(
        sqlite.invoke("show", "essay", "--checkpoint", two.checkpoint_id, "--json", "--logs").output
    )
    assert document["payload"] == {"n": 1, "notes": ["a"]}
    assert document["log_items"] == {"t": ["hi", "yo"]}
    assert document["checksum"] == two.checksum

    past = json.loads(sqlite.invoke("history", "essay", "--json").output)
    assert [row["checkpoint_id"] for row in past] == [
        three.checkpoint_id,
        two.checkpoint_id,
        one.checkpoint_id,
    ]
    assert [row["step"] for row in past] == [2, 1, 0]
    assert one.checkpoint_id in sqlite.invoke("history", "essay").output

    changed = sqlite.invoke("diff", "essay", one.checkpoint_id, two.checkpoint_id)
    assert changed.exit_code == 0, changed.output
    assert "~ step: 0 -> 1" in changed.output
    assert "~ payload.n: 0 -> 1" in changed.output  # the old and the new value
    assert '+ payload.notes: ["a"]' in changed.output
    body = json.loads(
        sqlite.invoke("diff", "essay", two.checkpoint_id, three.checkpoint_id, "--json").output
    )
    assert body["payload"] == [
        {"path": "$.n", "kind": "changed", "old": 1, "new": 2},
        {"path": "$.notes", "kind": "removed", "old": ["a"], "new": None},
    ]
    status = {"path": "status", "kind": "changed", "old": "running", "new": "done"}
    assert status in body["header"]
    same = sqlite.invoke("diff", "essay", one.checkpoint_id, one.checkpoint_id)
    assert "no differences" in same.output

    missing = sqlite.invoke("show", "nope")
    assert missing.exit_code == 1
    assert "nope" in missing.output
    assert "Traceback" not in missing.output
    assert sqlite.invoke("show", "essay", "--checkpoint", "nope").exit_code == 1


# -- migrate: failures, resume, future versions, conflicts ---------------------------------------


async def threads_at(store: BaseStore, count: int, **first_fields: Any) -> None:
    for index in range(count):
        head = await store.put(first(f"t{index}", payload={"n": 0, "bad": index % 4 == 0}))
        await store.put(head.next(payload={"n": 1, "bad": index % 4 == 0}), **first_fields)


def test_migrate_failures_stay_untouched_and_a_rerun_finishes(
    sqlite: Backend, tmp_path: Path
) -> None:
    arun(sqlite.with_store(lambda s: threads_at(s, 20)))
    before = {t.thread_id: t.head_id for t in arun(sqlite.with_store(lambda s: s.list_threads()))}
    broken = make_registry(fail_on=lambda payload: payload["bad"])
    report_path = tmp_path / "report.json"

    result = sqlite.invoke("migrate", "--report", str(report_path), registry=broken)
    assert result.exit_code == 1, result.output
    assert "migrated 15, skipped 0 (0 current, 0 future version), failed 5" in result.output
    report = json.loads(report_path.read_text())
    assert report["counts"]["failed"] == 5
    assert report["counts"]["migrated"] == 15
    failed = {entry["thread_id"]: entry for entry in report["failed"]}
    assert set(failed) == {"t0", "t4", "t8", "t12", "t16"}
    assert "this payload cannot be migrated" in failed["t4"]["reason"]
    assert failed["t4"]["checkpoint_id"] == before["t4"]

    threads = {t.thread_id: t for t in arun(sqlite.with_store(lambda s: s.list_threads()))}
    for thread_id, info in threads.items():
        if thread_id in failed:  # untouched: same head, same version, no new checkpoint
            assert (info.head_id, info.schema_version, info.checkpoint_count) == (
                before[thread_id],
                1,
                2,
            )
        else:
            assert (info.schema_version, info.checkpoint_count) == (2, 3)

    fixed = sqlite.invoke("migrate", "--json", registry=make_registry())
    assert fixed.exit_code == 0, fixed.output
    counts = json.loads(fixed.output)["counts"]
    assert (counts["migrated"], counts["skipped_current"], counts["failed"]) == (5, 15, 0)


def test_fail_fast_stops_at_the_first_failure(sqlite: Backend) -> None:
    arun(sqlite.with_store(lambda s: threads_at(s, 8)))
    result = sqlite.invoke(
        "migrate",
        "--fail-fast",
        "--concurrency",
        "1",
        "--json",
        registry=make_registry(fail_on=lambda payload: True),
    )
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["completed"] is False
    assert body["counts"]["failed"] == 1
    assert body["counts"]["migrated"] == 0


def test_future_versions_are_skipped_and_reported_never_rewritten(
    sqlite: Backend, tmp_path: Path
) -> None:
    async def load(store: BaseStore) -> Envelope:
        await store.put(first("old"))
        await store.put(first("current", version=2, payload={"count": 0}))
        return await store.put(first("future", version=3, payload={"whatever": True}))

    future = arun(sqlite.with_store(load))
    report_path = tmp_path / "r.json"
    dry = sqlite.invoke("migrate", "--dry-run", registry=make_registry())
    assert dry.exit_code == 0, dry.output
    assert "1 of 3 checkpoints in 1 thread would migrate, 1 current, 1 future" in dry.output

    result = sqlite.invoke("migrate", "--report", str(report_path), registry=make_registry())
    assert result.exit_code == 0, result.output
    assert "migrated 1, skipped 2 (1 current, 1 future version), failed 0" in result.output
    report = json.loads(report_path.read_text())
    skipped = {entry["thread_id"]: entry["reason"] for entry in report["skipped"]}
    assert skipped == {"current": "current", "future": "future version"}
    head = arun(sqlite.with_store(lambda s: s.get("future")))
    assert head == future


def test_unknown_kinds_are_skipped_with_a_note(sqlite: Backend) -> None:
    head = arun(sqlite.with_store(lambda s: s.put(first("x"))))
    from agent_persist.migrations import Registry

    result = sqlite.invoke("migrate", registry=Registry())
    assert result.exit_code == 0, result.output
    assert f"note: kind '{KIND}' is not registered by any plugin; skipped 1 head" in result.stdout
    assert "migrated 0, skipped 1 (0 current, 0 future version, 1 unknown kind), failed 0" in (
        result.stdout
    )
    body = json.loads(sqlite.invoke("migrate", "--json", registry=Registry()).stdout)
    assert body["counts"]["skipped_unknown_kind"] == 1
    assert body["skipped"][0]["reason"] == "unknown kind"
    dry = sqlite.invoke("migrate", "--dry-run", "--json", registry=Registry())
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert (planned["counts"]["unknown_kind"], planned["counts"]["errors"]) == (1, 0)
    assert planned["notes"] == [
        f"kind '{KIND}' is not registered by any plugin; skipped 1 checkpoint "
        "(--plugin MODULE:ATTR loads its migrations)"
    ]
    assert arun(sqlite.with_store(lambda s: s.get("x"))) == head  # nothing written


class _RacingStore:
    """A store where another worker writes each thread right after the migration reads it."""

    def __init__(self, inner: BaseStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get(self, thread_id: str, checkpoint_id: str | None = None) -> Envelope:
        head = await self.inner.get(thread_id, checkpoint_id)
        await self.inner.put(head.next(payload=head.payload))
        return head


async def test_a_concurrent_writer_makes_the_migration_fail_not_lose_its_update() -> None:
    store = MemoryStore()
    await store.put(first("t"))
    report = await migrate_store(_RacingStore(store), make_registry())  # type: ignore[arg-type]
    assert [entry.outcome for entry in report.entries] == ["failed"]
    assert "ConflictError" in (report.entries[0].reason or "")
    checkpoints = await store.list_checkpoints("t")
    assert [cp.schema_version for cp in checkpoints] == [1, 1]  # the writer's update is there


# -- verify ------------------------------------------------------------------------------------


def test_verify_finds_a_corrupted_checkpoint(backend: Backend) -> None:
    async def load(store: BaseStore) -> tuple[list[Envelope], BaseStore]:
        await three_steps(store, "fine")
        return await three_steps(store, "damaged"), store

    registry = make_registry()
    arun(backend.with_store(lambda s: s.list_threads()))  # an empty store
    clean = backend.invoke("verify", registry=registry)
    assert clean.exit_code == 0
    assert "0 threads" in clean.output
    damaged, _ = arun(backend.with_store(load))
    ok = backend.invoke("verify", registry=registry)
    assert ok.exit_code == 0, ok.output
    assert "verified 2 threads, 6 checkpoints: ok" in ok.output

    async def corrupt(store: BaseStore) -> None:
        sealed = PayloadCodec().seal({"n": 999})
        await backend.tamper(store, "damaged", damaged[1].checkpoint_id, sealed)

    arun(backend.with_store(corrupt))
    result = backend.invoke("verify", registry=registry)
    assert result.exit_code == 1, result.output
    assert f"thread damaged checkpoint {damaged[1].checkpoint_id}" in result.output
    assert "ChecksumMismatchError" in result.output
    assert "verified 2 threads, 5 checkpoints: 1 problem" in result.output  # read past it
    body = json.loads(backend.invoke("verify", "--json", registry=registry).output)
    assert [(p["thread_id"], p["checkpoint_id"]) for p in body["problems"]] == [
        ("damaged", damaged[1].checkpoint_id)
    ]


def test_verify_reports_future_and_unknown_schema_versions(sqlite: Backend) -> None:
    async def load(store: BaseStore) -> None:
        await store.put(first("future", version=9))
        await store.put(
            Envelope.create(
                kind="who.knows",
                schema_version=1,
                thread_id="stranger",
                payload={},
                producer=first("x").producer,
            )
        )

    arun(sqlite.with_store(load))
    result = sqlite.invoke("verify", registry=make_registry())
    assert result.exit_code == 1
    assert "thread future" in result.output
    assert "FutureVersionError" in result.output
    assert "thread stranger" not in result.output  # an unknown kind is a note, not a problem
    assert (
        "note: kind 'who.knows' is not registered by any plugin; checked structure and "
        "checksums only" in result.output
    )
    assert "verified 2 threads, 2 checkpoints: 1 problem" in result.output


# -- export / import ---------------------------------------------------------------------------


async def rich_threads(store: BaseStore, ids: tuple[str, ...] = ("a", "b")) -> None:
    """Threads whose logs were popped and cleared between checkpoints, and grew after them."""
    for thread_id in ids:
        one = await store.put(first(thread_id), appends={"t": [1, 2, 3], "ctx": [{"m": "x"}]})
        await store.pop(thread_id, "t")
        two = await store.put(one.next(payload={"n": 1}), appends={"t": [4]})
        await store.clear_log(thread_id, "ctx")
        three = await store.put(two.next(payload={"n": 2}), appends={"ctx": ["new"]})
        await store.append(thread_id, "t", ["after the head"])
        assert three.step == 2


def test_export_import_round_trip_between_stores(backend: Backend, tmp_path: Path) -> None:
    from cli_support import sqlite_backend

    arun(backend.with_store(rich_threads))
    first_export = backend.invoke("export", "--all")
    assert first_export.exit_code == 0, first_export.output
    exported = json.loads(first_export.stdout)
    record = {t["thread_id"]: t for t in exported["threads"]}["a"]
    assert [cp["log_changes"] for cp in record["checkpoints"]] == [
        {"t": {"keep": 0, "add": [1, 2, 3]}, "ctx": {"keep": 0, "add": [{"m": "x"}]}},
        {"t": {"keep": 2, "add": [4]}, "ctx": {"keep": 1, "add": []}},  # 3 was popped
        {"t": {"keep": 3, "add": []}, "ctx": {"keep": 0, "add": ["new"]}},  # ctx cleared
    ]
    assert record["log_changes_after_head"] == {
        "t": {"keep": 3, "add": ["after the head"]},
        "ctx": {"keep": 1, "add": []},
    }

    assert backend.invoke("export", "--all", "-o", str(tmp_path / "out")).exit_code == 0
    assert len(list((tmp_path / "out").glob("*.json"))) == 2

    target = sqlite_backend(tmp_path / "target.db")
    imported = target.invoke("import", str(tmp_path / "out"))
    assert imported.exit_code == 0, imported.output

    async def views(store: BaseStore) -> list[list[Any]]:
        return [await store.read_log("a", "t", at=cp) for cp in await store.list_checkpoints("a")]

    assert arun(target.with_store(views)) == [[1, 2, 4], [1, 2, 4], [1, 2, 3]]
    assert arun(target.with_store(lambda s: s.read_log("a", "t"))) == [1, 2, 4, "after the head"]
    assert "imported 2 threads, 6 checkpoints" in imported.output
    assert target.invoke("export", "--all").stdout == first_export.stdout

    again = target.invoke("import", str(tmp_path / "out"))
    assert again.exit_code == 1
    assert "2 threads exist (a, b); nothing imported" in again.stderr
    assert target.invoke("import", "--replace", str(tmp_path / "out")).exit_code == 0
    assert target.invoke("export", "--all").stdout == first_export.stdout

    # and back, from stdin, into a fresh namespace of the first store
    back = backend.invoke("import", "--namespace", "copy", "-", input=first_export.stdout)
    assert back.exit_code == 0, back.output
    assert backend.invoke("export", "--all", "--namespace", "copy").stdout == first_export.stdout


def test_a_pruned_thread_imports_with_its_oldest_checkpoint_as_root(
    sqlite: Backend, tmp_path: Path
) -> None:
    async def load(store: BaseStore) -> None:
        await three_steps(store)
        await store.prune("essay", keep_last=2)

    arun(sqlite.with_store(load))
    exported = sqlite.invoke("export", "essay", "-o", str(tmp_path / "e.json"))
    assert exported.exit_code == 0, exported.output
    from cli_support import sqlite_backend

    target = sqlite_backend(tmp_path / "t.db")
    assert target.invoke("import", str(tmp_path / "e.json")).exit_code == 0
    second = target.invoke("export", "essay").stdout
    body = json.loads(second)["threads"][0]["checkpoints"]
    assert body[0]["parent_id"] is None
    assert len(body) == 2
    assert body[1]["parent_id"] == body[0]["checkpoint_id"]


def test_a_damaged_export_replaces_nothing(sqlite: Backend, tmp_path: Path) -> None:
    arun(sqlite.with_store(three_steps))
    original = sqlite.invoke("export", "essay").stdout
    document = json.loads(original)
    document["threads"][0]["checkpoints"][2]["log_changes"] = {"t": {"keep": 99, "add": []}}
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps(document))
    result = sqlite.invoke("import", "--replace", str(damaged))
    assert result.exit_code == 1
    assert "keep 99 out of range" in result.output
    assert sqlite.invoke("export", "essay").stdout == original  # nothing deleted or written


def test_unwritable_report_is_one_line(sqlite: Backend, tmp_path: Path) -> None:
    arun(sqlite.with_store(lambda s: threads_at(s, 1)))
    result = sqlite.invoke(
        "migrate", "--report", str(tmp_path / "no" / "dir.json"), registry=make_registry()
    )
    assert result.exit_code == 1
    assert "No such file or directory" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_import_refuses_files_that_are_not_exports(sqlite: Backend, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    result = sqlite.invoke("import", str(bad))
    assert result.exit_code == 1
    assert "not an agent-persist export" in result.output
    assert sqlite.invoke("import", str(tmp_path / "missing.json")).exit_code == 2


# -- prune -------------------------------------------------------------------------------------


def test_prune(sqlite: Backend) -> None:
    async def load(store: BaseStore) -> None:
        for thread_id in ("x", "y"):
            head = await store.put(first(thread_id))
            for step in range(1, 6):
                head = await store.put(head.next(payload={"n": step}))

    arun(sqlite.with_store(load))
    assert sqlite.invoke("prune", "x", "--older-than", "1h", "--yes").output.endswith(
        "pruned 0 checkpoints in 1 thread\n"
    )
    kept = sqlite.invoke("prune", "x", "--keep-last", "2", "--json", "--yes")
    assert json.loads(kept.output) == {"removed": {"x": 4}, "total": 4}
    everything = sqlite.invoke("prune", "--all", "--older-than", "0s", "-y")
    assert everything.exit_code == 0
    assert "pruned 6 checkpoints in 2 threads" in everything.output  # x: 1, y: 5
    counts = {
        t.thread_id: t.checkpoint_count for t in arun(sqlite.with_store(lambda s: s.list_threads()))
    }
    assert counts == {"x": 1, "y": 1}
    assert sqlite.invoke("prune", "x").exit_code == 2  # neither --older-than nor --keep-last
    assert sqlite.invoke("prune", "--keep-last", "1").exit_code == 2  # no thread, no --all
    bad = sqlite.invoke("prune", "x", "--older-than", "30x")
    assert bad.exit_code == 2
    assert "not a duration" in bad.output
    assert sqlite.invoke("prune", "ghost", "--keep-last", "1", "--yes").exit_code == 1


# -- hostile ids -------------------------------------------------------------------------------


def test_hostile_thread_ids(backend: Backend, tmp_path: Path) -> None:
    ids = tuple(dict.fromkeys(HOSTILE_IDS))

    async def load(store: BaseStore) -> None:
        for thread_id in ids:
            head = await store.put(
                first(thread_id, payload={"n": 0, "id": thread_id}),
                appends={thread_id: [thread_id]},
            )
            await store.put(head.next(payload={"n": 1, "id": thread_id}))

    arun(backend.with_store(load))
    listed = json.loads(backend.invoke("ls", "--json").output)
    assert sorted(row["thread_id"] for row in listed) == sorted(ids)
    assert backend.invoke("ls").exit_code == 0
    for thread_id in ids:
        shown = json.loads(backend.invoke("show", thread_id, "--json", "--logs").output)
        assert shown["payload"]["id"] == thread_id
        assert shown["log_items"] == {thread_id: [thread_id]}
        assert len(json.loads(backend.invoke("history", thread_id, "--json").output)) == 2
    migrated = backend.invoke("migrate", "--json", registry=make_registry())
    assert json.loads(migrated.output)["counts"]["migrated"] == len(ids)
    assert backend.invoke("verify", registry=make_registry()).exit_code == 0
    out = tmp_path / "out"
    out.mkdir()
    assert backend.invoke("export", "--all", "-o", str(out)).exit_code == 0
    assert len(list(out.glob("*.json"))) == len(ids)
    from cli_support import sqlite_backend

    target = sqlite_backend(tmp_path / "copy.db")
    assert target.invoke("import", str(out)).exit_code == 0
    assert target.invoke("export", "--all").stdout == backend.invoke("export", "--all").stdout
    pruned = json.loads(
        backend.invoke("prune", "--all", "--keep-last", "1", "--json", "--yes").output
    )
    assert pruned["removed"] == {thread_id: 2 for thread_id in ids}


# -- URLs and errors ---------------------------------------------------------------------------


def test_no_url_is_a_usage_error() -> None:
    result = invoke("ls", env={"AGENT_PERSIST_URL": None})
    assert result.exit_code == 2
    assert "AGENT_PERSIST_URL" in result.output


def test_url_from_the_environment(sqlite: Backend) -> None:
    arun(sqlite.with_store(lambda s: s.put(first("env"))))
    result = invoke("ls", "--json", env={"AGENT_PERSIST_URL": sqlite.args[1]})
    assert [row["thread_id"] for row in json.loads(result.output)] == ["env"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nosuch://host/db", "no store for URL scheme 'nosuch'"),
        ("sqlite:///definitely/not/here.db", "no SQLite database"),
        pytest.param(
            "postgresql://nobody:secret@127.0.0.1:1/db",
            "127.0.0.1",
            marks=pytest.mark.needs_extras,
        ),
        pytest.param("redis://127.0.0.1:1/0", "127.0.0.1", marks=pytest.mark.needs_extras),
    ],
)
def test_bad_urls_exit_3_with_one_line(url: str, message: str) -> None:
    result = invoke("ls", "--url", url)
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "secret" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_schema_on_sqlite_is_a_usage_error(sqlite: Backend) -> None:
    arun(sqlite.with_store(lambda s: s.list_threads()))
    result = sqlite.invoke("ls", "--schema", "x")
    assert result.exit_code == 2
    assert "PostgreSQL option" in result.output


def test_help_documents_the_exit_codes() -> None:
    for command in ("ls", "migrate", "verify", "export", "import", "prune"):
        text = invoke(command, "--help").output
        assert "Exit codes:" in text
        assert "3    store unavailable" in text


async def test_thread_not_found_is_typed() -> None:
    with pytest.raises(ThreadNotFoundError):
        await MemoryStore().get("x")


def test_the_console_script(sqlite: Backend, tmp_path: Path) -> None:
    """The installed ``agent-persist`` script, as a shell would run it (no tty: no bar)."""
    arun(sqlite.with_store(lambda s: threads_at(s, 3)))
    script = Path(sys.executable).with_name("agent-persist")
    if not script.exists():
        pytest.skip("the console script is not installed in this environment")
    env = {**os.environ, "AGENT_PERSIST_URL": sqlite.args[1]}
    done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [str(script), "show", "ghost"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("agent-persist: ")
    assert "ghost" in done.stderr
    assert len(done.stderr.splitlines()) == 1  # one line, no traceback
    module = subprocess.run(
        [sys.executable, "-m", "agent_persist.cli", "ls", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert module.returncode == 0, module.stderr
    assert len(json.loads(module.stdout)) == 3


def test_verify_finds_an_unreadable_log_item(sqlite: Backend, tmp_path: Path) -> None:
    import sqlite3

    arun(sqlite.with_store(three_steps))
    raw = sqlite3.connect(tmp_path / "store.db")
    with raw:
        raw.execute("UPDATE agent_persist_log_items SET data = ? WHERE seq = 2", (b"xyz",))
    raw.close()
    result = sqlite.invoke("verify", "--json", registry=make_registry())
    assert result.exit_code == 1, result.output
    problems = json.loads(result.output)["problems"]
    assert problems
    assert {(p["thread_id"], p["log"]) for p in problems} == {("essay", "t")}
    assert all("CodecError" in p["problem"] for p in problems)
