from __future__ import annotations

from typing import Any

import pytest

from agent_persist import Envelope, Producer, Registry, dry_run
from agent_persist.errors import (
    FutureVersionError,
    MigrationFailedError,
    MigrationInvalidOutputError,
    MissingMigrationError,
    UnknownKindError,
)
from agent_persist.stores.memory import MemoryStore

PRODUCER = Producer(package="tests")


def old(payload: Any, version: int = 1, kind: str = "team", thread_id: str = "t-9") -> Envelope:
    return Envelope.create(
        kind=kind, schema_version=version, thread_id=thread_id, payload=payload, producer=PRODUCER
    )


def team_registry() -> Registry:
    registry = Registry()
    registry.register_kind("team", version=3)

    @registry.register("team", 1, 2)
    def rename_writer(payload: dict[str, Any]) -> dict[str, Any]:
        payload["agents"]["author"] = payload["agents"].pop("writer")
        return payload

    @registry.register("team", 2, 3)
    def add_turn(payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "turn": 0}

    return registry


def test_upgrade_runs_the_chain_and_keeps_identity() -> None:
    envelope = old({"agents": {"writer": {"n": 1}}})
    upgraded = team_registry().upgrade(envelope)
    assert upgraded.payload == {"agents": {"author": {"n": 1}}, "turn": 0}
    assert upgraded.schema_version == 3
    assert upgraded.checkpoint_id == envelope.checkpoint_id
    assert upgraded.thread_id == envelope.thread_id
    assert envelope.payload == {"agents": {"writer": {"n": 1}}}  # the input is untouched
    assert team_registry().path(envelope) == [(1, 2), (2, 3)]


def test_current_envelopes_come_back_as_they_are() -> None:
    current = old({"x": 1}, version=3)
    assert team_registry().upgrade(current) is current


def test_future_version_names_kind_versions_and_thread() -> None:
    with pytest.raises(
        FutureVersionError, match=r"'team' schema version 4 is newer than this code's 3.*"
    ) as raised:
        team_registry().upgrade(old({}, version=4))
    assert "t-9" in str(raised.value)


def test_gap_in_the_chain() -> None:
    registry = Registry()
    registry.register_kind("team", version=3)
    registry.register("team", 2, 3)(lambda p: p)
    with pytest.raises(
        MissingMigrationError, match=r"from schema version 1 towards 3 \(registered: 2->3\)"
    ):
        registry.upgrade(old({}))


def test_unknown_kind() -> None:
    with pytest.raises(UnknownKindError, match="'mystery' is not registered"):
        team_registry().upgrade(old({}, kind="mystery"))


def test_a_migration_that_raises_is_wrapped_with_its_cause() -> None:
    registry = team_registry()
    with pytest.raises(
        MigrationFailedError, match=r"migration 1->2 of kind 'team' raised KeyError"
    ) as raised:
        registry.upgrade(old({"agents": {}}))
    assert isinstance(raised.value.__cause__, KeyError)


@pytest.mark.parametrize("result", [None, {"bad": {1, 2}}, {"nan": float("nan")}])
def test_a_migration_returning_garbage_is_refused(result: Any) -> None:
    registry = Registry()
    registry.register("team", 0, 1)(lambda payload: result)
    with pytest.raises(MigrationInvalidOutputError, match="migration 0->1"):
        registry.upgrade(old({}, version=0))


def test_validation_of_the_migrated_payload() -> None:
    def needs_turn(payload: Any) -> None:
        if "turn" not in payload:
            raise ValueError("turn is required")

    registry = Registry()
    registry.register_kind("team", version=1, validate=needs_turn)
    registry.register("team", 0, 1)(lambda payload: payload)
    with pytest.raises(MigrationInvalidOutputError, match="turn is required"):
        registry.upgrade(old({}, version=0))
    assert registry.upgrade(old({"turn": 1}, version=0)).schema_version == 1


def test_registration_rules() -> None:
    registry = Registry()
    registry.register("team", 0, 1)(lambda p: p)
    with pytest.raises(ValueError, match="is registered"):
        registry.register("team", 0, 2)
    with pytest.raises(ValueError, match="goes up"):
        registry.register("team", 2, 2)
    assert registry.current_version("team") == 1
    assert registry.kinds == ["team"]


def test_fingerprint_change_handlers() -> None:
    registry = Registry()
    registry.register_kind("team", version=1)
    seen: list[Any] = []

    @registry.on_fingerprint_change("team")
    def reprime(payload: dict[str, Any], change: Any) -> dict[str, Any]:
        seen.append(change)
        return {**payload, "primed": True}

    envelope = old({"x": 1}).replace(fingerprint="sha256:old")
    assert registry.upgrade(envelope, fingerprint="sha256:old") is envelope
    changed = registry.upgrade(envelope, fingerprint="sha256:new")
    assert changed.payload == {"x": 1, "primed": True}
    assert changed.fingerprint == "sha256:old"  # the writer's, until a new checkpoint
    assert seen[0].old == "sha256:old"
    assert seen[0].new == "sha256:new"
    assert seen[0].thread_id == "t-9"


