"""A drop-in ``Session`` for the OpenAI Agents SDK over any agent-persist store.

    async with StoreSession.from_url("user-1", url="sqlite:///agents.db") as session:
        result = await Runner.run(agent, "Hello", session=session)

    store = open_store("redis://localhost:6379/0", ttl=timedelta(days=30))
    session = StoreSession("user-1", store=store, state=lambda ctx: ctx.context.snapshot())

The session id is the store's thread id and the items are its ``items`` log, so ``get_items``
is a ``tail_lines``/``read_log_lines`` parsed at once (:mod:`._item_lines`), ``add_items``
one atomic append (or, with checkpoints on, one
atomic ``put`` of the turn's items and a checkpoint), ``pop_item`` a ``pop`` and
``clear_session`` a ``clear_log``. Its results equal the SDK's ``SQLiteSession`` on every
sequence of operations (``tests/openai_agents/test_session_differential.py``), on every store.

A stored item that cannot be read (damaged bytes, or JSON that is not a session item) raises
:class:`~openai_agents_persist.errors.DamagedItemError` naming the session, the log and the
item's position, with what to do next; ``on_bad_item="skip"`` leaves such items out of
``get_items`` instead, with one warning each. ``pop_item`` never removes one nor steps over
it: it raises in both modes, and ``agent-persist quarantine`` moves the item aside.

On a store opened with ``encryption=`` every item is sealed by the store, and ``ttl=600``
gives the SDK ``EncryptedSession``'s expiry: items older than the ttl are skipped on read and
dropped by ``pop_item`` (:mod:`._item_ttl`); the write time is sealed with the item.

Under the SDK's ``EncryptedSession``, use :class:`~openai_agents_persist.EncryptedStoreSession`:
the SDK's wrapper authenticates items before popping them only over its own ``SQLiteSession``
and, over any other session, drops every item a wrong key cannot decrypt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, cast

from agents import RunContextWrapper, SessionSettings, TResponseInputItem
from agents.memory.session_settings import coerce_session_settings, resolve_session_limit
from typing_extensions import Self

from agent_persist import BaseStore, Envelope, Lease, open_store
from agent_persist._journal import Journal
from agent_persist.damaged_items import read_around_damage
from agent_persist.errors import (
    AgentPersistError,
    ConflictError,
    CorruptCheckpointError,
    StoreUnavailableError,
    ThreadNotFoundError,
)
from agent_persist.journal import JOURNAL_LOG
from agent_persist.retry import DEFAULT_WRITE_ATTEMPTS, check_attempts, put_retrying
from agent_persist.telemetry import resuming

from ._bad_items import BadItem, BadItemPolicy, OnBadItem, logger, reason_of
from ._deprecated import warn_renamed
from ._item_lines import current_items, parse_lines, stamped_items
from ._item_ttl import Clock, ItemTTL
from .checkpoints import (
    TURN_KIND,
    StateHook,
    TurnCheckpoint,
    UsageTracker,
    call_state_hook,
    producer,
    usage_dict,
)
from .errors import CorruptItemError, InvalidLimitError
from .items import ITEM_FORMATS, ItemFormats, is_encrypted_envelope, wrap_item
from .retention import touch
from .summaries import SUMMARIES_LOG, SummaryRecord
from .tool_outputs import AUDIT_LOG, StoreToolOutputs

__all__ = ["ITEMS_LOG", "StoreSession"]

_CALL_LOOKBACK = 50
"""How many recent history items a long output's ``function_call`` is looked for in."""

ITEMS_LOG = "items"
"""The name of the log that holds a session's items."""


