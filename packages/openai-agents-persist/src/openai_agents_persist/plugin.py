"""The ``agent_persist.plugins`` entry point: this adapter's kinds, for the core's registry.

registry = default_registry()      # calls register(registry) for every installed adapter
registry.current_version("openai_agents.run_state")   # 1
"""

from __future__ import annotations

from agent_persist import Registry

from .checkpoints import RUN_STATE_KIND, TURN_KIND

__all__ = ["register"]


def register(registry: Registry) -> None:
    """Declare the per-turn checkpoint and saved run state kinds at schema version 1."""
    registry.register_kind(TURN_KIND, version=1)
    registry.register_kind(RUN_STATE_KIND, version=1)
