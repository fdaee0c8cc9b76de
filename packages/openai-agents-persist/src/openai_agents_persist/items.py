"""Versioned session items: every stored item says which item format and SDK wrote it.

    stored = wrap_item({"role": "user", "content": "hi"})
    # {"v": 1, "sdk": "0.24.0", "item": {"role": "user", "content": "hi"}}
    assert ITEM_FORMATS.unwrap(stored, where="t-1") == {"role": "user", "content": "hi"}

Item shapes change across SDK versions (stored reasoning item ids make the API answer 404,
upstream openai-agents #2020, #1709, #1882), so reading migrates an older item through
registered pure functions instead of handing the model something it rejects. Format 0 is an
item stored bare, without the wrapper (what the SDK's own sessions write); its migration to
format 1 drops reasoning item ids.

Renames (:func:`.rename_agent`, :func:`.rename_tool`) are applied on read too, after the
format migrations, through :meth:`ItemFormats.add_rename`: the stored items keep the names
they were written with, so removing a rename gives the stored history back unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from typing import Any, TypeVar, cast

from agent_persist.errors import MigrationFailedError, MissingMigrationError

from .errors import CorruptItemError, FutureItemFormatError

__all__ = [
    "ITEM_FORMATS",
    "ITEM_FORMAT_VERSION",
    "SDK_VERSION",
    "ItemFormats",
    "is_encrypted_envelope",
    "wrap_item",
]

ITEM_FORMAT_VERSION = 1
"""The item format this code writes. 0: a bare SDK item; 1: ``{"v", "sdk", "item"}``, plus
``"at"`` (the write time) from a session with a ``ttl``."""

SDK_VERSION = version("openai-agents")
"""The openai-agents version recorded with every item written."""

ItemMigration = Callable[[Any], Any]
"""A pure function from an item at one format version to the item at the next."""

_F = TypeVar("_F", bound=ItemMigration)


def wrap_item(item: Any, *, at: int | None = None) -> dict[str, Any]:
    """The stored form of an item: the item with its format and SDK versions.

    ``at`` (whole seconds since the epoch) is the write time a session with a ``ttl``
    records, so its reads can skip items past their time; older readers ignore it.
    """
    if at is None:
        return {"v": ITEM_FORMAT_VERSION, "sdk": SDK_VERSION, "item": item}
    return {"v": ITEM_FORMAT_VERSION, "sdk": SDK_VERSION, "item": item, "at": at}


def is_encrypted_envelope(item: Any) -> bool:
    """Whether ``item`` has the shape the SDK's ``EncryptedSession`` stores, as it tests it."""
    if type(item) is not dict:
        return False
    fields = cast("dict[str, Any]", item)
    return fields.get("__enc__") == 1 and "payload" in fields and "kid" in fields and "v" in fields