def test_declared_renames_live_in_the_registry() -> None:
    registry = Registry()
    registry.register_kind("team", version=1)
    assert registry.renames("team") == {}
    assert registry.renames("unknown") == {}
    registry.declare_rename("team", "participant", "writer", "author")
    registry.declare_rename("team", "participant", "writer", "author")  # again: nothing new
    registry.declare_rename("team", "tool", "search", "web_search")
    registry.declare_rename("other", "tool", "a", "b")  # per kind
    assert registry.renames("team") == {
        "participant": [("writer", "author")],
        "tool": [("search", "web_search")],
    }
    registry.renames("team")["tool"].append(("x", "y"))  # a copy: declares nothing
    assert registry.renames("team")["tool"] == [("search", "web_search")]
    with pytest.raises(ValueError, match="already declared"):
        registry.declare_rename("team", "participant", "writer", "editor")
    with pytest.raises(ValueError, match="two different names"):
        registry.declare_rename("team", "tool", "same", "same")
    with pytest.raises(ValueError, match="non-empty"):
        registry.declare_rename("team", "tool", "", "new")
    combined = Registry()
    combined.include(registry)
    assert combined.renames("team") == registry.renames("team")
    registry.declare_rename("team", "tool", "fetch", "get")
    assert combined.renames("team")["tool"] == [("search", "web_search")], "copied, not shared"


def test_a_fingerprint_handler_is_found_by_name() -> None:
    registry = Registry()
    assert registry.fingerprint_handler("team", "reprime") is None

    @registry.on_fingerprint_change("team")
    def reprime(payload: Any, change: Any) -> Any:
        return payload

    assert registry.fingerprint_handler("team", "reprime") is reprime
    assert registry.fingerprint_handler("team", "other") is None
    assert registry.fingerprint_handler("agent", "reprime") is None


def test_adoption_of_raw_state() -> None:
    registry = Registry()
    registry.register_kind("team", version=1, recognize=lambda raw: raw.get("type") == "TeamState")
    registry.register_kind(
        "agent", version=1, recognize=lambda raw: raw.get("type") == "AgentState"
    )
    registry.register("team", 0, 1)(lambda payload: {"state": payload})
    adopted = registry.adopt({"type": "TeamState", "agent_states": {}}, thread_id="legacy")
    assert adopted.kind == "team"
    assert adopted.schema_version == 0
    assert adopted.metadata == {"adopted": True}
    assert registry.upgrade(adopted).payload == {"state": {"type": "TeamState", "agent_states": {}}}
    with pytest.raises(UnknownKindError, match="no registered kind matches"):
        registry.adopt({"type": "Other"}, thread_id="x")
    with pytest.raises(UnknownKindError, match="pass kind="):
        registry.adopt([1, 2], thread_id="x")
    assert registry.adopt([1], thread_id="x", kind="agent").kind == "agent"
    with pytest.raises(UnknownKindError):
        registry.adopt([1], thread_id="x", kind="nope")


async def test_dry_run_reports_without_writing() -> None:
    store = MemoryStore()
    first = await store.put(old({"agents": {"writer": {}}}, thread_id="a"))
    await store.put(first.next(payload={"agents": {"writer": {"n": 2}}}))
    await store.put(old({"x": 1}, version=3, thread_id="b"))
    await store.put(old({"agents": {}}, thread_id="c"))
    await store.put(old({}, version=9, thread_id="d"))
    await store.append("e", "session", ["no checkpoints"])
    before = {
        t.thread_id: await store.list_checkpoints(t.thread_id)
        for t in await store.list_threads()
        if t.head_id
    }

    report = await dry_run(store, team_registry())

    assert report.count("would migrate") == 2
    assert report.count("current") == 1
    assert report.count("error") == 2
    by_thread = {(e.thread_id, e.checkpoint_id): e for e in report.entries}
    entry = by_thread[("a", first.checkpoint_id)]
    assert entry.migrations == ["1->2", "2->3"]
    assert entry.changes == ["+ $.agents.author", "- $.agents.writer", "+ $.turn"]
    assert (entry.from_version, entry.to_version) == (1, 3)
    errors = {e.thread_id: e.error for e in report.entries if e.outcome == "error"}
    assert "MigrationFailedError" in (errors["c"] or "")
    assert "FutureVersionError" in (errors["d"] or "")
    after = {
        t.thread_id: await store.list_checkpoints(t.thread_id)
        for t in await store.list_threads()
        if t.head_id
    }
    assert after == before
