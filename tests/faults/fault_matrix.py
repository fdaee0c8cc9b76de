"""Every store operation with its connection broken before, during and after it.

    tally = Tally("postgresql")
    await run_matrix(store, proxy, tally, reopen=make_store)
    assert tally.raw == []

For each operation the matrix injects, one at a time:

* ``before``: every open connection is cut just before the call (a pooled connection died
  while idle);
* ``refused``: the same, and the server refuses new connections until the call is over;
* ``request``: the connection dies after the first byte of the call's request (the server
  never gets a whole request);
* ``reply-mid``: the connection dies in the middle of the server's first reply;
* ``reply-k`` for k = 1, 2, ...: the call's k-th round trip runs on the server to its end
  and its reply is lost (the last k is a write's ``COMMIT`` or Redis script: the change is
  made and the client never hears of it). The sweep stops at the first k the call does not
  reach.

Each fault must end the call with an agent-persist error (``StoreUnavailableError`` for a
lost connection) or, when the driver could not notice (a reply lost after the result was
already in hand), with a result; never a raw driver exception. The same operation then runs
again on the same store object and must work. At the end every put the store acknowledged
must be readable through a connection that never saw the proxy.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fault_proxy import FaultProxy, Match

from agent_persist.envelope import Envelope
from agent_persist.errors import (
    AgentPersistError,
    StoreUnavailableError,
    ThreadNotFoundError,
)
from agent_persist.stores.base import BaseStore
from agent_persist.testing.conformance import envelope

Proxied = tuple[BaseStore, FaultProxy, Match]
"""A store behind a proxy, the proxy, and what the store's put commit looks like on the wire."""

MAIN = "main"
LOG = "log"
JOURNAL = "$journal"
MAX_ROUND_TRIPS = 40
"""No operation takes this many round trips: a sweep that gets here is a proxy bug."""


@dataclass
class Tally:
    """What the faults of one store came to."""

    store: str
    injected: int = 0
    typed: int = 0
    """Calls that ended with an agent-persist error (``unavailable`` of them a lost connection)."""
    unavailable: int = 0
    succeeded: int = 0
    """Calls that returned although their connection broke (the result was already in hand)."""
    recovered: int = 0
    lost: int = 0
    raw: list[str] = field(default_factory=lambda: [])
    """Calls that let a driver's exception through, or did not recover: must stay empty."""
    acknowledged: list[Envelope] = field(default_factory=lambda: [])

    def row(self) -> str:
        """One line of the table :func:`table` prints."""
        return (
            f"{self.store:<12}{self.injected:>9}{self.typed:>7}{self.unavailable:>13}"
            f"{self.succeeded:>11}{len(self.raw):>5}{self.recovered:>11}{self.lost:>6}"
        )


def table(tallies: list[Tally]) -> str:
    """The faults table: one row per store."""
    head = (
        f"{'store':<12}{'injected':>9}{'typed':>7}{'unavailable':>13}"
        f"{'succeeded':>11}{'raw':>5}{'recovered':>11}{'lost':>6}"
    )
    return "\n".join([head, *(tally.row() for tally in tallies)])


Call = Callable[[], Awaitable[Any]]
Prepare = Callable[[BaseStore], Awaitable[Call]]


