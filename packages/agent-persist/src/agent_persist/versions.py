"""The envelope format's own version policy, as code.

Every envelope records the format it was written in. This module names the current format,
summarises every format ever written in one line, and upgrades an older envelope's header to
the current format. Its checks run at import time, so a release that bumps the constant
without a summary and an upgrade step cannot even be imported::

    assert ENVELOPE_FORMAT_VERSION in FORMAT_VERSIONS
    header = upgrade_header(old_header)   # any supported format -> the current one

Format 0 is not an envelope at all: it is raw framework state saved by hand
(``json.dump(await team.save_state())``); :meth:`agent_persist.Registry.adopt` wraps it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import CorruptCheckpointError, FutureVersionError

__all__ = ["ENVELOPE_FORMAT_VERSION", "FORMAT_VERSIONS", "upgrade_header"]

ENVELOPE_FORMAT_VERSION = 1
"""The format this code writes."""

FORMAT_VERSIONS: dict[int, str] = {
    0: "raw framework state with no envelope, adopted on read (json.dump of save_state())",
    1: "first envelope: kind, schema_version, fingerprint, producer, history ids, status, "
    "metadata, log versions, payload checksum",
}
"""One line per format this code can read, oldest first."""

_Header = dict[str, Any]

_HEADER_UPGRADES: dict[int, Callable[[_Header], _Header]] = {}
"""``n -> step`` turns a format-``n`` header into a format-``n + 1`` one (none needed yet).

Format 0 is absent on purpose: raw state has no header, so adoption handles it.
"""


def _check_policy() -> None:
    versions = sorted(FORMAT_VERSIONS)
    if versions != list(range(ENVELOPE_FORMAT_VERSION + 1)):
        raise RuntimeError(f"FORMAT_VERSIONS must cover 0..{ENVELOPE_FORMAT_VERSION}")
    for version, summary in FORMAT_VERSIONS.items():
        if not summary or "\n" in summary:
            raise RuntimeError(f"format {version} needs a one-line summary")
    missing = set(range(1, ENVELOPE_FORMAT_VERSION)) - set(_HEADER_UPGRADES)
    if missing:
        raise RuntimeError(f"no header upgrade from format(s) {sorted(missing)}")


_check_policy()


def upgrade_header(header: _Header, *, where: str = "envelope") -> _Header:
    """Return ``header`` in the current format; idempotent on a current header."""
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CorruptCheckpointError(f"{where}: format_version {version!r} is not a version")
    if version > ENVELOPE_FORMAT_VERSION:
        raise FutureVersionError(
            f"{where}: written in envelope format {version}, newer than this code's "
            f"{ENVELOPE_FORMAT_VERSION}; upgrade agent-persist to read it"
        )
    while version < ENVELOPE_FORMAT_VERSION:
        header = _HEADER_UPGRADES[version](dict(header))
        version += 1
        header["format_version"] = version
    return header
