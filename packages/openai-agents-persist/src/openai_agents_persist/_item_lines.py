r"""Reading a whole session at once: stored items as JSON Lines to SDK items in one parse.

    lines = await store.read_log_lines("user-1", ITEMS_LOG)
    items = current_items(lines)  # None: an item needs the item-by-item path

Every stored item is canonical JSON ``{"item":X,"sdk":"S","v":1}`` (keys sorted, never a raw
newline), so between two items of the same SDK version the bytes are always
``,"sdk":"S","v":1}\n{"item":``. Replacing that with ``,`` and cutting the first prefix
and the last suffix leaves ``X1,X2,...``: one ``json.loads`` of the bare items, with no
wrapper dict built and no Python loop per item. Each SDK version in the log costs one
replace. Anything else (an older format, a damaged item) gives ``None`` and the caller
unwraps item by item, which names the culprit.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from typing import Any, cast

from .items import ITEM_FORMAT_VERSION

__all__ = ["current_items", "parse_lines", "stamped_items"]

_PREFIX = b'{"item":'
_SDK = b',"sdk":"'
_SUFFIX = re.compile(rb',"sdk":"[^"\\\n]*","v":' + str(ITEM_FORMAT_VERSION).encode() + rb"\}")
_STAMP = re.compile(rb'\n\{"at":(-?[0-9]+),')
"""The write time that starts every item a session with a ``ttl`` wrote, after the newline
before it (``"at"`` sorts first in canonical JSON, and a raw newline only ever separates two
items; a literal newline first lets the search skip ahead, unlike ``^``)."""
_MAX_SDK_VERSIONS = 16
"""Beyond this many SDK versions in one read, the item-by-item path is as fast."""


def current_items(lines: bytes) -> list[Any] | None:
    """The items of ``lines`` if every one is at the current format, else ``None``.

    Each seam holds one newline and every newline separates two items, so once no newline
    is left every item was a wrapper, and the seams replaced count the items. Comparing
    that count with the items parsed catches an item whose ``X`` was not JSON by itself.
    """
    if not lines:
        return []
    last = _suffix_before(lines, len(lines))
    if last is None or not lines.startswith(_PREFIX):
        return None
    body, seams = lines, 0
    for _ in range(_MAX_SDK_VERSIONS):
        newline = body.find(b"\n")
        if newline < 0:
            break
        suffix = _suffix_before(body, newline)
        if suffix is None:
            return None
        seam = suffix + b"\n" + _PREFIX
        before = len(body)
        body = body.replace(seam, b",")
        replaced = (before - len(body)) // (len(seam) - 1)
        if not replaced:
            return None
        seams += replaced
    else:
        if b"\n" in body:
            return None
    try:
        bare = memoryview(body)[len(_PREFIX) : len(body) - len(last)]
        items = json.loads(b"".join((b"[", bare, b"]")))  # one copy, not three
    except ValueError:
        return None
    return cast("list[Any]", items) if len(items) == seams + 1 else None


def stamped_items(lines: bytes, oldest: int) -> list[Any] | None:
    """The items of ``lines`` written at ``oldest`` or later, if they are the newest ones.

    For a session with a ``ttl``: every item must carry its write time and be at the
    current format, and the items still in time must follow every expired one (the usual
    case: items expire oldest first). The times are found and cut off by two regular
    expression passes, and the rest is :func:`current_items`. ``None`` otherwise: the
    caller parses every stored item and filters them one by one.
    """
    if not lines:
        return []
    body = b"\n" + lines
    times = _STAMP.findall(body)
    if len(times) != body.count(b"\n"):
        return None
    ats = list(map(int, times))
    first = bisect_left(ats, oldest) if ats[0] < oldest else 0  # exact when sorted
    readable_before = first > 0 and max(ats[:first]) >= oldest
    expired_after = first < len(ats) and min(ats[first:]) < oldest
    if readable_before or expired_after:
        return None  # expired and readable items interleaved: filter one by one
    if first == len(ats):
        return []
    if first:
        body = b"\n" + b"\n".join(lines.split(b"\n")[first:])
    return current_items(_STAMP.sub(b"\n{", body)[1:])


def parse_lines(lines: bytes) -> list[Any] | None:
    """Every line parsed as it is stored, or ``None`` if one does not parse."""
    if not lines:
        return []
    try:
        stored = json.loads(b"[" + lines.replace(b"\n", b",") + b"]")
    except ValueError:
        return None
    count = lines.count(b"\n") + 1
    return cast("list[Any]", stored) if len(stored) == count else None


def _suffix_before(data: bytes, end: int) -> bytes | None:
    """The ``,"sdk":"S","v":N}`` that ends ``data[:end]``, or ``None``."""
    start = data.rfind(_SDK, 0, end)
    if start < 0 or not _SUFFIX.fullmatch(data, start, end):
        return None
    return data[start:end]
