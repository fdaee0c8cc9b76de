"""``agent-persist quarantine`` on SQLite, PostgreSQL and Redis, with items damaged in place.

Each test writes a log, damages items by writing raw bytes where the store keeps them, and
checks what the command moves, what it keeps, what it records, and that every refusal is one
line with exit code 1 that leaves the store exactly as it was.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_support import Backend, arun, first

from agent_persist.errors import CorruptCheckpointError
from agent_persist.stores.base import BaseStore
from damage_support import GARBAGE, TRUNCATED, damage_log_item

ITEMS = [f"i{n}" for n in range(5)]
QUARANTINE = "quarantine/items"


def damage(backend: Backend, position: int, data: bytes) -> None:
    """Damage item ``position`` of the log ``items`` of thread ``t``."""
    args = dict(zip(backend.args[::2], backend.args[1::2], strict=True))
    location = {"schema": args.get("--schema"), "prefix": args.get("--prefix")}
    arun(damage_log_item(args["--url"], "t", "items", position, data, **location))


def write(backend: Backend, items: list[Any]) -> None:
    async def work(store: BaseStore) -> None:
        await store.append("t", "items", items)

    arun(backend.with_store(work))


def state(backend: Backend) -> tuple[Any, int, list[Any]]:
    """The log as read (or the error class that reading raised), its length, the quarantine."""

    async def work(store: BaseStore) -> tuple[Any, int, list[Any]]:
        try:
            items: Any = await store.read_log("t", "items")
        except CorruptCheckpointError as exc:
            items = type(exc).__name__
        length = await store.log_length("t", "items")
        return items, length, await store.read_log("t", QUARANTINE)

    return arun(backend.with_store(work))


def refused(backend: Backend, *args: str, expect: str) -> None:
    """The command exits 1 with one line naming ``expect``, and changes nothing."""
    before = state(backend)
    result = backend.invoke("quarantine", "t", "items", *args)
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert expect in result.stderr
    assert "Traceback" not in result.output
    assert state(backend) == before


def test_moves_a_damaged_item_aside_and_keeps_the_rest(backend: Backend) -> None:
    write(backend, ITEMS)
    damage(backend, 2, TRUNCATED)
    broken = state(backend)
    assert broken[1] == 5
    assert broken[0] != ITEMS

    dry = backend.invoke("quarantine", "t", "items", "2", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would quarantine position 2 of log items of thread t" in dry.stdout
    assert "4 items would be kept" in dry.stdout
    assert state(backend) == broken

    done = backend.invoke("quarantine", "t", "items", "2")
    assert done.exit_code == 0, done.output
    assert "quarantined position 2" in done.stdout
    assert "saved: text" in done.stdout
    items, length, records = state(backend)
    assert (items, length) == (["i0", "i1", "i3", "i4"], 4)
    assert len(records) == 1
    record = records[0]
    assert "kept" not in record  # the copy is dropped once the log is rewritten
    assert record["log"] == "items"
    assert record["length"] == 5
    (moved,) = record["items"]
    assert moved["position"] == 2
    assert "log 'items'" in moved["reason"]
    assert moved["text"] == TRUNCATED.removeprefix(b"json:").decode()  # the bytes, recoverable


def test_refuses_a_readable_item_unless_forced(backend: Backend) -> None:
    write(backend, ITEMS)
    refused(backend, "1", expect="pass --force")
    result = backend.invoke("quarantine", "t", "items", "1", "4", "--force", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["kept"] == 3
    assert body["quarantine_log"] == QUARANTINE
    assert body["dry_run"] is False
    assert [(i["position"], i["readable"], i["saved_as"]) for i in body["items"]] == [
        (1, True, "item"),
        (4, True, "item"),
    ]
    items, _, records = state(backend)
    assert items == ["i0", "i2", "i3"]
    assert [i["item"] for i in records[0]["items"]] == ["i1", "i4"]


def test_refusals_change_nothing(backend: Backend) -> None:
    refused(backend, "0", expect="holds no item")
    write(backend, ITEMS)
    damage(backend, 1, TRUNCATED)
    damage(backend, 3, GARBAGE)
    refused(backend, "5", expect="position 5 is outside log items of thread t (5 items")
    refused(backend, "1", expect="also has damaged items at positions 3")
    # Redis shows stored text only for a log end without an item of another frame
    unshown = 1 if backend.name == "redis" else 3
    refused(backend, "1", "3", expect=f"cannot show the bytes of the item at position {unshown}")
    bad = backend.invoke("quarantine", "t", "items", "-1")
    assert bad.exit_code == 2  # a usage error, before the store is opened


def test_unreadable_bytes_are_dropped_only_when_told(backend: Backend) -> None:
    write(backend, ITEMS)
    damage(backend, 1, TRUNCATED)
    damage(backend, 3, GARBAGE)
    result = backend.invoke("quarantine", "t", "items", "1", "3", "--discard-unreadable", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    shown = None if backend.name == "redis" else "text"  # see test_refusals_change_nothing
    assert [(i["position"], i["saved_as"]) for i in body["items"]] == [(1, shown), (3, None)]
    items, _, records = state(backend)
    assert items == ["i0", "i2", "i4"]
    assert [sorted(i) for i in records[0]["items"]][1] == ["position", "reason"]


def test_checkpoints_still_see_the_log_as_it_was(backend: Backend) -> None:
    async def setup(store: BaseStore) -> Any:
        return await store.put(first("t"), appends={"items": ITEMS})

    saved = arun(backend.with_store(setup))
    damage(backend, 4, TRUNCATED)
    assert backend.invoke("quarantine", "t", "items", "4").exit_code == 0

    async def check(store: BaseStore) -> None:
        assert await store.read_log("t", "items") == ITEMS[:4]
        assert await store.read_log("t", "items", at=saved, stop=4) == ITEMS[:4]
        with pytest.raises(CorruptCheckpointError):
            await store.read_log("t", "items", at=saved)

    arun(backend.with_store(check))


def test_verify_names_a_damaged_session_item_and_passes_after_quarantine(
    backend: Backend,
) -> None:
    write(backend, ITEMS)  # a session: a log and no checkpoint
    damage(backend, 3, TRUNCATED)
    found = backend.invoke("verify")
    assert found.exit_code == 1, found.output
    assert "log items item 3:" in found.output
    assert "agent-persist quarantine t items 3" in found.output
    moved = backend.invoke("quarantine", "t", "items", "3")
    assert moved.exit_code == 0, moved.output
    clean = backend.invoke("verify")
    assert clean.exit_code == 0, clean.output