class Operations:
    """Each store operation as ``prepare(store) -> call``: setup outside, the call faulted."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self._ids = itertools.count()

    def fresh(self, what: str) -> str:
        """A thread id no earlier call used."""
        return f"{what}-{next(self._ids)}"

    async def head(self, store: BaseStore) -> Envelope | None:
        try:
            return await store.get(MAIN)
        except ThreadNotFoundError:
            return None

    def all(self) -> dict[str, Prepare]:
        """Every operation of the store contract, by name."""
        return {
            "put": self.put,
            "put clear_logs": self.put_clearing,
            "get": self._simple(lambda s: s.get(MAIN)),
            "list_checkpoints": self._simple(lambda s: s.list_checkpoints(MAIN)),
            "list_threads": self._simple(lambda s: s.list_threads(limit=5)),
            "append": self._simple(lambda s: s.append(MAIN, LOG, ["appended"])),
            "read_log": self._simple(lambda s: s.read_log(MAIN, LOG)),
            "read_log_lines": self._simple(lambda s: s.read_log_lines(MAIN, LOG)),
            "read_logs": self.read_logs,
            "tail": self._simple(lambda s: s.tail(MAIN, LOG, 3)),
            "tail_lines": self._simple(lambda s: s.tail_lines(MAIN, LOG, 3)),
            "log_length": self._simple(lambda s: s.log_length(MAIN, LOG)),
            "pop": self.pop,
            "clear_log": self.clear_log,
            "acquire_lease": self.acquire_lease,
            "renew_lease": self.renew_lease,
            "release_lease": self.release_lease,
            "prune": self.prune,
            "delete_thread": self.delete_thread,
            "fork": self.fork,
            "purge_expired": self._simple(lambda s: s.purge_expired()),
        }

    @staticmethod
    def _simple(fn: Callable[[BaseStore], Awaitable[Any]]) -> Prepare:
        async def prepare(store: BaseStore) -> Call:
            return lambda: fn(store)

        return prepare

    async def put(self, store: BaseStore) -> Call:
        head = await self.head(store)
        step = 0 if head is None else head.step + 1
        new = envelope(MAIN, parent=head, payload={"step": step})

        async def call() -> Envelope:
            saved = await store.put(new, appends={LOG: [f"item-{step}"]})
            self.tally.acknowledged.append(saved)
            return saved

        return call

    async def put_clearing(self, store: BaseStore) -> Call:
        """A put that empties the journal appended to since the last one (a turn's end)."""
        head = await self.head(store)
        step = 0 if head is None else head.step + 1
        new = envelope(MAIN, parent=head, payload={"step": step, "cleared": JOURNAL})
        await store.append(MAIN, JOURNAL, [f"call-{step}"])

        async def call() -> Envelope:
            saved = await store.put(new, appends={LOG: [f"item-{step}"]}, clear_logs=[JOURNAL])
            self.tally.acknowledged.append(saved)
            return saved

        return call

    async def pop(self, store: BaseStore) -> Call:
        await store.append(MAIN, "stack", ["popped"])
        return lambda: store.pop(MAIN, "stack")

    async def clear_log(self, store: BaseStore) -> Call:
        await store.append(MAIN, "scratch", ["cleared"])
        return lambda: store.clear_log(MAIN, "scratch")

    async def acquire_lease(self, store: BaseStore) -> Call:
        thread = self.fresh("leased")
        return lambda: store.acquire_lease(thread, "owner", ttl=timedelta(seconds=30))

    async def renew_lease(self, store: BaseStore) -> Call:
        lease = await store.acquire_lease(self.fresh("renewed"), "owner", ttl=timedelta(seconds=30))
        return lambda: store.renew_lease(lease, ttl=timedelta(seconds=60))

    async def release_lease(self, store: BaseStore) -> Call:
        thread = self.fresh("released")
        lease = await store.acquire_lease(thread, "owner", ttl=timedelta(seconds=30))
        return lambda: store.release_lease(lease)

    async def prune(self, store: BaseStore) -> Call:
        thread = self.fresh("pruned")
        first = await store.put(envelope(thread))
        await store.put(envelope(thread, parent=first))
        return lambda: store.prune(thread, keep_last=1)

    async def delete_thread(self, store: BaseStore) -> Call:
        thread = self.fresh("doomed")
        await store.put(envelope(thread), appends={LOG: ["x"]})
        return lambda: store.delete_thread(thread)

    async def read_logs(self, store: BaseStore) -> Call:
        head = await store.get(MAIN)
        return lambda: store.read_logs(MAIN, [LOG, "stack", "missing"], at=head)

    async def fork(self, store: BaseStore) -> Call:
        target = self.fresh("forked")
        return lambda: store.fork(MAIN, target)


Injection = Callable[[FaultProxy], bool]
"""Arms a fault (or strikes at once); ``True`` when it struck at once."""


def _before(proxy: FaultProxy) -> bool:
    return proxy.cut_all() > 0


def _refused(proxy: FaultProxy) -> bool:
    proxy.refusing = True  # until the call is over
    return proxy.cut_all() > 0


def _request(proxy: FaultProxy) -> bool:
    proxy.cut_after_bytes(1, direction="client")
    return False


def _reply_mid(proxy: FaultProxy) -> bool:
    proxy.cut_after_bytes(3, direction="server")
    return False


def _reply(nth: int) -> Injection:
    def arm(proxy: FaultProxy) -> bool:
        proxy.drop_reply(nth)
        return False

    return arm


async def inject(
    name: str,
    prepare: Prepare,
    store: BaseStore,
    proxy: FaultProxy,
    tally: Tally,
    injection: Injection,
    *,
    recover: Prepare | None = None,
) -> bool:
    """Run one faulted call and the recovery call after it; whether the fault struck."""
    call = await prepare(store)
    fired = proxy.fired
    struck_now = injection(proxy)
    outcome: BaseException | None = None
    try:
        await call()
    except Exception as exc:  # what the matrix exists to catch
        outcome = exc
    finally:
        proxy.refusing = False
    struck = struck_now or proxy.fired > fired
    if not struck:
        proxy.disarm()
        if outcome is not None:
            tally.raw.append(f"{name}: failed without a fault: {outcome!r}")
        return False
    tally.injected += 1
    if outcome is None:
        tally.succeeded += 1
    elif isinstance(outcome, AgentPersistError):
        tally.typed += 1
        tally.unavailable += isinstance(outcome, StoreUnavailableError)
    else:
        tally.raw.append(f"{name}: {type(outcome).__module__}.{type(outcome).__name__}: {outcome}")
    try:
        await (await (recover or prepare)(store))()
    except Exception as exc:
        tally.raw.append(f"{name}: did not recover: {exc!r}")
    else:
        tally.recovered += 1
    return True


async def run_matrix(
    store: BaseStore,
    proxy: FaultProxy,
    tally: Tally,
    *,
    reopen: Callable[[], Awaitable[BaseStore]],
) -> None:
    """Every operation under every fault, then ``setup`` on new store objects."""
    operations = Operations(tally)
    await (await operations.put(store))()
    for name, prepare in operations.all().items():
        for injection in (_before, _refused, _request, _reply_mid):
            await inject(name, prepare, store, proxy, tally, injection)
        for nth in range(1, MAX_ROUND_TRIPS):
            if not await inject(name, prepare, store, proxy, tally, _reply(nth)):
                break
        else:
            tally.raw.append(f"{name}: still round-tripping after {MAX_ROUND_TRIPS}")
    await _setup_faults(proxy, tally, reopen)


async def _setup_faults(
    proxy: FaultProxy, tally: Tally, reopen: Callable[[], Awaitable[BaseStore]]
) -> None:
    """``setup`` of a store that has not run it yet, faulted; then again on the same object."""

    async def prepare_setup(store: BaseStore) -> Call:
        return store.setup

    for injection in (_refused, _request, _reply_mid):
        store = await reopen()
        try:
            await inject("setup", prepare_setup, store, proxy, tally, injection)
        finally:
            await store.close()
    for nth in range(1, MAX_ROUND_TRIPS):
        store = await reopen()
        try:
            if not await inject("setup", prepare_setup, store, proxy, tally, _reply(nth)):
                break
        finally:
            await store.close()


async def lost_checkpoints(store: BaseStore, acknowledged: list[Envelope]) -> list[str]:
    """The acknowledged checkpoints ``store`` (a connection without faults) cannot read.

    One that cleared the journal (``put clear_logs``) must also read it empty.
    """
    missing: list[str] = []
    for saved in acknowledged:
        try:
            stored = await store.get(saved.thread_id, saved.checkpoint_id)
        except AgentPersistError as exc:
            missing.append(f"{saved.checkpoint_id}: {exc}")
            continue
        if stored.payload != saved.payload:
            missing.append(f"{saved.checkpoint_id}: payload differs")
        elif (
            isinstance(stored.payload, dict)
            and "cleared" in stored.payload
            and await store.read_log(saved.thread_id, JOURNAL, at=stored)
        ):
            missing.append(f"{saved.checkpoint_id}: sees the journal it cleared")
    return missing
