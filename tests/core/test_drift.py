"""Drift policies: strict refuses, migrate runs what covers the changes, accept records."""

from __future__ import annotations

from typing import Any

import pytest

from agent_persist import (
    Change,
    DriftPolicy,
    Envelope,
    Producer,
    Registry,
    config_appends,
    saved_config,
)
from agent_persist.drift import CONFIG_LOG, generic_changes
from agent_persist.errors import ConfigDriftError, MigrationFailedError
from agent_persist.stores.memory import MemoryStore

RENAMED = Change("participant renamed", "writer", old="writer", new="author")
PROMPT = Change("system message changed", "critic", old="Be harsh.", new="Be kind.")


def written(payload: Any, fingerprint: str | None = "sha256:old") -> Envelope:
    return Envelope.create(
        kind="team",
        schema_version=1,
        thread_id="t-1",
        payload=payload,
        producer=Producer(package="tests"),
        fingerprint=fingerprint,
    )


def registry_with_rename() -> tuple[Registry, list[Any]]:
    registry = Registry()
    registry.register_kind("team", version=1)
    seen: list[Any] = []

    @registry.on_fingerprint_change("team", covers=["participant renamed"])
    def rename(payload: dict[str, Any], change: Any) -> dict[str, Any]:
        seen.append(change)
        agents = payload["agents"]
        return {"agents": {"author" if k == "writer" else k: v for k, v in agents.items()}}

    return registry, seen


def test_same_fingerprint_is_no_drift_under_any_policy() -> None:
    registry, seen = registry_with_rename()
    envelope = written({"agents": {"writer": 1}})
    for policy in DriftPolicy:
        assert registry.upgrade(envelope, fingerprint="sha256:old", policy=policy) is envelope
    assert seen == []


def test_strict_lists_every_change_and_changes_nothing() -> None:
    registry, seen = registry_with_rename()
    envelope = written({"agents": {"writer": 1}})
    with pytest.raises(ConfigDriftError) as raised:
        registry.upgrade(
            envelope, fingerprint="sha256:new", changes=[RENAMED, PROMPT], policy=DriftPolicy.STRICT
        )
    assert raised.value.changes == [RENAMED, PROMPT]
    message = str(raised.value)
    assert "participant renamed: writer ('writer' -> 'author')" in message
    assert "system message changed: critic" in message
    assert "thread 't-1'" in message
    assert "strict" in message
    assert seen == []
    assert envelope.payload == {"agents": {"writer": 1}}


def test_migrate_runs_the_covering_handler_and_records_the_drift() -> None:
    registry, seen = registry_with_rename()
    envelope = written({"agents": {"writer": 1}}).replace(metadata={"user": "u-1"})
    upgraded = registry.upgrade(
        envelope, fingerprint="sha256:new", changes=[RENAMED], policy=DriftPolicy.MIGRATE
    )
    assert upgraded.payload == {"agents": {"author": 1}}
    assert upgraded.fingerprint == "sha256:old"
    assert upgraded.metadata["user"] == "u-1"
    assert upgraded.metadata["drift"] == {
        "policy": "migrate",
        "from": "sha256:old",
        "to": "sha256:new",
        "changes": [str(RENAMED)],
    }
    assert seen[0].changes == (RENAMED,)
    assert envelope.payload == {"agents": {"writer": 1}}


def test_migrate_refuses_the_changes_no_handler_covers() -> None:
    registry, seen = registry_with_rename()
    with pytest.raises(ConfigDriftError) as raised:
        registry.upgrade(
            written({"agents": {"writer": 1}}),
            fingerprint="sha256:new",
            changes=[RENAMED, PROMPT],
            policy=DriftPolicy.MIGRATE,
        )
    assert raised.value.changes == [PROMPT]
    assert "on_fingerprint_change" in str(raised.value)
    assert seen == []