class StoreSession:
    """The SDK's ``Session`` protocol on an agent-persist store, with per-turn checkpoints.

    Every method takes the SDK's optional ``wrapper`` keyword, so the Runner passes the run
    context (usage, the user's context object) to each call.

    Args:
        session_id: The conversation; any string (it is data, never part of a query).
        store: Where items and checkpoints go; the caller opens and closes it.
        session_settings: The SDK's settings (or a dict of them, checked as the SDK's own
            sessions check it); ``limit`` is the default of ``get_items``.
        state: A hook returning the application state to record with every turn; giving
            one turns checkpoints on.
        checkpoints: Write a checkpoint envelope with every ``add_items`` (usage only when
            there is no ``state`` hook).
        item_formats: The item migrations to read with (the process-wide ones by default).
        refresh_on_read: Refresh the store's TTL on ``get_items`` too (one extra write).
        on_bad_item: ``"raise"`` (the default): a stored item that cannot be read raises
            :class:`~openai_agents_persist.errors.DamagedItemError`; ``"skip"``:
            ``get_items`` leaves it out and logs a warning naming it. ``pop_item`` raises
            in both modes rather than remove it or step over it.
        write_attempts: How many times a checkpoint write is tried while the store is
            unavailable (a broken connection), each retry logged as a warning on the
            ``openai_agents_persist`` logger. Safe because a retried put of a checkpoint
            that was committed returns it. Plain appends (checkpoints off) are not retried:
            they carry no id, so a retry after a lost reply could add the items twice.
        lease: Returns the lease every write of items and checkpoints must carry, called at
            each write (``@durable`` passes its :class:`agent_persist.leases.LeaseHolder`'s
            ``lease``): the store refuses a write whose lease no longer holds the session
            with ``LeaseLostError``, so a worker that lost it cannot write. ``pop_item`` and
            ``clear_session`` take no lease (the store's ``pop`` and ``clear_log`` have
            none).
        tool_outputs: A write-time policy for long tool outputs
            (:class:`~openai_agents_persist.tool_outputs.StoreToolOutputs`): the history
            stores them short, with a reference to the full output in the session's
            audit trail (its ``audit`` log; on SQL, a row of the tool-calls audit table).
        ttl: How long each item stays readable, in seconds (or a ``timedelta``), as the
            SDK's ``EncryptedSession(ttl=...)``: every item is stored with its write time,
            and ``get_items`` skips items older than ``ttl`` (``limit`` counts the readable
            ones) while ``pop_item`` drops them and returns the newest readable one. Items
            with no write time (written without a ``ttl``) count as expired. Expired items
            stay stored until popped, cleared or expired with the thread (the store's own
            ``ttl``, which is another thing: it removes a whole idle thread). ``None`` (the
            default): items never expire.
        clock: Where ``ttl`` reads the time (``time.time`` by default; a test passes a
            clock it controls).
    """

    def __init__(
        self,
        session_id: str,
        *,
        store: BaseStore,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        state: StateHook | None = None,
        checkpoints: bool = False,
        item_formats: ItemFormats = ITEM_FORMATS,
        refresh_on_read: bool = False,
        on_bad_item: OnBadItem = "raise",
        write_attempts: int = DEFAULT_WRITE_ATTEMPTS,
        lease: Callable[[], Lease] | None = None,
        tool_outputs: StoreToolOutputs | None = None,
        ttl: int | timedelta | None = None,
        clock: Clock = time.time,
    ) -> None:
        if not isinstance(session_id, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"session_id must be a str, got {type(session_id).__name__}")
        if lease is not None and not callable(lease):
            raise TypeError(f"lease must be a callable returning a Lease, got {lease!r}")
        if tool_outputs is not None and not isinstance(tool_outputs, StoreToolOutputs):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"tool_outputs must be a StoreToolOutputs, got {tool_outputs!r}")
        self.session_id = session_id
        self.session_settings = _session_settings(session_settings)
        self.store = store
        self._state = state
        self._checkpoints = checkpoints or state is not None
        self._formats = item_formats
        self._refresh_on_read = refresh_on_read
        self._write_attempts = check_attempts(write_attempts)
        self._lease = lease
        self._tool_outputs = tool_outputs
        self._ttl = ItemTTL.of(ttl, clock)
        self._usage = UsageTracker()
        self._head: Envelope | None = None
        self._head_loaded = False
        self._owns_store = False
        self._where = f"session {session_id!r}"
        self._bad_items = BadItemPolicy(on_bad_item, session_id=session_id, log=ITEMS_LOG)
        self._damaged_at: set[int] = set()
        """Positions found damaged by the last reads: where the next read cuts the log."""
        self._warned_plain_encrypted_pop = False
        self._journal: Journal | None = None
        self._run: dict[str, Any] | None = None

    def _durable(self, journal: Journal | None, run: dict[str, Any] | None) -> None:
        """Used by ``@durable``: checkpoints empty ``journal`` and mark turns with ``run``.

        Every checkpoint of the call then clears the journal log in its own write (the span
        it ended is saved) and carries the journal's note in its metadata; turn checkpoints
        carry ``run`` in their payload, so a crash leaves the run recognisable as unfinished.
        """
        self._journal, self._run = journal, run

    session_settings: SessionSettings | None
    """The SDK's settings: a plain attribute, as the SDK's ``Session`` protocol declares it
    (a property would not satisfy that protocol under a type checker); a dict or ``None``
    assigned is checked and converted by ``__setattr__``, as the SDK's sessions do."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "session_settings":
            value = _session_settings(value)
        super().__setattr__(name, value)

    @classmethod
    def from_url(
        cls,
        session_id: str,
        *,
        url: str,
        store_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Self:
        """A session on its own store opened from ``url``, as the SDK's sessions spell it.

        Like ``SQLAlchemySession.from_url`` and ``RedisSession.from_url``: synchronous, the
        session owns the store it opened and :meth:`close` (or ``async with``) closes it.

        Args:
            session_id: The conversation's id.
            url: A store URL (``sqlite:///agents.db``, ``postgresql://...``, ``redis://...``).
            store_options: Keyword arguments for :func:`agent_persist.open_store` (``ttl``,
                ``namespace``...).
            **kwargs: The session's own options (``session_settings``, ``state``...).
        """
        store = open_store(url, **dict(store_options or {}))
        # open_store does no I/O (the store connects on first use), so a session refused here
        # leaves no connection behind to close
        session = cls(session_id, store=store, **kwargs)
        session._owns_store = True
        return session

    @classmethod
    def open(cls, session_id: str, url: str = "sqlite:///agents.db", **options: Any) -> Self:
        """Deprecated: use :meth:`from_url`; removed in the next minor release.

        ``options`` split between the session (``session_settings``, ``state``...) and the
        store (``ttl``, ``namespace``...).
        """
        warn_renamed(
            f"{cls.__name__}.open(session_id, url)", f"{cls.__name__}.from_url(session_id, url=...)"
        )
        session_keys = {
            "session_settings",
            "state",
            "checkpoints",
            "item_formats",
            "refresh_on_read",
            "on_bad_item",
            "write_attempts",
            "lease",
            "tool_outputs",
            "ttl",
            "clock",
        }
        mine = {k: v for k, v in options.items() if k in session_keys}
        theirs = {k: v for k, v in options.items() if k not in session_keys}
        return cls.from_url(session_id, url=url, store_options=theirs, **mine)

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
        """Close the store if this session opened it (:meth:`from_url`)."""
        if self._owns_store:
            await self.store.close()

    # -- the Session protocol ------------------------------------------------------------

    async def get_items(
        self, limit: int | None = None, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> list[TResponseInputItem]:
        """The newest ``limit`` items, oldest first (all of them when there is no limit).

        ``limit`` falls back to ``session_settings.limit``; 0 gives ``[]``. With
        ``on_bad_item="skip"``, damaged items are left out and ``limit`` counts readable
        items, as in the SDK's own sessions; with a ``ttl``, so are expired items.

        Raises:
            InvalidLimitError: ``limit`` is negative.
            DamagedItemError: A stored item cannot be read (nothing is changed).
            FutureItemFormatError: A newer adapter wrote an item.
        """
        resolved = resolve_session_limit(limit, self.session_settings)
        if resolved is not None and resolved < 0:
            raise InvalidLimitError(f"{self._where}: limit must not be negative, got {resolved}")
        if resolved == 0:
            return []
        if self._damaged_at:
            items = None
        elif self._ttl is None:
            items = await self._read_fast(resolved)
        else:
            items = await self._read_fresh(resolved, self._ttl)
        if items is None:  # a damaged item somewhere: read around it
            items = await self._read_around_damage(resolved)
        if items and self._refresh_on_read:
            await touch(self.store, self.session_id)
        return items

    async def _read_fast(self, limit: int | None) -> list[Any] | None:
        """The items from one read and one parse, or ``None`` if an item cannot be read."""
        try:
            lines = await (
                self.store.read_log_lines(self.session_id, ITEMS_LOG)
                if limit is None
                else self.store.tail_lines(self.session_id, ITEMS_LOG, limit)
            )
        except CorruptCheckpointError:
            return None
        items = None if self._formats.renames else current_items(lines)
        if items is not None:
            return items  # the fast path: current format, no renames declared
        stored = parse_lines(lines)
        if stored is None:
            return None
        try:
            return self._formats.unwrap_all(stored, where=self._where)
        except CorruptItemError:
            return None

    async def _read_fresh(self, limit: int | None, ttl: ItemTTL) -> list[Any] | None:
        """The newest ``limit`` unexpired items, or ``None`` if an item cannot be read.

        As the SDK's ``EncryptedSession``: the newest ``limit`` stored items are read, and
        the window doubles while expired ones leave fewer than ``limit`` readable.
        """
        window = limit
        while True:
            try:
                lines = await (
                    self.store.read_log_lines(self.session_id, ITEMS_LOG)
                    if window is None
                    else self.store.tail_lines(self.session_id, ITEMS_LOG, window)
                )
            except CorruptCheckpointError:
                return None
            items = None if self._formats.renames else stamped_items(lines, ttl.oldest())
            if items is None:
                stored = parse_lines(lines)
                if stored is None:
                    return None
                try:
                    items = self._formats.unwrap_all(ttl.fresh(stored), where=self._where)
                except CorruptItemError:
                    return None
            if limit is None or window is None:
                return items
            if len(items) >= limit or (lines.count(b"\n") + 1 if lines else 0) < window:
                return items[-limit:]
            window *= 2

    async def _read_around_damage(self, limit: int | None) -> list[Any]:
        """Read item by item where needed, naming each damaged item (raise, or skip and log).

        Skipping reads older items until ``limit`` readable ones are found, as the SDK's
        ``SQLiteSession`` widens its window over rows that do not parse. The positions found
        are remembered, so the next read cuts the log around them at once (one read per
        part) instead of failing the whole-log read and halving again.
        """
        stop = await self.store.log_length(self.session_id, ITEMS_LOG)
        start = 0 if limit is None else max(0, stop - limit)
        items: list[Any] = []
        bad: list[BadItem] = []
        while True:
            older, older_bad = await self._read_range(start, stop)
            items, bad = older + items, older_bad + bad
            widen = self._bad_items.skips or self._ttl is not None
            if limit is None or len(items) >= limit or start == 0 or not widen:
                break
            start, stop = max(0, start - (limit - len(items))), start
        self._bad_items.handle(bad)
        return items if limit is None else items[-limit:]

    async def _read_range(self, start: int, stop: int) -> tuple[list[Any], list[BadItem]]:
        """The readable items of ``[start:stop]`` and the damaged ones."""
        parts = await read_around_damage(
            self.store,
            self.session_id,
            ITEMS_LOG,
            start=start,
            stop=stop,
            suspects=self._damaged_at,
        )
        items: list[Any] = []
        bad: list[BadItem] = []
        ttl = self._ttl
        for part in parts:
            if part.error is not None:
                bad.append(BadItem(part.start, reason_of(part.error), readable=False))
                continue
            values = part.values if ttl is None else ttl.fresh(part.values)
            try:
                items += self._formats.unwrap_all(values, where=self._where)
                continue
            except CorruptItemError:
                pass  # a value that is not an item: find it
            for position, value in enumerate(part.values, part.start):
                if ttl is not None and not ttl.is_fresh(value):
                    continue
                try:
                    items.append(self._formats.unwrap(value, where=self._where))
                except CorruptItemError as exc:
                    bad.append(BadItem(position, reason_of(exc), readable=True))
        outside = {p for p in self._damaged_at if not start <= p < stop}
        self._damaged_at = outside | {item.position for item in bad}
        return items, bad

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
        outputs: list[dict[str, Any]] = []
        policy = self._tool_outputs
        if policy is not None and any(policy.is_long(item) for item in items):
            start = await self.store.log_length(self.session_id, AUDIT_LOG)
            items, outputs = await policy.split(list(items), start=start, lookup=self._call)
        at = None if self._ttl is None else self._ttl.now()
        stored = [wrap_item(item, at=at) for item in items]
        if not self._checkpoints:
            if outputs:  # first, so a stored reference never points at nothing
                await self.store.append_audit(self.session_id, outputs, lease=self._held())
            await self.store.append(self.session_id, ITEMS_LOG, stored, lease=self._held())
            return
        await self._checkpoint(stored, wrapper, {AUDIT_LOG: outputs} if outputs else None)

    async def _call(self, call_id: str) -> dict[str, Any] | None:
        """The history's ``function_call`` item of ``call_id`` (its tool name), if recent.

        Called inside ``add_items``: a pure read (no ``refresh_on_read`` touch, no damage
        bookkeeping), and best effort: an item that cannot be read is stepped over and a
        read that fails gives ``None`` (the tool then shows as unknown), never an error
        that would refuse the write.
        """
        try:
            recent = await self._recent_values()
        except AgentPersistError:
            return None
        for value in reversed(recent):
            try:
                item = self._formats.unwrap(value, where=self._where)
            except AgentPersistError:
                continue
            if not isinstance(item, dict):
                continue
            fields = cast("dict[str, Any]", item)
            if fields.get("type") == "function_call" and fields.get("call_id") == call_id:
                return fields
        return None

    async def _recent_values(self) -> list[Any]:
        """The newest stored values for :meth:`_call`, read around damaged ones."""
        try:
            stored = parse_lines(
                await self.store.tail_lines(self.session_id, ITEMS_LOG, _CALL_LOOKBACK)
            )
        except CorruptCheckpointError:
            stored = None
        if stored is not None:
            return stored
        stop = await self.store.log_length(self.session_id, ITEMS_LOG)
        start = max(0, stop - _CALL_LOOKBACK)
        parts = await read_around_damage(
            self.store, self.session_id, ITEMS_LOG, start=start, stop=stop
        )
        return [value for part in parts for value in part.values]

    async def pop_item(
        self, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> TResponseInputItem | None:
        """Remove and return the newest item; concurrent callers never get the same one.

        The newest item is read before it is popped, so a damaged one is neither removed
        nor stepped over, whatever ``on_bad_item`` says: removing it would lose it (a store
        cannot put back bytes it cannot decode), stepping over it would remove an item the
        caller did not mean (the Runner pops to undo its newest input). With a ``ttl``,
        expired items are removed and skipped, as the SDK's ``EncryptedSession`` does; the
        newest unexpired one is returned (``None`` when none is left).

        Raises:
            DamagedItemError: The newest item cannot be read; it stays where it was.
            FutureItemFormatError: A newer adapter wrote it; it stays where it was.
        """
        item = await self._pop(None)
        if not self._warned_plain_encrypted_pop and is_encrypted_envelope(item):
            self._warned_plain_encrypted_pop = True
            logger.warning(
                "session %r: pop_item handed out an EncryptedSession envelope. The SDK's "
                "EncryptedSession authenticates an item before popping it only over its own "
                "SQLiteSession; over this session it drops every item it cannot decrypt, so "
                "one pop with a wrong key empties the session. Wrap this session with "
                "openai_agents_persist.EncryptedStoreSession instead",
                self.session_id,
            )
        return cast("TResponseInputItem | None", item)

    async def pop_item_checked(
        self,
        check: Callable[[Any], object],
        *,
        wrapper: RunContextWrapper[Any] | None = None,
    ) -> TResponseInputItem | None:
        """Remove and return the newest item only if ``check(item)`` returns.

        For a wrapper that must vet an item before it is gone (an encrypted session checks
        that it authenticates, as the SDK's ``EncryptedSession`` does inside a
        ``SQLiteSession`` transaction). When ``check`` raises, its error propagates and the
        item stays where it was: the newest item is checked before the pop, and checked
        again and put back if another writer changed it in between.

        Raises:
            DamagedItemError: The newest item cannot be read; it stays where it was.
        """
        return cast("TResponseInputItem | None", await self._pop(check))

    async def _pop(self, check: Callable[[Any], object] | None) -> Any:
        """Read the newest item, ``check`` it, pop it; ``None`` when there is none.

        With a ``ttl``, an expired item is checked and popped too, then dropped, and the
        next one tried (as the SDK's ``EncryptedSession`` authenticates even expired items
        before it removes them).
        """
        while True:
            newest = await self._newest()
            if not newest:
                return None
            if check is not None:
                check(newest[0])
            stored = await self._pop_stored()
            if stored is None:
                return None
            item = await self._unwrap_popped(stored)
            if check is not None and item != newest[0]:  # another writer got in between
                try:
                    check(item)
                except Exception:
                    await self.store.append(self.session_id, ITEMS_LOG, [stored])
                    raise
            if self._ttl is None or self._ttl.is_fresh(stored):
                return item

    async def _newest(self) -> list[Any]:
        """The newest item without removing it (``[]`` when there is none)."""
        try:
            newest = await self.store.tail(self.session_id, ITEMS_LOG, 1)
        except CorruptCheckpointError as exc:
            raise await self._damaged_newest(exc, readable=False) from exc
        try:
            return [self._formats.unwrap(stored, where=self._where) for stored in newest]
        except CorruptItemError as exc:
            raise await self._damaged_newest(exc, readable=True) from exc

    async def _pop_stored(self) -> Any:
        """Pop the newest stored item; the store keeps one it cannot decode, and so it stays."""
        try:
            return await self.store.pop(self.session_id, ITEMS_LOG)
        except CorruptCheckpointError as exc:
            raise await self._damaged_newest(exc, readable=False) from exc

    async def _unwrap_popped(self, stored: Any) -> Any:
        """The item inside a popped stored item; one that cannot be read is put back first."""
        try:
            return self._formats.unwrap(stored, where=self._where)
        except AgentPersistError as exc:
            await self.store.append(self.session_id, ITEMS_LOG, [stored])
            if isinstance(exc, CorruptItemError):
                raise await self._damaged_newest(exc, readable=True) from exc
            raise

    async def _damaged_newest(self, exc: AgentPersistError, *, readable: bool) -> Exception:
        position = await self.store.log_length(self.session_id, ITEMS_LOG) - 1
        bad = BadItem(position, reason_of(exc), readable=readable)
        return self._bad_items.error([bad], newest=True)

    async def clear_session(self, *, wrapper: RunContextWrapper[Any] | None = None) -> None:
        """Remove every item and the running summary of them.

        Checkpoints keep the items they saw; the full tool outputs stay in the session's
        audit trail (its ``audit`` log) until the thread is deleted.
        """
        await self.store.clear_log(self.session_id, ITEMS_LOG)
        await self.store.clear_log(self.session_id, SUMMARIES_LOG)

    # -- the running summary -----------------------------------------------------------

    async def latest_summary(self) -> SummaryRecord | None:
        """The running summary in use (the newest of the ``summaries`` log), or ``None``.

        A stored record that is not one (damaged, or written by hand) gives ``None``: the
        policy then summarises from the start again.
        """
        try:
            newest = await self.store.tail(self.session_id, SUMMARIES_LOG, 1)
        except CorruptCheckpointError:
            logger.warning("session %r: the stored summary cannot be read", self.session_id)
            return None
        return SummaryRecord.from_json(newest[0]) if newest else None

    async def add_summary(self, record: SummaryRecord) -> None:
        """Append ``record`` to the ``summaries`` log (with the session's lease, if any)."""
        await self.store.append(
            self.session_id, SUMMARIES_LOG, [record.to_json()], lease=self._held()
        )

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
        attempt may have been committed. With a ``lease``, the write carries it.

        Raises:
            LeaseLostError: The session's lease no longer holds it; nothing is written.
        """
        if not self._head_loaded:  # the first write of this object: continue the session
            with resuming(logger, kind=envelope.kind, thread_id=self.session_id) as resume:
                resume.found(await self.head())
        head = self._head
        journal = self._journal
        if journal is not None and journal.failure is not None:
            raise journal.failure  # the SDK may have swallowed it: never checkpoint past it
        note = None if journal is None else journal.take_note()
        envelope = envelope.replace(
            thread_id=self.session_id,
            parent_id=None if head is None else head.checkpoint_id,
            step=0 if head is None else head.step + 1,
            metadata=envelope.metadata if note is None else {**envelope.metadata, "journal": note},
        )
        try:
            merged = {**(logs or {}), **({ITEMS_LOG: appends} if appends else {})}
            saved = await put_retrying(
                self.store,
                envelope,
                appends=merged or None,
                lease=self._held(),
                clear_logs=() if journal is None else (JOURNAL_LOG,),
                attempts=self._write_attempts,
                logger=logger,
            )
        except (ConflictError, StoreUnavailableError):
            self._head_loaded = False
            raise
        self._head = saved
        if journal is not None:
            journal.checkpointed()
        return saved

    def _held(self) -> Lease | None:
        """The lease this write carries, if the session was given one."""
        return None if self._lease is None else self._lease()

    async def _checkpoint(
        self,
        stored: list[dict[str, Any]],
        wrapper: RunContextWrapper[Any] | None,
        logs: Mapping[str, Sequence[Any]] | None = None,
    ) -> None:
        usage = wrapper.usage if wrapper is not None else None
        payload = {
            "state": await call_state_hook(self._state, wrapper),
            "usage": usage_dict(usage),
            "turn_usage": self._usage.turn(usage),
            "items": len(stored),
        }
        if self._run is not None:
            payload["run"] = self._run
        envelope = Envelope.create(
            kind=TURN_KIND,
            schema_version=1,
            thread_id=self.session_id,
            payload=payload,
            producer=producer(),
        )
        await self.put(envelope, appends=stored, logs=logs)

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


def _session_settings(value: SessionSettings | dict[str, Any] | None) -> SessionSettings:
    """``value`` as the SDK's own sessions take it: a ``SessionSettings``, a dict or ``None``."""
    if value is None:
        return SessionSettings()
    if not isinstance(value, SessionSettings | dict):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(
            "session_settings must be a SessionSettings, a dict or None, "
            f"got {type(value).__name__}"
        )
    try:
        return coerce_session_settings(value)
    except TypeError as exc:  # a key SessionSettings does not have
        raise TypeError(f"session_settings: {exc}") from exc
    except ValueError as exc:  # pydantic's ValidationError: a value of the wrong type
        raise ValueError(f"session_settings: {' '.join(str(exc).split())}") from exc
