"""Where appended log items will land, known before they are sealed (encrypted stores only).

An encrypting codec binds each log item to its position (its ``seq``: the log's version
its append produced), so the item must be sealed before the store numbers it. The writer
therefore says which ``seq`` the first item of each log must take; the back end checks it
inside its atomic write and, when another writer moved the log since, refuses the whole
write with :class:`PositionsMoved` (nothing written) naming the positions it would give
now. The writer re-seals at those and tries again.

    guess = positions.guess(thread_id, {"transcript": False})   # {"transcript": 8}
    ... back end: raise PositionsMoved({"transcript": 9}) when the log is at version 8 ...
    positions.learn(thread_id, {"transcript": 12})               # after appending 9..12

Guesses come from this store object's own writes and from the heads it read (the common
case: one worker holds the thread, and resumed it by reading its head), so a write costs no
extra round trip; a wrong guess costs one refused attempt.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

from ..errors import AgentPersistError

__all__ = ["MAX_ATTEMPTS", "PositionCache", "PositionsMoved"]

MAX_ATTEMPTS = 16
"""How many times a write re-seals after other writers moved its logs before it gives up."""
_REMEMBERED = 4096
"""Threads whose log versions a store remembers."""


class PositionsMoved(AgentPersistError):
    """Internal: the logs are not where the items were sealed for; nothing was written.

    Raised by a back end's write and caught by :class:`~agent_persist.stores.base.BaseStore`,
    which re-seals; it never reaches a caller.
    """

    def __init__(self, first: Mapping[str, int]) -> None:
        super().__init__(f"log positions moved: {dict(first)!r}")
        self.first = dict(first)
        """The ``seq`` the first appended item of each log would take now."""


def first_after(version: int, live: bool, *, clearing: bool) -> int:
    """The ``seq`` of the first item appended to a log at ``version`` (cleared first?).

    A clear of a log with live items is one version of its own; of an empty log, none.
    """
    return version + 1 + (1 if clearing and live else 0)


class PositionCache:
    """The last known version of recently written logs, per thread (bounded, least recent out).

    A store may serve threads that each run their own event loop, so every method holds a
    lock (each is a few dictionary operations).
    """

    def __init__(self) -> None:
        self._threads: OrderedDict[str, dict[str, tuple[int, bool]]] = OrderedDict()
        self._lock = threading.Lock()

    def guess(self, thread_id: str, logs: Mapping[str, bool]) -> dict[str, int]:
        """Where the first item of each log will land; ``logs`` maps name to "cleared first".

        A log never seen is guessed new (``seq`` 1), as on a new thread.
        """
        with self._lock:
            known = self._threads.get(thread_id, {})
            return {
                name: first_after(*known.get(name, (0, False)), clearing=clearing)
                for name, clearing in logs.items()
            }

    def learn(self, thread_id: str, versions: Mapping[str, int], *, live: bool = True) -> None:
        """Record the logs' versions after a write (``live``: they hold items now)."""
        with self._lock:
            self._learn(thread_id, {name: (version, live) for name, version in versions.items()})

    def _learn(self, thread_id: str, versions: Mapping[str, tuple[int, bool]]) -> None:
        known = self._threads.setdefault(thread_id, {})
        known.update(versions)
        self._threads.move_to_end(thread_id)
        while len(self._threads) > _REMEMBERED:
            self._threads.popitem(last=False)

    def suppose(self, thread_id: str, versions: Mapping[str, int]) -> None:
        """Versions read (a thread's head, say), kept only for the logs nothing is known of.

        A store object that resumes a thread written by another seals its first write where
        the head says, instead of guessing the logs new and being refused once.
        """
        with self._lock:
            known = self._threads.get(thread_id, {})
            unknown = {n: (v, True) for n, v in versions.items() if n not in known}
            if unknown:
                self._learn(thread_id, unknown)

    def cleared(self, thread_id: str, log: str) -> None:
        """A clear of the log through this store: one version more if it held items."""
        with self._lock:
            known = self._threads.get(thread_id, {}).get(log)
            if known is not None:
                version, live = known
                self._learn(thread_id, {log: (version + 1 if live else version, False)})

    def popped(self, thread_id: str, log: str) -> None:
        """An item popped from the log through this store: one version more."""
        with self._lock:
            known = self._threads.get(thread_id, {}).get(log)
            if known is not None:  # whether items are left is a guess
                self._learn(thread_id, {log: (known[0] + 1, True)})

    def forget(self, thread_id: str, log: str | None = None) -> None:
        """Drop what is known of a log (or of every log of the thread)."""
        with self._lock:
            if log is None:
                self._threads.pop(thread_id, None)
            else:
                self._threads.get(thread_id, {}).pop(log, None)