def test_migrate_without_details_needs_a_handler_for_any_change() -> None:
    registry = Registry()
    registry.register_kind("team", version=1)
    with pytest.raises(ConfigDriftError, match="configuration changed"):
        registry.upgrade(written({}), fingerprint="sha256:new", policy=DriftPolicy.MIGRATE)

    @registry.on_fingerprint_change("team")
    def reprime(payload: dict[str, Any], change: Any) -> dict[str, Any]:
        return {**payload, "primed": True}

    upgraded = registry.upgrade(written({}), fingerprint="sha256:new", policy=DriftPolicy.MIGRATE)
    assert upgraded.payload == {"primed": True}


def test_predicate_covers_and_failing_handler() -> None:
    registry = Registry()
    registry.register_kind("team", version=1)

    @registry.on_fingerprint_change("team", covers=lambda change: change.subject == "critic")
    def broken(payload: Any, change: Any) -> Any:
        raise KeyError("critic")

    with pytest.raises(MigrationFailedError, match="broken"):
        registry.upgrade(
            written({}), fingerprint="sha256:new", changes=[PROMPT], policy=DriftPolicy.MIGRATE
        )


def test_accept_runs_nothing_and_records_it() -> None:
    registry, seen = registry_with_rename()
    upgraded = registry.upgrade(
        written({"agents": {"writer": 1}}),
        fingerprint="sha256:new",
        changes=[RENAMED, PROMPT],
        policy=DriftPolicy.ACCEPT,
    )
    assert upgraded.payload == {"agents": {"writer": 1}}
    assert upgraded.metadata["drift"]["policy"] == "accept"
    assert upgraded.metadata["drift"]["changes"] == [str(RENAMED), str(PROMPT)]
    assert seen == []


def test_no_recorded_fingerprint_is_not_drift() -> None:
    registry, _ = registry_with_rename()
    envelope = written({"agents": {"writer": 1}}, fingerprint=None)
    strict = DriftPolicy.STRICT
    assert registry.upgrade(envelope, fingerprint="sha256:new", policy=strict) is envelope


def test_generic_changes_name_every_path() -> None:
    old = {"model": {"name": "a", "temperature": 0}, "tools": ["x"]}
    new = {"model": {"name": "b", "temperature": 0}, "tools": ["x", "y"], "seed": 1}
    assert [str(c) for c in generic_changes(old, new)] == [
        "setting changed: $.model.name",
        "setting added: $.seed",
        "setting added: $.tools[1]",
    ]


async def test_the_config_log_keeps_each_configuration_once() -> None:
    async with MemoryStore() as store:
        first = written({"turn": 1})
        appends = config_appends(None, fingerprint="sha256:old", config={"prompt": "v1"})
        assert appends == {CONFIG_LOG: [{"fingerprint": "sha256:old", "config": {"prompt": "v1"}}]}
        head = await store.put(first, appends=appends)
        assert config_appends(head, fingerprint="sha256:old", config={"prompt": "v1"}) == {}
        second = head.next(payload={"turn": 2})
        head = await store.put(second)
        assert await saved_config(store, head) == {"prompt": "v1"}
        changed = head.next(payload={"turn": 3}, fingerprint="sha256:new")
        appends = config_appends(head, fingerprint="sha256:new", config={"prompt": "v2"})
        latest = await store.put(changed, appends=appends)
        assert await saved_config(store, latest) == {"prompt": "v2"}
        assert await saved_config(store, head) == {"prompt": "v1"}  # as that checkpoint saw it
        assert await store.log_length("t-1", CONFIG_LOG) == 2
        assert await saved_config(store, written({}, fingerprint=None)) is None


def test_a_declared_rename_counts_only_where_the_diff_shows_it() -> None:
    from agent_persist.drift import matched_renames

    before, after = {"search", "fetch", "keep"}, {"web_search", "fetch", "keep", "load"}
    declared = [("search", "web_search"), ("fetch", "load"), ("gone", "load"), ("keep", "x")]
    assert matched_renames(declared, before, after) == {"search": "web_search"}
