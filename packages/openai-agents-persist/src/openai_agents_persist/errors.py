"""The adapter's own errors, each a subclass of the core hierarchy so one ``except`` catches all.

from agent_persist.errors import AgentPersistError
from openai_agents_persist.errors import MissingToolError

try:
    state = await load_run_state(store, "user-1", agent)
except MissingToolError as exc:
    print(exc.names)            # the tools the saved run needs and the agent lacks
"""

from __future__ import annotations

from collections.abc import Iterable

from agent_persist.errors import (
    AgentPersistError,
    CorruptCheckpointError,
    FutureVersionError,
    MigrationError,
    NotFoundError,
)

__all__ = [
    "CorruptItemError",
    "DamagedItemError",
    "FutureItemFormatError",
    "InvalidLimitError",
    "MissingAgentError",
    "MissingToolError",
    "PendingInterruptionError",
    "RunInProgressError",
    "UnknownRenameError",
]


class InvalidLimitError(AgentPersistError, ValueError):
    """A negative ``limit``: the SDK documents none, so it is refused instead of guessed."""


class CorruptItemError(CorruptCheckpointError):
    """A stored session item that is not a versioned item this adapter wrote."""


class DamagedItemError(CorruptItemError):
    """A session item that cannot be read, at a known position of the session's log.

    The message says how to go on: open the session with ``on_bad_item="skip"``, or move the
    item aside with ``agent-persist quarantine``. Nothing was changed.

    Attributes:
        session_id: The session (the store's thread id).
        log: The log holding the item (``"items"``).
        positions: Where the damaged items are, 0 being the oldest item of the log.
    """

    def __init__(self, message: str, *, session_id: str, log: str, positions: list[int]) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.log = log
        self.positions = positions


class FutureItemFormatError(FutureVersionError):
    """A session item written by a newer adapter; it is left untouched in the store."""


class _MissingNamesError(NotFoundError):
    """A saved run refers to names the loading agent graph does not have."""

    what = "names"

    def __init__(self, names: Iterable[str], available: Iterable[str], *, where: str) -> None:
        self.names = sorted(set(names))
        self.available = sorted(set(available))
        super().__init__(
            f"{where}: the saved run needs {self.what} {self.names} but the agent graph has "
            f"{self.available}; register a rename with rename_agent()/rename_tool() or load "
            "it with the agent that saved it"
        )


class MissingAgentError(_MissingNamesError):
    """A saved run names an agent the loading agent graph does not contain."""

    what = "agents"


class MissingToolError(_MissingNamesError):
    """A saved run names a tool that no agent of the loading graph offers."""

    what = "tools"


class PendingInterruptionError(AgentPersistError):
    """New input was given while the session still waits for a tool approval decision."""


class RunInProgressError(AgentPersistError):
    """A durable call gave new input while the session holds a run a crash cut short.

    The run is finished by calling again with its input (or none); ``resume=False`` gives it
    up and starts the new one.
    """


class UnknownRenameError(MigrationError):
    """A declared rename whose old name the saved run's configuration never had.

    Raised instead of loading, since the rename cannot be what turned the saved graph into
    the loading one (a typo, or a rename meant for another graph); nothing is changed.

    Attributes:
        what: ``"agent"`` or ``"tool"``.
        old: The name the rename expected in the saved configuration.
        new: The name it maps to, present in the loading graph.
    """

    def __init__(self, what: str, old: str, new: str, known: set[str], *, where: str) -> None:
        self.what, self.old, self.new = what, old, new
        super().__init__(
            f"{where}: rename_{what}({old!r}, {new!r}) names a {what} the saved run's "
            f"configuration does not have (it has {sorted(known)}); fix the old name"
        )
