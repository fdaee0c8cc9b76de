"""Canonical JSON: equal values give equal bytes, so checksums and fingerprints are stable.

>>> canonical_json({"b": 1, "a": [1.5, None]})
b'{"a":[1.5,null],"b":1}'
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypeAlias, cast

from .errors import InvalidPayloadError

JSON: TypeAlias = "dict[str, JSON] | list[JSON] | str | int | float | bool | None"
"""A plain JSON value: what payloads, metadata and log items are made of."""

_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any, *, what: str = "value") -> bytes:
    """Encode ``value`` as canonical JSON: sorted keys, no spaces, UTF-8, NaN refused."""
    try:
        return _encoder.encode(value).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidPayloadError(f"{what} is not plain JSON: {exc}") from exc


def normalize_json(value: Any, *, what: str = "value") -> tuple[JSON, bytes]:
    """Return ``value`` as it will read back (tuples as lists, keys as strings) and its bytes.

    ``json`` silently turns tuples into lists and ``1`` keys into ``"1"``; normalising on the
    way in means what a caller holds is exactly what a store gives back.
    """
    encoded = canonical_json(value, what=what)
    return cast("JSON", json.loads(encoded)), encoded


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def fingerprint(config: Any) -> str:
    """Hash any JSON-able configuration (prompts, tools, participants, model) to a short id.

    Equal configurations give equal fingerprints whatever their key order, so a checkpoint
    can tell whether the agent or team that loads it is the one that wrote it.
    """
    return "sha256:" + sha256_hex(canonical_json(config, what="fingerprinted configuration"))


def json_diff(old: Any, new: Any, path: str = "$") -> list[str]:
    """What changed between two JSON values, one line per path.

    ``+`` added, ``-`` removed, ``~`` changed; lists are compared by position.

        >>> json_diff({"a": 1, "b": [1]}, {"a": 2, "b": [1, 2], "c": None})
        ['~ $.a', '+ $.b[1]', '+ $.c']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        old_map, new_map = cast("dict[str, Any]", old), cast("dict[str, Any]", new)
        changes: list[str] = []
        for key in sorted(old_map.keys() | new_map.keys()):
            child = f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]"
            if key not in new_map:
                changes.append(f"- {child}")
            elif key not in old_map:
                changes.append(f"+ {child}")
            else:
                changes.extend(json_diff(old_map[key], new_map[key], child))
        return changes
    if isinstance(old, list) and isinstance(new, list):
        old_list, new_list = cast("list[Any]", old), cast("list[Any]", new)
        changes = []
        for index in range(max(len(old_list), len(new_list))):
            child = f"{path}[{index}]"
            if index >= len(new_list):
                changes.append(f"- {child}")
            elif index >= len(old_list):
                changes.append(f"+ {child}")
            else:
                changes.extend(json_diff(old_list[index], new_list[index], child))
        return changes
    if type(old) is not type(new) or old != new:  # pyright: ignore[reportUnknownArgumentType]
        return [f"~ {path}"]
    return []
