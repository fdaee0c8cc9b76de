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

Guesses come from this store object's own writes (the common case: one worker holds the
thread), so a write costs no extra round trip; a wrong guess costs one refused attempt.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from ..errors import AgentPersistError

__all__ = ["MAX_ATTEMPTS", "PositionCache", "PositionsMoved"]

MAX_ATTEMPTS = 16
"""How many times a write re-seals after other writers moved its logs before it gives up."""
_REMEMBERED = 4096


class PositionsMoved(AgentPersistError):
    """Internal: the logs are not where the items were sealed for; nothing was written.

    Raised by a back end's write and caught by :class:`~agent_persist.stores.base.BaseStore`,
    which re-seals; it never reaches a caller.
    """

    def __init__(self, first: Mapping[str, int]) -> None:
        super().__init__(f"log positions moved: {dict(first)!r}")
        self.first = dict(first)
        """The ``seq`` the first appended item of each log would take now."""


def first_after(version: int, *, clearing: bool, live: bool) -> int:
    """The ``seq`` of the first item appended to a log at ``version`` (cleared first?).

    A clear of a log with live items is one version of its own; of an empty log, none.
    """
    return version + 1 + (1 if clearing and live else 0)


class PositionCache:
    """The last known version of recently written logs, per thread (bounded, least recent out)."""

    def __init__(self) -> None:
        self._versions: OrderedDict[tuple[str, str], tuple[int, bool]] = OrderedDict()

    def guess(self, thread_id: str, logs: Mapping[str, bool]) -> dict[str, int]:
        """Where the first item of each log will land; ``logs`` maps name to "cleared first".

        A log never seen is guessed new (``seq`` 1), as on a new thread.
        """
        guessed: dict[str, int] = {}
        for name, clearing in logs.items():
            version, live = self._versions.get((thread_id, name), (0, False))
            guessed[name] = first_after(version, clearing=clearing, live=live)
        return guessed

    def learn(self, thread_id: str, versions: Mapping[str, int], *, live: bool = True) -> None:
        """Record the logs' versions after a write (``live``: they hold items now)."""
        for name, version in versions.items():
            key = (thread_id, name)
            self._versions[key] = (version, live)
            self._versions.move_to_end(key)
        while len(self._versions) > _REMEMBERED:
            self._versions.popitem(last=False)

    def cleared(self, thread_id: str, log: str) -> None:
        """A clear of the log through this store: one version more if it held items."""
        known = self._versions.get((thread_id, log))
        if known is not None:
            version, live = known
            self.learn(thread_id, {log: version + 1 if live else version}, live=False)

    def popped(self, thread_id: str, log: str) -> None:
        """An item popped from the log through this store: one version more."""
        known = self._versions.get((thread_id, log))
        if known is not None:
            self.learn(thread_id, {log: known[0] + 1})  # whether items are left: guessed

    def forget(self, thread_id: str, log: str | None = None) -> None:
        """Drop what is known of a log (or of every log of the thread)."""
        if log is not None:
            self._versions.pop((thread_id, log), None)
            return
        for key in [key for key in self._versions if key[0] == thread_id]:
            del self._versions[key]
