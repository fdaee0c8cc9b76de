"""The command as a person at a terminal meets it, and as a script reads it.

Plain output (no ANSI codes, no box drawing) when not on a terminal or with NO_COLOR; rich
tables and colour on a terminal; progress bars on stderr only on a terminal; help without
click's markers or RST literals; diff with values and id prefixes; prune's dry run and
confirmation; plurals, one timestamp format, and URLs with the password hidden.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import Backend, arun, first, invoke, make_registry, sqlite_backend
from click.testing import Result

from agent_persist.cli import cli
from agent_persist.cli._urls import hide_password, url_password, without_password
from agent_persist.envelope import Envelope, Status
from agent_persist.stores.base import BaseStore

ANSI = "\x1b["
BOX = ("─", "│", "━", "┃", "┌", "╭")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PRECISE_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
COMMANDS = sorted(cli.commands)  # type: ignore[attr-defined]


async def chat(store: BaseStore, thread_id: str = "essay") -> list[Envelope]:
    one = await store.put(first(thread_id, payload={"n": 0, "messages": ["hi"]}))
    two = await store.put(one.next(payload={"n": 1, "messages": ["hi", "x" * 200]}))
    three = await store.put(
        two.next(payload={"n": 2, "messages": ["hi"]}, status=Status.DONE, stop_reason="end")
    )
    return [one, two, three]


def plain(result: Result) -> None:
    assert result.exit_code == 0, result.output
    assert ANSI not in result.output
    assert not any(char in result.output for char in BOX), result.output


# -- help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_has_no_click_markers_or_rst_literals(command: str | None) -> None:
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0, result.output
    assert "\b" not in result.output
    assert "``" not in result.output
    assert "Exit codes:" in result.output


def test_the_top_level_help_lists_every_exit_code_on_its_own_line() -> None:
    text = invoke("--help").output
    for line in ("0    success", "2    usage error", "130  interrupted"):
        assert line in text


# -- plain and terminal output -------------------------------------------------------------------


def test_plain_output_when_not_a_terminal(sqlite: Backend) -> None:
    arun(sqlite.with_store(chat))
    for args in (("ls",), ("history", "essay"), ("show", "essay"), ("diff", "essay")):
        plain(sqlite.invoke(*args))
    listed = sqlite.invoke("ls").output.splitlines()
    headings = ["THREAD", "STATUS", "STEP", "CHECKPOINTS", "KIND", "SCHEMA", "UPDATED"]
    assert listed[0].split() == headings
    assert listed[1].split()[:4] == ["essay", "done", "2", "3"]  # aligned columns, grep-able


def test_a_terminal_gets_a_table_and_colour(sqlite: Backend) -> None:
    arun(sqlite.with_store(chat))
    result = sqlite.invoke("ls", terminal=True)
    assert result.exit_code == 0, result.output
    assert ANSI in result.output
    assert any(char in result.output for char in BOX)
    assert "essay" in result.output
    assert ANSI in sqlite.invoke("diff", "essay", terminal=True).output
    forced = sqlite.invoke("ls", env={"FORCE_COLOR": "1"})  # the common convention
    assert ANSI in forced.output


def test_no_color_turns_colour_and_tables_off_even_on_a_terminal(sqlite: Backend) -> None:
    arun(sqlite.with_store(chat))
    for args in (("ls",), ("history", "essay"), ("show", "essay"), ("diff", "essay")):
        plain(sqlite.invoke(*args, terminal=True, env={"NO_COLOR": "1"}))
    assert sqlite.invoke("ls", terminal=True, env={"NO_COLOR": "1"}).output == (
        sqlite.invoke("ls").output
    )


def test_a_dumb_terminal_gets_plain_text_and_no_bar(sqlite: Backend) -> None:
    arun(sqlite.with_store(chat))
    plain(sqlite.invoke("ls", terminal=True, env={"TERM": "dumb"}))
    verified = sqlite.invoke("verify", terminal=True, env={"TERM": "dumb"})
    assert "verifying" not in verified.stderr


def test_markup_in_ids_is_printed_as_is_on_a_terminal(sqlite: Backend) -> None:
    arun(sqlite.with_store(lambda s: s.put(first("[bold]x[/]"))))
    assert "[bold]x[/]" in sqlite.invoke("ls", terminal=True).output


def test_errors_are_red_on_a_terminal_and_plain_elsewhere(sqlite: Backend) -> None:
    arun(sqlite.with_store(chat))
    assert ANSI in sqlite.invoke("show", "ghost", terminal=True).stderr
    assert ANSI not in sqlite.invoke("show", "ghost").stderr
    assert ANSI not in sqlite.invoke("show", "ghost", terminal=True, env={"NO_COLOR": "1"}).stderr


# -- progress bars -------------------------------------------------------------------------------


def test_long_commands_draw_a_bar_on_stderr_only_on_a_terminal(
    sqlite: Backend, tmp_path: Path
) -> None:
    arun(sqlite.with_store(chat))
    exported = tmp_path / "out"
    target = sqlite_backend(tmp_path / "target.db")
    registry = make_registry()
    runs = [
        (sqlite, ("verify",), "verifying"),
        (sqlite, ("export", "--all", "-o", str(exported)), "exporting"),
        (target, ("import", str(exported)), "importing"),
        (sqlite, ("migrate", "--dry-run"), "reading"),
        (sqlite, ("migrate",), "migrating"),
        (sqlite, ("prune", "--all", "--keep-last", "1", "--yes"), "pruning"),
    ]
    for backend, args, label in runs:
        quiet = backend.invoke(*args, registry=registry)
        assert quiet.exit_code == 0, quiet.output
        assert label not in quiet.stderr
        assert ANSI not in quiet.stderr
        if args[0] == "import":  # import again over what the quiet run wrote
            args = ("import", "--replace", str(exported))
        drawn = backend.invoke(*args, registry=registry, terminal=True)
        assert drawn.exit_code == 0, drawn.output
        assert label in drawn.stderr, (args, drawn.stderr)
        assert label not in drawn.stdout


# -- diff ----------------------------------------------------------------------------------------


def test_diff_shows_values_and_takes_unique_prefixes(sqlite: Backend) -> None:
    one, two, three = arun(sqlite.with_store(chat))
    result = sqlite.invoke("diff", "essay", one.checkpoint_id[:-2], two.checkpoint_id[:-2])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"a: {one.checkpoint_id} (step 0)" in lines
    assert f"b: {two.checkpoint_id} (step 1)" in lines
    assert "~ payload.n: 0 -> 1" in lines
    added = next(line for line in lines if line.startswith("+ payload.messages[1]: "))
    assert added.endswith("...")  # cut for people
    assert len(added) < 120

    body = json.loads(sqlite.invoke("diff", "essay", "--json").output)  # head vs its parent
    assert (body["a"], body["b"]) == (two.checkpoint_id, three.checkpoint_id)
    assert {"path": "$.messages[1]", "kind": "removed", "old": "x" * 200, "new": None} in (
        body["payload"]
    )
    assert {"path": "$.n", "kind": "changed", "old": 1, "new": 2} in body["payload"]
    assert {"path": "stop_reason", "kind": "changed", "old": None, "new": "end"} in body["header"]
    assert all(set(change) == {"path", "kind", "old", "new"} for change in body["header"])

    to_head = json.loads(sqlite.invoke("diff", "essay", one.checkpoint_id, "--json").output)
    assert (to_head["a"], to_head["b"]) == (one.checkpoint_id, three.checkpoint_id)


def test_diff_refuses_an_ambiguous_or_unknown_prefix_in_one_line(sqlite: Backend) -> None:
    one, two, three = arun(sqlite.with_store(chat))
    shared = one.checkpoint_id[:4]
    assert two.checkpoint_id.startswith(shared)
    assert three.checkpoint_id.startswith(shared)
    ambiguous = sqlite.invoke("diff", "essay", shared, three.checkpoint_id)
    assert ambiguous.exit_code == 1
    (line,) = ambiguous.stderr.splitlines()
    assert "ambiguous" in line
    assert one.checkpoint_id in line
    assert two.checkpoint_id in line
    unknown = sqlite.invoke("diff", "essay", "zzz", three.checkpoint_id)
    assert unknown.exit_code == 1
    (line,) = unknown.stderr.splitlines()
    assert "no checkpoint of thread essay has an id beginning 'zzz'" in line
    shown = json.loads(
        sqlite.invoke("show", "essay", "--checkpoint", two.checkpoint_id[:-2], "--json").output
    )
    assert shown["checkpoint_id"] == two.checkpoint_id


def test_diff_of_a_single_checkpoint_says_what_to_do(sqlite: Backend) -> None:
    arun(sqlite.with_store(lambda s: s.put(first("lone"))))
    result = sqlite.invoke("diff", "lone")
    assert result.exit_code == 1
    assert "has no parent to compare with; name checkpoint A" in result.stderr


# -- prune ---------------------------------------------------------------------------------------


async def six_steps(store: BaseStore) -> None:
    for thread_id in ("x", "y"):
        head = await store.put(first(thread_id))
        for step in range(1, 6):
            head = await store.put(head.next(payload={"n": step}))


def counts(backend: Backend) -> dict[str, int]:
    threads = arun(backend.with_store(lambda s: s.list_threads()))
    return {t.thread_id: t.checkpoint_count for t in threads}


def test_prune_dry_run_lists_and_deletes_nothing(sqlite: Backend) -> None:
    arun(sqlite.with_store(six_steps))
    listing = arun(sqlite.with_store(lambda s: s.list_checkpoints("x")))
    result = sqlite.invoke("prune", "x", "--keep-last", "2", "--dry-run")
    assert result.exit_code == 0, result.output
    for checkpoint in listing[2:]:
        assert checkpoint.checkpoint_id in result.output
    for checkpoint in listing[:2]:
        assert checkpoint.checkpoint_id not in result.output
    assert "dry run: would prune 4 checkpoints in 1 thread (nothing deleted)" in result.output
    body = json.loads(
        sqlite.invoke("prune", "--all", "--keep-last", "5", "--dry-run", "--json").output
    )
    assert body["total"] == 2
    assert [cp["checkpoint_id"] for cp in body["would_remove"]["x"]] == [listing[5].checkpoint_id]
    assert counts(sqlite) == {"x": 6, "y": 6}
    real = json.loads(sqlite.invoke("prune", "--all", "--keep-last", "5", "--yes", "--json").output)
    assert real["total"] == body["total"]  # the dry run's rule is the store's


def test_prune_needs_yes_when_nobody_can_answer(sqlite: Backend) -> None:
    arun(sqlite.with_store(six_steps))
    result = sqlite.invoke("prune", "--all", "--keep-last", "1")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("agent-persist: ")
    assert "--yes" in line
    assert counts(sqlite) == {"x": 6, "y": 6}
    assert "--yes" in invoke("prune", "--help").output
    assert "not a terminal" in invoke("prune", "--help").output


def test_prune_asks_on_a_terminal(sqlite: Backend) -> None:
    arun(sqlite.with_store(six_steps))
    declined = sqlite.invoke("prune", "x", "--keep-last", "1", terminal=True, input="n\n")
    assert declined.exit_code == 1
    assert "Delete 5 checkpoints in 1 thread?" in declined.output
    assert "nothing deleted" in declined.stderr
    assert counts(sqlite) == {"x": 6, "y": 6}
    accepted = sqlite.invoke("prune", "x", "--keep-last", "1", terminal=True, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert counts(sqlite) == {"x": 1, "y": 6}


def test_prune_still_prunes_a_thread_it_cannot_list(sqlite: Backend) -> None:
    arun(sqlite.with_store(six_steps))
    oldest = arun(sqlite.with_store(lambda s: s.list_checkpoints("x")))[-1]

    async def damage(store: BaseStore) -> None:
        await sqlite.tamper(store, "x", oldest.checkpoint_id, b"not a sealed payload")

    arun(sqlite.with_store(damage))
    dry = sqlite.invoke("prune", "x", "--keep-last", "1", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "cannot list thread x" in dry.stderr
    assert "and old ones of 1 unreadable thread (nothing deleted)" in dry.stdout
    pruned = sqlite.invoke("prune", "x", "--keep-last", "1", "--yes")
    assert pruned.exit_code == 0, pruned.output
    assert "x: 5 checkpoints removed" in pruned.stdout
    assert counts(sqlite) == {"x": 1, "y": 6}


# -- plurals, times, URLs ------------------------------------------------------------------------


def test_one_of_a_thing_is_singular(sqlite: Backend, tmp_path: Path) -> None:
    arun(sqlite.with_store(lambda s: s.put(first("solo"))))
    verified = sqlite.invoke("verify", registry=make_registry())
    assert "verified 1 thread, 1 checkpoint: ok" in verified.output
    exported = sqlite.invoke("export", "--all", "-o", str(tmp_path / "e"))
    assert "exported 1 thread, 1 checkpoint" in exported.stderr
    imported = sqlite_backend(tmp_path / "t.db").invoke("import", str(tmp_path / "e"))
    assert "imported 1 thread, 1 checkpoint" in imported.output
    dry = sqlite.invoke("migrate", "--dry-run", registry=make_registry())
    assert "1 of 1 checkpoint in 1 thread would migrate" in dry.output
    assert "threads" not in dry.output.replace("per thread", "")


def test_every_time_is_iso_utc_to_the_second(sqlite: Backend) -> None:
    """People read seconds; ``--json`` is data and keeps the microseconds, same format."""
    arun(sqlite.with_store(chat))
    row = json.loads(sqlite.invoke("ls", "--json").output)[0]
    assert PRECISE_STAMP.match(row["updated_at"])
    assert PRECISE_STAMP.match(
        json.loads(sqlite.invoke("history", "essay", "--json").output)[0]["created_at"]
    )
    shown = json.loads(sqlite.invoke("show", "essay", "--json").output)["created_at"]
    assert PRECISE_STAMP.match(shown)
    assert STAMP.match(sqlite.invoke("ls").output.splitlines()[1].split()[-1])
    assert STAMP.match(sqlite.invoke("history", "essay").output.splitlines()[1].split()[-1])
    shown = dict(
        line.split(":", 1) for line in sqlite.invoke("show", "essay").output.splitlines()[:15]
    )
    assert STAMP.match(shown["created_at"].strip())


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:secret@127.0.0.1:1/x", "postgresql://u:***@127.0.0.1:1/x"),
        ("postgresql+asyncpg://u:secret@h/db?ssl=1", "postgresql+asyncpg://u:***@h/db?ssl=1"),
        ("redis://:secret@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
        ("redis://u:se/cr@t@h:6379/0", "redis://u:***@h:6379/0"),  # as SQLAlchemy reads it
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:///a:b@c.db", "sqlite:///a:b@c.db"),
    ],
)
def test_the_url_masker(url: str, masked: str) -> None:
    assert hide_password(url) == masked


def test_a_percent_encoded_password_is_masked_both_ways() -> None:
    url = "postgresql://u:s%40cret@h/db"
    assert url_password(url) == "s%40cret"
    assert without_password("auth failed for s@cret and s%40cret", url) == (
        "auth failed for *** and ***"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:secret@127.0.0.1:1/x",
        "redis://:secret@127.0.0.1:1/0",
        "postgresql://u:secret@127.0.0.1:99999/x",  # refused before connecting
        "nosuch://u:secret@h/x",
    ],
)
def test_errors_name_the_url_without_its_password(url: str) -> None:
    result = invoke("ls", "--url", url)
    assert result.exit_code in (2, 3), result.output
    (line,) = result.stderr.splitlines()
    assert "secret" not in result.output
    assert "secret" not in result.stderr
    assert hide_password(url) in line
    where = hide_password(url).partition("://")[2]
    assert line.count(where) == 1, "the URL typed, once (not also the driver's spelling)"


def test_a_reader_that_goes_away_is_not_an_error(tmp_path: Path) -> None:
    """``agent-persist ls | head -1``: exit 0, nothing on stderr, no traceback."""
    database = tmp_path / "many.db"

    async def fill(store: BaseStore) -> None:
        for n in range(800):
            await store.put(first(f"thread-{n:04d}-" + "x" * 200))

    arun(sqlite_backend(database).with_store(fill))
    with subprocess.Popen(  # noqa: S603  # our own command, fixed arguments
        [sys.executable, "-m", "agent_persist.cli", "ls", "--url", f"sqlite:///{database}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as listing:
        assert listing.stdout is not None
        assert listing.stderr is not None
        assert listing.stdout.readline().startswith(b"THREAD")
        listing.stdout.close()  # as `head -1` does: >64 KiB are still to be written
        errors = listing.stderr.read()
        assert listing.wait(timeout=60) == 0
    assert errors == b""
