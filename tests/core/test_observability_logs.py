"""The core's log lines: debug per checkpoint, info per migration, a warning for accepted drift.

Each family is one test, on the ``agent_persist`` logger the convention names.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from agent_persist import Change, DriftPolicy, Envelope, Producer, Registry, open_store

LOGGER = "agent_persist"


def envelope(**fields: Any) -> Envelope:
    defaults: dict[str, Any] = {
        "kind": "tests.kind",
        "schema_version": 1,
        "thread_id": "t-1",
        "payload": {"n": 1},
        "producer": Producer(package="tests"),
    }
    return Envelope.create(**{**defaults, **fields})


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
async def test_each_checkpoint_written_and_read_is_a_debug_line(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'logs.db'}" if url == "sqlite" else url
    async with open_store(url) as store:
        first = envelope()
        with caplog.at_level(logging.DEBUG, logger=LOGGER):
            await store.put(first, appends={"transcript": ["abc"]})
            await store.get("t-1")
        sealed = len(store.codec.seal(first.payload)) + len(store.codec.seal("abc"))
    assert messages(caplog, logging.DEBUG) == [
        f"thread 't-1': wrote checkpoint {first.checkpoint_id!r} (step 0, {sealed} bytes)",
        f"thread 't-1': read checkpoint {first.checkpoint_id!r} (step 0)",
    ]


def registry() -> Registry:
    migrations = Registry()
    migrations.register_kind("tests.kind", version=2)
    migrations.register("tests.kind", 1, 2)(lambda payload: {**payload, "v": 2})

    @migrations.on_fingerprint_change("tests.kind")
    def rename_tool(payload: dict[str, Any], change: object) -> dict[str, Any]:
        return {**payload, "renamed": True}

    return migrations


def test_a_migration_and_a_fingerprint_handler_are_info_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = envelope(fingerprint="fp-old")
    changes = [Change("tool renamed", "search", "lookup", "search")]
    with caplog.at_level(logging.INFO, logger=LOGGER):
        upgraded = registry().upgrade(
            old, fingerprint="fp-new", changes=changes, policy=DriftPolicy.MIGRATE
        )
    assert upgraded.payload == {"n": 1, "v": 2, "renamed": True}
    where = f"checkpoint {old.checkpoint_id!r} of thread 't-1'"
    assert messages(caplog, logging.INFO) == [
        f"{where}: kind 'tests.kind' migrated from schema version 1 to 2 "
        "(in memory; nothing written)",
        f"{where}: fingerprint-change handler 'rename_tool' applied (tool renamed: search)",
    ]
    assert messages(caplog, logging.WARNING) == []
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        current = registry().upgrade(upgraded)  # nothing to do: nothing logged
    assert current is upgraded
    assert caplog.records == []


def test_drift_accepted_as_is_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    old = envelope(schema_version=2, fingerprint="fp-old")
    changes = [Change("system message changed", "writer", "be terse", "a private prompt")]
    with caplog.at_level(logging.INFO, logger=LOGGER):
        loaded = registry().upgrade(
            old, fingerprint="fp-new", changes=changes, policy=DriftPolicy.ACCEPT
        )
    assert loaded.metadata["drift"]["policy"] == "accept"
    (warning,) = messages(caplog, logging.WARNING)
    assert warning == (
        f"checkpoint {old.checkpoint_id!r} of thread 't-1' was written by another "
        "configuration; loaded as is (drift policy 'accept'): system message changed: writer"
    )
    assert "private prompt" not in warning  # categories and subjects only, never values
    assert messages(caplog, logging.INFO) == []
