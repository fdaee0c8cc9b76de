"""SQLite locked by another connection: ``StoreUnavailableError``, then the same store works.

Another ``sqlite3`` connection holds the lock and the store waits only ``busy_timeout`` (a
few milliseconds) before giving up. A held write lock (WAL) stops every write and no read;
an exclusive lock (``locking_mode=EXCLUSIVE``) taken before the store connects stops
everything, ``setup`` included. A file that is not a database is ``CorruptCheckpointError``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fault_matrix import Call, Operations, Tally, lost_checkpoints

from agent_persist.errors import CorruptCheckpointError, StoreUnavailableError
from agent_persist.stores.sql import SQLStore

READS = {
    "get",
    "list_checkpoints",
    "list_threads",
    "read_log",
    "read_log_lines",
    "read_logs",
    "tail",
    "tail_lines",
    "log_length",
}
BUSY = 0.02


@contextmanager
def locked(path: Path, *, exclusive: bool) -> Generator[None, None, None]:
    """Hold ``path``'s write lock (or, ``exclusive``, every lock) from another connection."""
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        if exclusive:
            blocker.execute("PRAGMA locking_mode = EXCLUSIVE")
        blocker.execute("BEGIN EXCLUSIVE" if exclusive else "BEGIN IMMEDIATE")
        blocker.execute("SELECT count(*) FROM sqlite_master").fetchall()
        yield
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()


async def refused(call: Call, tally: Tally) -> bool:
    """Run ``call``; whether it raised ``StoreUnavailableError`` (anything else is noted)."""
    tally.injected += 1
    try:
        await call()
    except StoreUnavailableError as exc:
        tally.typed += 1
        tally.unavailable += 1
        message = str(exc)
    except Exception as exc:  # the test exists to catch it
        tally.raw.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
        return False
    else:
        tally.succeeded += 1
        return False
    assert "is locked" in message
    assert "busy_timeout" in message
    return True


async def test_a_locked_database_is_unavailable_and_the_store_recovers(
    tmp_path: Path, tallies: list[Tally]
) -> None:
    tally = Tally("sqlite")
    tallies.append(tally)
    path = tmp_path / "locked.db"
    store = SQLStore(f"sqlite:///{path}", busy_timeout=BUSY)
    operations = Operations(tally)
    try:
        await (await operations.put(store))()
        for name, prepare in operations.all().items():
            call = await prepare(store)
            with locked(path, exclusive=False):
                refused_now = await refused(call, tally)
            assert refused_now is (name not in READS), name
            await (await prepare(store))()  # the same store object, once the lock is gone
            tally.recovered += 1
        tally.lost = len(await lost_checkpoints(store, tally.acknowledged))
    finally:
        await store.close()
    assert tally.raw == []
    assert tally.lost == 0


async def test_an_exclusive_lock_stops_setup_and_reads_until_it_is_released(
    tmp_path: Path,
) -> None:
    tally = Tally("sqlite-exclusive")
    path = tmp_path / "exclusive.db"
    first = SQLStore(f"sqlite:///{path}")
    operations = Operations(tally)
    await (await operations.put(first))()
    await first.close()

    store = SQLStore(f"sqlite:///{path}", busy_timeout=BUSY)
    try:
        with locked(path, exclusive=True):
            assert await refused(store.setup, tally)
            for name in ("get", "read_log_lines", "tail_lines", "list_threads"):
                call = await operations.all()[name](store)
                assert await refused(call, tally), name
        await store.setup()
        assert await store.read_log("main", "log") == ["item-0"]
    finally:
        await store.close()
    assert tally.raw == []


async def test_a_file_that_is_not_a_database_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the tables you are looking for\n" * 100)
    store = SQLStore(f"sqlite:///{path}")
    try:
        with pytest.raises(CorruptCheckpointError, match="not a database"):
            await store.setup()
    finally:
        await store.close()
    assert path.read_bytes().startswith(b"these are not")