class ItemFormats:
    """The item migrations, one per format version, run in a chain on read."""

    def __init__(self) -> None:
        self._steps: dict[int, ItemMigration] = {}
        self._renames: list[ItemMigration] = []

    def copy(self) -> ItemFormats:
        """A new set with the same migrations and renames, to add to without touching these.

        ``ITEM_FORMATS.copy()`` keeps the built-in migrations for a session (or a test) whose
        renames must not apply process-wide.
        """
        copied = ItemFormats()
        copied._steps = dict(self._steps)
        copied._renames = list(self._renames)
        return copied

    def add_rename(self, function: ItemMigration) -> None:
        """Apply ``function``, a pure rename, to every item read at the current format.

        Renames run in the order they were added, so ``a -> b`` then ``b -> c`` reads an
        ``a`` as ``c``. Reading with none costs nothing extra.
        """
        self._renames.append(function)

    @property
    def renames(self) -> int:
        """How many renames are applied on read."""
        return len(self._renames)

    def register(self, from_version: int) -> Callable[[_F], _F]:
        """Decorator: a migration from ``from_version`` to ``from_version + 1``."""
        if not 0 <= from_version < ITEM_FORMAT_VERSION:
            raise ValueError(
                f"item migrations go from 0..{ITEM_FORMAT_VERSION - 1}, got {from_version}"
            )

        def decorate(function: _F) -> _F:
            self._steps[from_version] = function
            return function

        return decorate

    def unwrap(self, stored: Any, *, where: str) -> Any:
        """The item inside ``stored``, migrated to the current format.

        Raises:
            CorruptItemError: ``stored`` is not a versioned item.
            FutureItemFormatError: A newer adapter wrote it.
            MissingMigrationError: No migration continues the chain.
            MigrationFailedError: A migration raised.
        """
        if type(stored) is dict:
            fields = cast("dict[str, Any]", stored)
            if fields.get("v") == ITEM_FORMAT_VERSION and "item" in fields:
                item = fields["item"]  # the fast path: every item written by this version
                return self._rename(item, where=where) if self._renames else item
        item = self._upgrade(stored, where=where)
        return self._rename(item, where=where) if self._renames else item

    def unwrap_all(self, stored: list[Any], *, where: str) -> list[Any]:
        """:meth:`unwrap` every item; the current format costs one comparison per item."""
        current = ITEM_FORMAT_VERSION
        items: list[Any] = []
        append = items.append
        for entry in cast("list[dict[str, Any]]", stored):
            if type(entry) is dict and entry.get("v") == current and "item" in entry:
                append(entry["item"])
            else:
                append(self._upgrade(entry, where=where))
        if self._renames:
            return [self._rename(item, where=where) for item in items]
        return items

    def _rename(self, item: Any, *, where: str) -> Any:
        for rename in self._renames:
            try:
                item = rename(item)
            except Exception as exc:
                raise MigrationFailedError(
                    f"{where}: session item rename {getattr(rename, '__name__', rename)!r} "
                    f"raised {type(exc).__name__}: {exc}"
                ) from exc
        return item

    def _upgrade(self, stored: Any, *, where: str) -> Any:
        item, format_version = self._split(stored, where=where)
        while format_version < ITEM_FORMAT_VERSION:
            step = self._steps.get(format_version)
            if step is None:
                raise MissingMigrationError(
                    f"{where}: no session item migration from format {format_version}"
                )
            try:
                item = step(item)
            except Exception as exc:
                raise MigrationFailedError(
                    f"{where}: session item migration from format {format_version} raised "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            format_version += 1
        return item

    @staticmethod
    def _split(stored: Any, *, where: str) -> tuple[Any, int]:
        if not isinstance(stored, dict):
            raise CorruptItemError(
                f"{where}: a stored item is {type(stored).__name__}, not an item"
            )
        fields = cast("dict[str, Any]", stored)
        if "v" not in fields:
            return fields, 0  # a bare SDK item, as the SDK's own sessions store them
        format_version = fields["v"]
        if type(format_version) is not int or format_version < 1 or "item" not in fields:
            raise CorruptItemError(
                f"{where}: a stored item has a bad wrapper (keys {sorted(fields)[:6]})"
            )
        if format_version > ITEM_FORMAT_VERSION:
            raise FutureItemFormatError(
                f"{where}: a session item has format {format_version}, written by "
                f"openai-agents {fields.get('sdk')!r}; this code reads up to "
                f"{ITEM_FORMAT_VERSION}: upgrade openai-agents-persist"
            )
        return fields["item"], format_version


ITEM_FORMATS = ItemFormats()
"""The process-wide item migrations; register more with ``ITEM_FORMATS.register(n)``."""


@ITEM_FORMATS.register(0)
def _drop_reasoning_ids(item: Any) -> Any:
    """Bare items predate versioning; their reasoning item ids make the API answer 404."""
    if not isinstance(item, dict):
        return item
    fields = cast("dict[str, Any]", item)
    if fields.get("type") != "reasoning":
        return fields
    return {key: value for key, value in fields.items() if key != "id"}
