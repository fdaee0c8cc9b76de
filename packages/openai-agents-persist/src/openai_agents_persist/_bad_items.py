"""What a session does with a stored item it cannot read: raise (the default), or skip and log.

    policy = BadItemPolicy("skip", session_id="user-1", log="items")
    policy.handle([BadItem(3, "CodecError: ...", readable=False)])   # one warning, no error

The SDK's own backends skip a row that does not parse, silently. Here the default raises
:class:`~openai_agents_persist.errors.DamagedItemError`, naming the session, the log and the
position, and saying how to go on: ``on_bad_item="skip"``, or ``agent-persist quarantine``
to move the item aside. Skipping logs one warning per damaged item and session object (not
one per read) on the ``openai_agents_persist`` logger.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from .errors import DamagedItemError

__all__ = ["BadItem", "BadItemPolicy", "OnBadItem", "reason_of"]

logger = logging.getLogger("openai_agents_persist")

OnBadItem = Literal["raise", "skip"]
"""``raise``: a damaged item stops the read; ``skip``: it is left out and logged."""


@dataclass(frozen=True, slots=True)
class BadItem:
    """A stored item a session cannot read, and where it is.

    ``readable`` tells that the store decodes it (it is JSON, just not a session item), so
    the quarantine command needs ``--force`` to move it.
    """

    position: int
    reason: str
    readable: bool


def reason_of(exc: BaseException) -> str:
    """An error as one line: its type and message."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


class BadItemPolicy:
    """Raise or skip-and-log the damaged items a session meets."""

    def __init__(self, on_bad_item: OnBadItem, *, session_id: str, log: str) -> None:
        if on_bad_item not in get_args(OnBadItem):
            raise ValueError(f"on_bad_item must be 'raise' or 'skip', got {on_bad_item!r}")
        self.skips = on_bad_item == "skip"
        self._session_id = session_id
        self._log = log
        self._reported: set[tuple[int, str]] = set()

    def handle(self, bad: Sequence[BadItem]) -> None:
        """Raise for ``bad`` items, or log each one not logged yet by this session."""
        if not bad:
            return
        if not self.skips:
            raise self.error(bad)
        for item in bad:
            if (item.position, item.reason) in self._reported:
                continue
            self._reported.add((item.position, item.reason))
            logger.warning(
                "session %r: skipped the damaged item at position %d of log %r (%s); "
                "`%s` moves it aside",
                self._session_id,
                item.position,
                self._log,
                item.reason,
                self.quarantine_command([item]),
            )

    def error(self, bad: Sequence[BadItem], *, newest: bool = False) -> DamagedItemError:
        """The error naming ``bad`` and how to go on (``newest``: met by a pop)."""
        positions = [item.position for item in bad]
        if newest:
            where = f"the newest item (position {positions[0]})"
        elif len(positions) == 1:
            where = f"the item at position {positions[0]}"
        else:
            where = f"the items at positions {', '.join(map(str, positions))}"
        return DamagedItemError(
            f"session {self._session_id!r}: {where} of log {self._log!r} cannot be read "
            f"({bad[0].reason}); nothing was changed. To go on, open the session with "
            "on_bad_item='skip' (damaged items are left out and logged), or move it aside "
            f"with `{self.quarantine_command(bad)}`",
            session_id=self._session_id,
            log=self._log,
            positions=positions,
        )

    def quarantine_command(self, bad: Sequence[BadItem]) -> str:
        """The ``agent-persist quarantine`` command line that moves ``bad`` aside."""
        thread = shlex.quote(self._session_id) if self._session_id.isprintable() else "THREAD"
        positions = " ".join(str(item.position) for item in bad)
        force = " --force" if any(item.readable for item in bad) else ""
        return (
            f"agent-persist quarantine --url STORE_URL {thread} {shlex.quote(self._log)} "
            f"{positions}{force}"
        )
