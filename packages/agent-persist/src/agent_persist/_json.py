r"""Canonical JSON: equal values give equal bytes, so checksums and fingerprints are stable.

>>> canonical_json({"b": 1, "a": [1.5, None]})
b'{"a":[1.5,null],"b":1}'

Plain JSON here means: dicts with string keys, lists (tuples become lists), strings of valid
Unicode (no lone surrogates; ``"\u0000"`` is fine), finite numbers, booleans and ``None``,
nested at most :data:`MAX_JSON_DEPTH` arrays and objects deep. Anything else is refused with
:class:`~agent_persist.errors.InvalidPayloadError` before it is written; a stored value
nested deeper is refused on read as corrupt.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, cast

from .errors import InvalidPayloadError

JSON: TypeAlias = "dict[str, JSON] | list[JSON] | str | int | float | bool | None"
"""A plain JSON value: what payloads, metadata and log items are made of."""

MAX_JSON_DEPTH = 200
"""How many arrays and objects deep a payload, log item or metadata value may nest.

``[]`` is depth 1, ``[[]]`` depth 2. Deeper values are refused on write and reported as
corrupt on read: Python's ``json`` and pydantic fail at a few hundred levels, depending on
the stack already in use, so the limit keeps every write readable by every reader.
"""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""The integers a metadata value may hold: what every store's JSON filter compares exactly."""

