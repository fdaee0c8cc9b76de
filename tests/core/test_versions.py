"""The envelope format policy and its golden corpus (one frozen file per format version)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_persist import ENVELOPE_FORMAT_VERSION, FORMAT_VERSIONS, Envelope, Registry
from agent_persist.errors import CorruptCheckpointError, FutureVersionError
from agent_persist.versions import upgrade_header

CORPUS = Path(__file__).parent.parent / "fixtures" / "envelopes"


def golden(version: int) -> Any:
    return json.loads((CORPUS / f"format_{version}.json").read_text())


def registry() -> Registry:
    registry = Registry()
    registry.register_kind(
        "golden.team", version=1, recognize=lambda raw: raw.get("type") == "TeamState"
    )
    registry.register("golden.team", 0, 1)(lambda payload: payload)
    return registry


def test_policy_has_a_summary_for_every_version() -> None:
    assert sorted(FORMAT_VERSIONS) == list(range(ENVELOPE_FORMAT_VERSION + 1))
    assert all(summary and "\n" not in summary for summary in FORMAT_VERSIONS.values())


def test_corpus_covers_every_supported_version() -> None:
    files = sorted(path.name for path in CORPUS.glob("format_*.json"))
    assert files == [f"format_{v}.json" for v in sorted(FORMAT_VERSIONS)]


@pytest.mark.parametrize("version", sorted(FORMAT_VERSIONS))
def test_every_golden_file_reads_as_a_current_envelope(version: int) -> None:
    envelope = registry().adopt(golden(version), thread_id="golden-thread")
    assert envelope.format_version == ENVELOPE_FORMAT_VERSION
    assert envelope.kind == "golden.team"
    assert envelope.payload == golden(0)
    upgraded = registry().upgrade(envelope)
    assert upgraded.schema_version == 1
    assert registry().upgrade(upgraded) is upgraded  # idempotent: nothing left to do
    assert upgraded.payload == envelope.payload


def test_golden_current_envelope_is_byte_stable() -> None:
    """The frozen file must still validate exactly: a change to the model breaks this."""
    envelope = Envelope.model_validate(golden(ENVELOPE_FORMAT_VERSION))
    dumped = json.loads(envelope.model_dump_json())
    assert dumped == golden(ENVELOPE_FORMAT_VERSION)


def test_upgrade_header_is_idempotent_and_refuses_the_future() -> None:
    header = golden(ENVELOPE_FORMAT_VERSION)
    assert upgrade_header(upgrade_header(dict(header))) == header
    with pytest.raises(FutureVersionError, match="format 2"):
        upgrade_header({**header, "format_version": ENVELOPE_FORMAT_VERSION + 1})
    for bad in (0, "1", None, True):
        with pytest.raises(CorruptCheckpointError):
            upgrade_header({**header, "format_version": bad})
