r"""What every store can hold, so the same input gets the same answer from every store.

    problem = text_problem("thread\x00id")   # "holds a NUL character", or None if storable

A value one store cannot hold is refused by all of them, before anything is written:

* **text** that reaches a column or a key (ids, log names, owners, kinds, the namespace and
  every other string of an envelope outside its payload) holds no NUL character (PostgreSQL
  text cannot) and no lone surrogate (it has no UTF-8 encoding); ids, log names, owners and
  kinds are at most :data:`MAX_TEXT_LENGTH` characters, a namespace at most
  :data:`MAX_NAMESPACE_BYTES` bytes of UTF-8 (it is part of PostgreSQL index entries);
* **counts and steps** (``step``, ``schema_version``, ``limit``, ``count``, ``start``,
  ``stop``, ``keep_last``) are at most :data:`MAX_INT32`, PostgreSQL's ``INTEGER``;
* **durations** (``ttl``, ``older_than``) are at most :data:`MAX_DURATION`;
* **metadata** integers fit 64 bits and its strings hold no NUL (see
  :func:`agent_persist._json.check_storable`); payloads and log items are stored as sealed
  bytes, so they hold any JSON string, ``"\u0000"`` included.
"""

from __future__ import annotations

from datetime import timedelta

__all__ = [
    "MAX_DURATION",
    "MAX_INT32",
    "MAX_NAMESPACE_BYTES",
    "MAX_TEXT_LENGTH",
    "text_problem",
]

MAX_TEXT_LENGTH = 4096
"""The most characters an id, log name, lease owner or kind may have."""

MAX_NAMESPACE_BYTES = 2048
"""The most UTF-8 bytes a namespace may have, so it fits PostgreSQL's 2.7 KB index entries."""

MAX_INT32 = 2**31 - 1
"""The largest step, schema version, count or slice bound: PostgreSQL's ``INTEGER``."""

MAX_DURATION = timedelta(days=36_500)
"""The longest ``ttl`` or ``older_than`` (100 years): later dates overflow ``datetime``."""


def text_problem(value: str, *, max_length: int | None = MAX_TEXT_LENGTH) -> str | None:
    """Why no store can hold ``value`` (``"holds a NUL character"``...), or ``None``."""
    if max_length is not None and len(value) > max_length:
        return f"is {len(value)} characters long, more than the {max_length} allowed"
    if "\x00" in value:
        return "holds a NUL character, which PostgreSQL cannot store"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate, which is not valid Unicode"
    return None