_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _prebuilt(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode`` without its per-call setup, when this Python allows it.

    ``JSONEncoder.encode`` builds the C encoder anew on every call (``iterencode``), which
    costs about as much as encoding a small value. This builds it once per thread, with the
    arguments ``iterencode`` passes for ``encoder`` and a circular-reference markers dict of
    its own (a value holding itself raises ``ValueError``, as with ``encoder.encode``; the
    markers a failed call leaves behind are cleared), and checks it gives the same text;
    otherwise (no C accelerator, another signature) it is ``encoder.encode``.
    """
    make: Any = getattr(json.encoder, "c_make_encoder", None)
    basestring = json.encoder.encode_basestring

    def build() -> tuple[dict[int, Any], Any]:
        markers: dict[int, Any] = {}
        return markers, make(
            markers, encoder.default, basestring, None, ":", ",", True, False, False
        )

    try:
        _, iterencode = build()
        sample: dict[str, Any] = {"b": [1.5, None, True, -(2**70)], "a": '\u00e9\n"', "c": {}}
        if "".join(iterencode(sample, 0)) != encoder.encode(sample):
            return encoder.encode
    except Exception:
        return encoder.encode
    local = threading.local()

    def encode(value: Any) -> str:
        try:
            markers, iterencode = local.encoder
        except AttributeError:
            markers, iterencode = local.encoder = build()
        try:
            return "".join(iterencode(value, 0))
        except BaseException:
            markers.clear()
            raise

    return encode


_encode = _prebuilt(_encoder)
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'"[]{}')


def json_depth_exceeds(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``data`` nests more than ``limit`` arrays and objects deep.

    Fast when the text holds at most ``limit`` brackets (two C-level counts). Otherwise only
    quotes and brackets are kept (escaped quotes dropped first), strings are cut out, and
    innermost pairs are removed round after round: after ``limit`` rounds nothing is left
    unless something nests deeper. Every step is a C-level pass, never a Python loop per
    byte. Exact for valid JSON; what is not valid JSON fails to parse anyway.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = data.translate(_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in structure:  # strings holding brackets
        structure = b"".join(structure.split(b'"')[::2])
    for _ in range(limit):
        if not structure:
            return False
        structure = structure.replace(b"[]", b"")
    return bool(structure)


def canonical_json(
    value: Any, *, what: str = "value", max_depth: int | None = MAX_JSON_DEPTH
) -> bytes:
    """Encode ``value`` as canonical JSON: sorted keys, no spaces, UTF-8, NaN refused.

    ``max_depth=None`` skips the depth check, for values already checked (an envelope's
    payload, whose checksum proves it is the one its constructor checked).

    Raises:
        InvalidPayloadError: ``value`` is not plain JSON (see the module docstring) or nests
            deeper than ``max_depth``.
    """
    try:
        encoded = _encode(value).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidPayloadError(f"{what} is not plain JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidPayloadError(
            f"{what} nests deeper than the limit of {max_depth} arrays and objects "
            "(or holds itself)"
        ) from exc
    if max_depth is not None and json_depth_exceeds(encoded, max_depth):
        raise InvalidPayloadError(
            f"{what} nests deeper than the limit of {max_depth} arrays and objects"
        )
    return encoded


def check_storable(value: Any, *, what: str) -> None:
    """Refuse what some store's columns cannot hold, in a value already known to be JSON.

    Metadata lives in columns every store filters on (JSONB on PostgreSQL): a NUL character
    in a key or string, or an integer beyond 64 bits, is refused everywhere so every store
    gives the same answer.
    """
    stack: list[tuple[str, Any]] = [(what, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidPayloadError(f"{path} holds a NUL character, which no store can hold")
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                raise InvalidPayloadError(f"{path} is an integer beyond 64 bits: {item}")
        elif isinstance(item, Mapping):
            for key, child in cast("Mapping[Any, Any]", item).items():
                if isinstance(key, str) and "\x00" in key:
                    raise InvalidPayloadError(
                        f"{path} has a key with a NUL character, which no store can hold"
                    )
                stack.append((f"{path}[{key!r}]", child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(cast("Any", item)))


def normalize_json(value: Any, *, what: str = "value") -> tuple[JSON, bytes]:
    """Return ``value`` as it will read back (tuples as lists, keys as strings) and its bytes.

    ``json`` silently turns tuples into lists and ``1`` keys into ``"1"``; normalising on the
    way in means what a caller holds is exactly what a store gives back.
    """
    encoded = canonical_json(value, what=what)
    return cast("JSON", json.loads(encoded)), encoded


_SAFE_INT = 1 << 2000
"""Integers below this in size print in fewer digits than any ``int_max_str_digits`` allows."""


def plain_json(value: Any, *, what: str = "value", known: set[int] | None = None) -> JSON:
    """``value`` as :func:`normalize_json` gives it back, copying only what that changes.

    Plain JSON (see the module docstring) comes back as the very same object, checked
    (string and key text, finite numbers, depth) without being encoded. Only the containers
    leading to something ``json`` would turn into something else are rebuilt: a tuple
    becomes a list, a non-string key a string, a ``str``/``int``/``float`` subclass its plain
    value, a dict or list subclass a plain one, and a container met a second time a copy of
    its own (so the result is a tree, as decoded JSON is). Only dict key order may differ:
    kept here, sorted by :func:`normalize_json`; equal either way.

    ``known`` holds the ids of the containers ``value`` may keep as they are (those of a
    migration's input, which is private to the migration): any other dict or list (a
    module-level default a migration put in, say) gets a container of its own, so nothing
    outside the payload is shared with it. Its children are kept where they are known. The
    containers built here are added to ``known``, so it serves the next migration too.

    Raises:
        InvalidPayloadError: ``value`` is not plain JSON, or nests deeper than
            :data:`MAX_JSON_DEPTH`, as :func:`normalize_json` would.
    """
    walk = _PlainWalk(what, known)
    try:
        return walk.walk(value, 0)
    except RecursionError as exc:  # only when called with the stack nearly used up
        raise walk.too_deep(" (or the stack is too deep already)") from exc


def container_ids(value: Any) -> set[int]:
    """The ids of every dict and list in ``value`` (a tree of them), for ``plain_json``."""
    ids: set[int] = set()
    stack: list[Any] = [value] if type(value) in (dict, list) else []
    while stack:  # only containers are stacked: most values are leaves
        item = stack.pop()
        ids.add(id(item))
        values = cast("dict[Any, Any]", item).values() if type(item) is dict else item
        stack.extend(child for child in values if type(child) in (dict, list))
    return ids


class _PlainWalk:
    """One :func:`plain_json` walk: the containers seen so far, by id."""

    __slots__ = ("known", "seen", "what")

    def __init__(self, what: str, known: set[int] | None) -> None:
        self.what = what
        self.seen: set[int] = set()
        self.known = known

    def built(self, container: Any) -> Any:
        """A container built here: the payload's own from now on."""
        if self.known is not None:
            self.known.add(id(container))
        return container

    def walk(self, value: Any, depth: int) -> Any:
        kind = cast("type[Any]", type(value))
        if kind is str:
            if not value.isascii():
                self.check_text(value)
            return value
        if kind is dict:
            return self.walk_dict(value, depth + 1)
        if kind is list:
            return self.walk_list(value, depth + 1)
        if value is None or kind is bool:
            return value
        if kind is int:
            return value if -_SAFE_INT < value < _SAFE_INT else self.decoded(value, depth)
        if kind is float:
            return value if value - value == 0.0 else self.decoded(value, depth)
        if kind is tuple:
            items = cast("tuple[Any, ...]", value)
            self.check_depth(depth + 1)
            return [self.walk(item, depth + 1) for item in items]
        return self.decoded(value, depth)  # subclasses, other types: json's own answer

    def walk_dict(self, value: dict[Any, Any], depth: int) -> Any:
        if depth > MAX_JSON_DEPTH:
            raise self.too_deep()
        if id(value) in self.seen:
            return self.decoded(value, depth - 1)  # shared: copied; a cycle: refused
        self.seen.add(id(value))
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            if type(key) is not str:
                return self.decoded(value, depth - 1)  # json's key rules, sorting included
            if not key.isascii():
                self.check_text(key)
            kind = cast("type[Any]", type(item))
            if kind is str:  # the common leaves inline: a call per value costs more
                if not item.isascii():
                    self.check_text(item)
                continue
            if kind is dict:
                plain = self.walk_dict(item, depth + 1)
            elif kind is list:
                plain = self.walk_list(item, depth + 1)
            elif item is None or kind is bool or (kind is int and -_SAFE_INT < item < _SAFE_INT):
                continue
            else:
                plain = self.walk(item, depth)
            if plain is not item:
                if changed is None:
                    changed = {}
                changed[key] = plain
        known = self.known
        if changed is None and (known is None or id(value) in known):
            return value
        changes = changed or {}  # a container from outside the payload: one of its own
        return self.built({key: changes.get(key, item) for key, item in value.items()})

    def walk_list(self, value: list[Any], depth: int) -> Any:
        if depth > MAX_JSON_DEPTH:
            raise self.too_deep()
        if id(value) in self.seen:
            return self.decoded(value, depth - 1)
        self.seen.add(id(value))
        result: list[Any] | None = None
        for index, item in enumerate(value):
            kind = cast("type[Any]", type(item))
            if kind is str:
                if not item.isascii():
                    self.check_text(item)
                plain = item
            elif kind is dict:
                plain = self.walk_dict(item, depth + 1)
            elif kind is list:
                plain = self.walk_list(item, depth + 1)
            elif item is None or kind is bool or (kind is int and -_SAFE_INT < item < _SAFE_INT):
                plain = item
            else:
                plain = self.walk(item, depth)
            if plain is not item and result is None:
                result = value[:index]
            if result is not None:
                result.append(plain)
        known = self.known
        if result is None and (known is None or id(value) in known):
            return value
        return self.built(value[:] if result is None else result)

    def check_depth(self, depth: int) -> None:
        if depth > MAX_JSON_DEPTH:
            raise self.too_deep()

    def too_deep(self, note: str = "") -> InvalidPayloadError:
        return InvalidPayloadError(
            f"{self.what} nests deeper than the limit of {MAX_JSON_DEPTH} arrays and objects" + note
        )

    def check_text(self, text: str) -> None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidPayloadError(f"{self.what} is not plain JSON: {exc}") from exc

    def decoded(self, value: Any, depth: int) -> Any:
        """``value``, found ``depth`` containers deep, encoded and decoded: ``json``'s rules."""
        try:
            encoded = _encode(value).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise InvalidPayloadError(f"{self.what} is not plain JSON: {exc}") from exc
        except RecursionError as exc:
            raise self.too_deep(" (or holds itself)") from exc
        if json_depth_exceeds(encoded, MAX_JSON_DEPTH - depth):
            raise self.too_deep()
        return json.loads(encoded)


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
