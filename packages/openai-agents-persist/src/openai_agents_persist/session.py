"""A drop-in ``Session`` for the OpenAI Agents SDK over any agent-persist store.

    async with StoreSession.open("user-1", "sqlite:///agents.db") as session:
        result = await Runner.run(agent, "Hello", session=session)

    store = open_store("redis://localhost:6379/0", ttl=timedelta(days=30))
    session = StoreSession("user-1", store=store, state=lambda ctx: ctx.context.snapshot())

The session id is the store's thread id and the items are its ``items`` log, so ``get_items``
is a ``tail_lines``/``read_log_lines`` parsed at once (:mod:`._item_lines`), ``add_items``
one atomic append (or, with checkpoints on, one
atomic ``put`` of the turn's items and a checkpoint), ``pop_item`` a ``pop`` and
``clear_session`` a ``clear_log``. Its results equal the SDK's ``SQLiteSession`` on every
sequence of operations (``tests/openai_agents/test_session_differential.py``), on every store.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, cast

from agents import RunContextWrapper, SessionSettings, TResponseInputItem
from agents.memory.session_settings import resolve_session_limit
from typing_extensions import Self

from agent_persist import BaseStore, Envelope, open_store
from agent_persist.errors import (
    AgentPersistError,
    ConflictError,
    StoreUnavailableError,
    ThreadNotFoundError,
)
from agent_persist.retry import DEFAULT_WRITE_ATTEMPTS, check_attempts, put_retrying

from ._item_lines import current_items, parse_lines
from .checkpoints import (
    TURN_KIND,
    StateHook,
    TurnCheckpoint,
    UsageTracker,
    call_state_hook,
    producer,
    usage_dict,
)
from .errors import InvalidLimitError
from .items import ITEM_FORMATS, ItemFormats, wrap_item
from .retention import touch

__all__ = ["ITEMS_LOG", "StoreSession"]

ITEMS_LOG = "items"
"""The name of the log that holds a session's items."""

logger = logging.getLogger("openai_agents_persist")


