"""The ``agent_persist.plugins`` entry point: this adapter's kinds, for the core's registry.

It imports nothing of the SDK (nor does the package's ``__init__``), so tools that load every
plugin, like the ``agent-persist`` command, start in a fraction of a second.

registry = default_registry()      # calls register(registry) for every installed adapter
registry.current_version("openai_agents.run_state")   # 1
"""

from __future__ import annotations

from typing import Any
from weakref import WeakSet

from agent_persist import FingerprintChange, Registry

from .drift import NO_STATE_CHANGE

__all__ = ["RUN_STATE_KIND", "TURN_KIND", "ensure_registered", "register"]

TURN_KIND = "openai_agents.turn"
"""Envelope kind of a per-turn checkpoint: ``{"state", "usage", "turn_usage", "items"}``."""

RUN_STATE_KIND = "openai_agents.run_state"
"""Envelope kind of a saved ``RunState``: ``{"run_state": <RunState.to_json()>}``."""

_REGISTERED: WeakSet[Registry] = WeakSet()


def _state_unchanged(payload: Any, change: FingerprintChange) -> Any:
    """New instructions, models, model settings or tools need nothing from the saved state.

    The SDK takes them from the live agents when the run resumes, so these changes load as
    they are under the ``migrate`` drift policy.
    """
    return payload


def register(registry: Registry) -> None:
    """Declare the per-turn checkpoint and saved run state kinds at schema version 1.

    Also covers, for saved runs, the drift categories that need no rewrite of the state.
    """
    registry.register_kind(TURN_KIND, version=1)
    registry.register_kind(RUN_STATE_KIND, version=1)
    registry.on_fingerprint_change(RUN_STATE_KIND, covers=NO_STATE_CHANGE)(_state_unchanged)
    _REGISTERED.add(registry)


def ensure_registered(registry: Registry) -> None:
    """Register this adapter's kinds on ``registry`` once (renames may be declared first)."""
    if registry not in _REGISTERED:
        register(registry)
