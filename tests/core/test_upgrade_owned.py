"""``Registry.upgrade``: the caller's envelope is safe, and ``owned`` makes no copy at all."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent_persist import Change, DriftPolicy, Envelope, Producer, Registry, canonical_json
from agent_persist.envelope import payload_checksum
from agent_persist.errors import InvalidPayloadError, MigrationInvalidOutputError

PRODUCER = Producer(package="tests")


def envelope(payload: Any, version: int = 1, fingerprint: str | None = "sha256:old") -> Envelope:
    return Envelope.create(
        kind="team",
        schema_version=version,
        thread_id="t",
        payload=payload,
        producer=PRODUCER,
        fingerprint=fingerprint,
        metadata={"user": "kept"},
    )


def consistent(upgraded: Envelope) -> None:
    """The checksum is its payload's, and the envelope reads back as it is."""
    assert upgraded.checksum == payload_checksum(canonical_json(upgraded.payload))
    assert Envelope.model_validate(json.loads(upgraded.model_dump_json())) == upgraded


def in_place_registry(results: list[Any]) -> Registry:
    """Version 2 of ``team``: one step that edits in place and returns a new dict."""
    registry = Registry()
    registry.register_kind("team", version=2)

    @registry.register("team", 1, 2)
    def grow(payload: dict[str, Any]) -> dict[str, Any]:
        payload["agents"]["writer"]["turns"] += 1  # in place
        result = {"agents": payload["agents"], "extra": [1, 2]}
        results.append(result)
        return result

    return registry


def test_owned_runs_on_the_payload_itself_and_keeps_what_a_step_returns() -> None:
    results: list[Any] = []
    original = envelope({"agents": {"writer": {"turns": 1}}})
    agents = original.payload["agents"]
    upgraded = in_place_registry(results).upgrade(original, owned=True)
    assert upgraded.payload["agents"] is agents  # not copied, before the step or after
    assert upgraded.payload == results[0]  # what the step built itself gets its own shell
    assert upgraded.payload == {"agents": {"writer": {"turns": 2}}, "extra": [1, 2]}
    assert upgraded.schema_version == 2
    assert upgraded.metadata == {"user": "kept"}
    assert (upgraded.checkpoint_id, upgraded.fingerprint) == (original.checkpoint_id, "sha256:old")
    consistent(upgraded)


def test_without_owned_the_callers_envelope_is_untouched() -> None:
    results: list[Any] = []
    original = envelope({"agents": {"writer": {"turns": 1}}})
    before = original.model_dump()
    upgraded = in_place_registry(results).upgrade(original)
    assert original.model_dump() == before
    assert original.payload["agents"]["writer"]["turns"] == 1
    assert original.checksum == payload_checksum(canonical_json(original.payload))
    assert upgraded.payload == results[0]
    assert upgraded.payload["agents"] is results[0]["agents"]  # the copy's, kept
    assert upgraded.payload["agents"]["writer"]["turns"] == 2
    consistent(upgraded)


DEFAULT_TOOLS: dict[str, Any] = {"enabled": []}
"""A module-level default a migration puts in the payload."""


@pytest.mark.parametrize("owned", [False, True])
def test_what_a_step_puts_in_from_outside_the_payload_is_not_shared(owned: bool) -> None:
    """A later step editing it in place must not change the default, nor other payloads."""
    registry = Registry()
    registry.register_kind("team", version=3)

    @registry.register("team", 1, 2)
    def add_tools(payload: dict[str, Any]) -> dict[str, Any]:
        payload.setdefault("tools", DEFAULT_TOOLS)
        return payload

    @registry.register("team", 2, 3)
    def enable_search(payload: dict[str, Any]) -> dict[str, Any]:
        payload["tools"]["enabled"].append("search")
        return payload

    upgraded = [registry.upgrade(envelope({"n": n}), owned=owned) for n in range(3)]
    assert [u.payload["tools"] for u in upgraded] == [{"enabled": ["search"]}] * 3
    assert DEFAULT_TOOLS == {"enabled": []}
    assert upgraded[0].payload["tools"] is not upgraded[1].payload["tools"]
    for one in upgraded:
        consistent(one)


def test_a_step_output_is_normalised_only_where_needed() -> None:
    registry = Registry()
    registry.register_kind("team", version=2)
    kept: list[Any] = []

    @registry.register("team", 1, 2)
    def with_tuple(payload: dict[str, Any]) -> dict[str, Any]:
        kept.append(payload["big"])
        payload["pair"] = (1, 2)
        payload["keys"] = {1: "one"}
        return payload

    upgraded = registry.upgrade(envelope({"big": [{"a": "b"}] * 1}), owned=True)
    assert upgraded.payload == {"big": [{"a": "b"}], "pair": [1, 2], "keys": {"1": "one"}}
    assert upgraded.payload["big"] is kept[0]  # the plain part is not rebuilt
    consistent(upgraded)


@pytest.mark.parametrize("bad", [float("nan"), {1, 2}, "\ud800"])
def test_a_bad_step_output_is_a_typed_error(bad: Any) -> None:
    registry = Registry()
    registry.register_kind("team", version=2)
    registry.register("team", 1, 2)(lambda payload: {**payload, "bad": [bad]})
    for owned in (False, True):
        with pytest.raises(MigrationInvalidOutputError, match="migration 1->2 of kind 'team'"):
            registry.upgrade(envelope({}), owned=owned)


def test_an_owned_envelope_with_a_stale_checksum_gets_a_right_one() -> None:
    """An adapter hands over a tree it built (its checksum not computed): never relied on."""
    registry = Registry()
    registry.register_kind("team", version=1)

    @registry.on_fingerprint_change("team")
    def note(payload: dict[str, Any], change: Any) -> dict[str, Any]:
        payload["noted"] = True
        return payload

    stored = envelope({"refs": "small"})
    built = {"refs": "materialized", "items": [{"n": i} for i in range(3)]}
    probe = stored.model_copy(update={"payload": built})
    upgraded = registry.upgrade(
        probe, fingerprint="sha256:new", policy=DriftPolicy.MIGRATE, owned=True
    )
    assert upgraded.payload is built
    assert built["noted"] is True
    assert upgraded.metadata["drift"]["policy"] == "migrate"
    assert upgraded.metadata["user"] == "kept"
    consistent(upgraded)
    accepted = registry.upgrade(
        stored.model_copy(update={"payload": {"other": 1}}),
        fingerprint="sha256:new",
        changes=[Change("setting changed", "$.x")],
        policy=DriftPolicy.ACCEPT,
        owned=True,
    )
    assert accepted.payload == {"other": 1}
    assert accepted.metadata["drift"]["changes"] == ["setting changed: $.x"]
    consistent(accepted)


def test_accepted_drift_without_owned_keeps_the_payload_and_checksum() -> None:
    registry = Registry()
    registry.register_kind("team", version=1)
    original = envelope({"a": [1]})
    accepted = registry.upgrade(original, fingerprint="sha256:new", policy=DriftPolicy.ACCEPT)
    assert accepted.payload is original.payload  # nothing ran: nothing to copy
    assert accepted.checksum == original.checksum
    assert accepted.metadata["drift"]["policy"] == "accept"
    consistent(accepted)


def test_new_metadata_is_still_checked() -> None:
    registry = Registry()
    registry.register_kind("team", version=1)
    registry.on_fingerprint_change("team")(lambda payload, change: payload)
    original = envelope({"a": 1})
    with pytest.raises(InvalidPayloadError, match="NUL"):
        registry.upgrade(
            original,
            fingerprint="sha256:new\x00",
            policy=DriftPolicy.MIGRATE,
            owned=True,
        )