class StoreSession:
    """The SDK's ``Session`` protocol on an agent-persist store, with per-turn checkpoints.

    Every method takes the SDK's optional ``wrapper`` keyword, so the Runner passes the run
    context (usage, the user's context object) to each call.

    Args:
        session_id: The conversation; any string (it is data, never part of a query).
        store: Where items and checkpoints go; the caller opens and closes it.
        session_settings: The SDK's settings; ``limit`` is the default of ``get_items``.
        state: A hook returning the application state to record with every turn; giving
            one turns checkpoints on.
        checkpoints: Write a checkpoint envelope with every ``add_items`` (usage only when
            there is no ``state`` hook).
        item_formats: The item migrations to read with (the process-wide ones by default).
        refresh_on_read: Refresh the store's TTL on ``get_items`` too (one extra write).
        write_attempts: How many times a checkpoint write is tried while the store is
            unavailable (a broken connection), each retry logged as a warning on the
            ``openai_agents_persist`` logger. Safe because a retried put of a checkpoint
            that was committed returns it. Plain appends (checkpoints off) are not retried:
            they carry no id, so a retry after a lost reply could add the items twice.
    """

    def __init__(
        self,
        session_id: str,
        *,
        store: BaseStore,
        session_settings: SessionSettings | None = None,
        state: StateHook | None = None,
        checkpoints: bool = False,
        item_formats: ItemFormats = ITEM_FORMATS,
        refresh_on_read: bool = False,
        write_attempts: int = DEFAULT_WRITE_ATTEMPTS,
    ) -> None:
        if not isinstance(session_id, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"session_id must be a str, got {type(session_id).__name__}")
        self.session_id = session_id
        self.session_settings: SessionSettings | None = session_settings or SessionSettings()
        self.store = store
        self._state = state
        self._checkpoints = checkpoints or state is not None
        self._formats = item_formats
        self._refresh_on_read = refresh_on_read
        self._write_attempts = check_attempts(write_attempts)
        self._usage = UsageTracker()
        self._head: Envelope | None = None
        self._head_loaded = False
        self._owns_store = False
        self._where = f"session {session_id!r}"

    @classmethod
    def open(cls, session_id: str, url: str = "sqlite:///agents.db", **options: Any) -> Self:
        """A session on its own store opened from ``url``; ``async with`` closes it.

        ``options`` split between the session (``session_settings``, ``state``,
        ``checkpoints``, ``item_formats``) and the store (``ttl``, ``namespace``...).
        """
        session_keys = {
            "session_settings",
            "state",
            "checkpoints",
            "item_formats",
            "refresh_on_read",
            "write_attempts",
        }
        mine = {k: v for k, v in options.items() if k in session_keys}
        store = open_store(url, **{k: v for k, v in options.items() if k not in session_keys})
        session = cls(session_id, store=store, **mine)
        session._owns_store = True
        return session

    async def __aenter__(self) -> Self:
        await self.store.setup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the store if this session opened it (:meth:`open`)."""
        if self._owns_store:
            await self.store.close()

    # -- the Session protocol ------------------------------------------------------------

    async def get_items(
        self, limit: int | None = None, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> list[TResponseInputItem]:
        """The newest ``limit`` items, oldest first (all of them when there is no limit).

        ``limit`` falls back to ``session_settings.limit``; 0 gives ``[]``.

        Raises:
            InvalidLimitError: ``limit`` is negative.
            CorruptItemError: A stored item is damaged (nothing is changed).
            FutureItemFormatError: A newer adapter wrote an item.
        """
        resolved = resolve_session_limit(limit, self.session_settings)
        if resolved is None:
            lines = await self.store.read_log_lines(self.session_id, ITEMS_LOG)
        elif resolved < 0:
            raise InvalidLimitError(f"{self._where}: limit must not be negative, got {resolved}")
        elif resolved == 0:
            return []
        else:
            lines = await self.store.tail_lines(self.session_id, ITEMS_LOG, resolved)
        if lines and self._refresh_on_read:
            await touch(self.store, self.session_id)
        items = None if self._formats.renames else current_items(lines)
        if items is not None:
            return items  # the fast path: current format, no renames declared
        stored = parse_lines(lines)
        if stored is None:  # a damaged item: the store's own read names it
            stored = await (
                self.store.read_log(self.session_id, ITEMS_LOG)
                if resolved is None
                else self.store.tail(self.session_id, ITEMS_LOG, resolved)
            )
        return self._formats.unwrap_all(stored, where=self._where)

    async def add_items(
        self,
        items: list[TResponseInputItem],
        *,
        wrapper: RunContextWrapper[Any] | None = None,
    ) -> None:
        """Append the items in one atomic write (with the turn's checkpoint when enabled).

        Raises:
            InvalidPayloadError: An item is not plain JSON; nothing is written.
            ConflictError: Another writer checkpointed this session since this one last
                did; nothing is written, and the next call starts from the new head.
            StoreUnavailableError: The connection broke. With checkpoints on, the write
                was retried (``write_attempts``) and the items are stored at most once.
                Without, the append is not retried (it has no id, so a retry after a lost
                reply could store the items twice): whether they were stored is unknown.
        """
        if not items:
            return
        stored = [wrap_item(item) for item in items]
        if not self._checkpoints:
            await self.store.append(self.session_id, ITEMS_LOG, stored)
            return
        await self._checkpoint(stored, wrapper)

    async def pop_item(
        self, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> TResponseInputItem | None:
        """Remove and return the newest item; concurrent callers never get the same one.

        An item that cannot be read is put back before the error is raised.
        """
        stored = await self.store.pop(self.session_id, ITEMS_LOG)
        if stored is None:
            return None
        try:
            return cast("TResponseInputItem", self._formats.unwrap(stored, where=self._where))
        except AgentPersistError:
            await self.store.append(self.session_id, ITEMS_LOG, [stored])
            raise

    async def clear_session(self, *, wrapper: RunContextWrapper[Any] | None = None) -> None:
        """Remove every item (checkpoints keep the items they saw)."""
        await self.store.clear_log(self.session_id, ITEMS_LOG)

    # -- checkpoints -----------------------------------------------------------------------

    async def head(self) -> Envelope | None:
        """The session's latest checkpoint envelope (any kind), or ``None``."""
        try:
            self._head = await self.store.get(self.session_id)
        except ThreadNotFoundError:
            self._head = None
        self._head_loaded = True
        return self._head

    async def put(
        self,
        envelope: Envelope,
        *,
        appends: Sequence[Any] = (),
        logs: Mapping[str, Sequence[Any]] | None = None,
    ) -> Envelope:
        """Write ``envelope`` as the next checkpoint of this session, with item appends.

        ``envelope.parent_id`` and ``step`` are set from the session's head. Used by the
        turn checkpoints and by :mod:`.run_state`, so both share one linear history.
        ``logs`` appends to other logs in the same atomic write (the run's ``config``).
        A write the connection broke is retried with the same envelope (``write_attempts``);
        if it still fails, the head is read again before the next write, since the last
        attempt may have been committed.
        """
        head = self._head if self._head_loaded else await self.head()
        envelope = envelope.replace(
            thread_id=self.session_id,
            parent_id=None if head is None else head.checkpoint_id,
            step=0 if head is None else head.step + 1,
        )
        try:
            merged = {**(logs or {}), **({ITEMS_LOG: appends} if appends else {})}
            saved = await put_retrying(
                self.store,
                envelope,
                appends=merged or None,
                attempts=self._write_attempts,
                logger=logger,
            )
        except (ConflictError, StoreUnavailableError):
            self._head_loaded = False
            raise
        self._head = saved
        return saved

    async def _checkpoint(
        self, stored: list[dict[str, Any]], wrapper: RunContextWrapper[Any] | None
    ) -> None:
        usage = wrapper.usage if wrapper is not None else None
        payload = {
            "state": await call_state_hook(self._state, wrapper),
            "usage": usage_dict(usage),
            "turn_usage": self._usage.turn(usage),
            "items": len(stored),
        }
        envelope = Envelope.create(
            kind=TURN_KIND,
            schema_version=1,
            thread_id=self.session_id,
            payload=payload,
            producer=producer(),
        )
        await self.put(envelope, appends=stored)

    async def last_checkpoint(self) -> TurnCheckpoint | None:
        """The newest per-turn checkpoint (skipping saved run states), or ``None``."""
        try:
            history = await self.store.list_checkpoints(self.session_id)
        except ThreadNotFoundError:
            return None
        for envelope in history:
            if envelope.kind == TURN_KIND:
                return TurnCheckpoint.from_envelope(envelope)
        return None
