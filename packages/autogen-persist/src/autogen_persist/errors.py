"""The errors autogen-persist adds to agent-persist's hierarchy.

    try:
        result = await team.run(task="Write a poem.")
    except IncompatibleCheckpointError as exc:   # the team changed since the checkpoint
        print(exc)

Everything here derives from :class:`agent_persist.errors.AgentPersistError`, so one
``except`` catches the core's errors and these alike. Each message names the thread and says
what to do. ``ThreadBusyError`` is the core's :class:`agent_persist.errors.ThreadBusyError`
(the Agents SDK adapter raises it too), re-exported here.
"""

from __future__ import annotations

from agent_persist.errors import AgentPersistError, ConfigDriftError, ThreadBusyError

__all__ = [
    "AutogenPersistError",
    "IncompatibleCheckpointError",
    "KindMismatchError",
    "MigrationInputError",
    "ParticipantsMismatchError",
    "ResumeNotSupportedError",
    "RunInProgressError",
    "ThreadBusyError",
    "UnsupportedComponentError",
]


class AutogenPersistError(AgentPersistError):
    """Base class of the errors only the AutoGen adapter raises."""


class IncompatibleCheckpointError(AutogenPersistError, ValueError):
    """The checkpoint cannot be loaded into this team or agent; nothing was loaded."""


class KindMismatchError(IncompatibleCheckpointError):
    """The checkpoint is of another kind (an agent's loaded into a team, or a foreign kind)."""


class ParticipantsMismatchError(IncompatibleCheckpointError, ConfigDriftError):
    """The team's type, participants or their order differ from the checkpoint's.

    AutoGen would fail later or, worse, silently pick another speaker (FINDINGS §1); a
    migration (:mod:`autogen_persist.migrations`, ``Registry.on_fingerprint_change``) is the
    way to carry state across. It is a ``ConfigDriftError`` too: ``changes`` lists the
    layout changes no migration covered.
    """


class RunInProgressError(AutogenPersistError):
    """A new task was given while the thread holds an unfinished run."""


class ResumeNotSupportedError(AutogenPersistError):
    """The team cannot continue an unfinished run from a checkpoint (MagenticOne)."""


class UnsupportedComponentError(AutogenPersistError, TypeError):
    """A team, agent or termination condition whose state this adapter cannot capture."""


class MigrationInputError(AutogenPersistError, ValueError):
    """The stored state does not hold what a declared migration names (an unknown agent...).

    Raised inside a migration, so the registry reports it as ``MigrationFailedError`` (this
    error its ``__cause__``) and the stored data stays as it was.
    """
