from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from agent_persist import (
    Envelope,
    Producer,
    Status,
    canonical_json,
    fingerprint,
    json_diff,
    new_checkpoint_id,
)
from agent_persist.errors import InvalidPayloadError

PRODUCER = Producer(package="tests")


def make(**changes: object) -> Envelope:
    fields: dict[str, object] = {
        "kind": "test.kind",
        "schema_version": 1,
        "thread_id": "t",
        "payload": {"b": 1, "a": [1, 2]},
        "producer": PRODUCER,
    }
    fields.update(changes)
    return Envelope.create(**fields)  # type: ignore[arg-type]


def test_canonical_json_is_stable_and_strict() -> None:
    assert (
        canonical_json({"b": 1, "a": {"d": 2, "c": "é"}}) == '{"a":{"c":"é","d":2},"b":1}'.encode()
    )
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})
    with pytest.raises(InvalidPayloadError, match=r"NaN|not plain JSON"):
        canonical_json({"x": float("nan")})
    with pytest.raises(InvalidPayloadError):
        canonical_json({"x": object()})


def test_fingerprint_ignores_key_order_and_sees_every_change() -> None:
    config = {"participants": ["writer", "critic"], "system": "Be brief."}
    assert fingerprint(config) == fingerprint(dict(reversed(list(config.items()))))
    assert fingerprint(config) != fingerprint({**config, "participants": ["critic", "writer"]})
    assert fingerprint(config).startswith("sha256:")


def test_create_fills_ids_time_and_checksum() -> None:
    envelope = make(metadata={"user": "ada"})
    assert envelope.format_version == 1
    assert envelope.step == 0
    assert envelope.parent_id is None
    assert envelope.status is Status.RUNNING
    assert envelope.created_at.tzinfo is timezone.utc
    assert uuid.UUID(envelope.checkpoint_id).version == 7
    assert envelope.checksum.startswith("sha256:")


def test_payload_is_normalised_to_what_a_store_gives_back() -> None:
    envelope = make(payload={"tuple": (1, 2), "nested": {3: "int key"}})
    assert envelope.payload == {"tuple": [1, 2], "nested": {"3": "int key"}}
    for bad in ({"set": {1}}, {"nan": float("nan")}, {"mixed": {1: "a", "b": 2}}):
        with pytest.raises(InvalidPayloadError, match="not plain JSON"):
            make(payload=bad)
    with pytest.raises(InvalidPayloadError, match="metadata is not plain JSON"):
        make(metadata={"nan": float("nan")})


def test_next_links_history() -> None:
    first = make()
    second = first.next(payload={"x": 1}, status=Status.DONE, stop_reason="done")
    assert second.parent_id == first.checkpoint_id
    assert second.step == 1
    assert second.checkpoint_id > first.checkpoint_id
    assert second.status is Status.DONE
    assert second.kind == first.kind
    assert second.checksum != first.checksum


def test_checksum_is_verified_on_construction() -> None:
    envelope = make()
    data = envelope.model_dump()
    data["payload"] = {"changed": True}
    with pytest.raises(ValidationError, match="checksum"):
        Envelope(**data)
    assert envelope.replace(payload={"changed": True}).payload == {"changed": True}


def test_naive_datetimes_are_refused_and_others_become_utc() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        make().replace(created_at=datetime(2026, 1, 1))
    plus_two = timezone(timedelta(hours=2))
    moved = make().replace(created_at=datetime(2026, 1, 1, 12, tzinfo=plus_two))
    assert moved.created_at == datetime(2026, 1, 1, 10, tzinfo=timezone.utc)


def test_envelopes_are_frozen_and_round_trip_through_json() -> None:
    envelope = make()
    with pytest.raises(ValidationError):
        envelope.step = 3  # type: ignore[misc]
    assert Envelope.model_validate_json(envelope.model_dump_json()) == envelope


def test_checkpoint_ids_increase_strictly_and_are_unique() -> None:
    ids = [new_checkpoint_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_json_diff_names_each_path() -> None:
    old = {"a": 1, "b": [1], "gone": True, "key with space": 1}
    new = {"a": 2, "b": [1, 2], "c": None, "key with space": "1"}
    assert json_diff(old, new) == [
        "~ $.a",
        "+ $.b[1]",
        "+ $.c",
        "- $.gone",
        '~ $["key with space"]',
    ]
    assert json_diff(old, json.loads(json.dumps(old))) == []
    assert json_diff(1, True) == ["~ $"]
