"""Deprecated: renamed :mod:`openai_agents_persist.migrations`, removed in the next minor release.

    from openai_agents_persist.migrations import rename_agent, rename_tool   # the new home

Every name still resolves here, with a ``DeprecationWarning`` naming its replacement.
"""

from __future__ import annotations

from typing import Any

from agent_persist import Registry

from . import migrations
from ._deprecated import warn_renamed
from .checkpoints import RUN_STATE_KIND

__all__: list[str] = []  # nothing new is imported from here


def _declared_renames(
    registry: Registry,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The agent and tool renames declared on ``registry``, ``(old, new)`` in order."""
    renames = registry.renames(RUN_STATE_KIND)
    return renames.get("agent", []), renames.get("tool", [])


def __getattr__(name: str) -> Any:
    if name == "declared_renames":
        warn_renamed(f"{__name__}.declared_renames", "Registry.renames('openai_agents.run_state')")
        return _declared_renames
    if name not in migrations.__all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warn_renamed(f"{__name__}.{name}", f"openai_agents_persist.migrations.{name}")
    return getattr(migrations, name)
