"""The agent-persist adapter for the OpenAI Agents SDK: a ``Session`` on every store.

    from openai_agents_persist import StoreSession

    async with StoreSession.from_url("user-1", url="sqlite:///agents.db") as session:
        result = await Runner.run(agent, "Hello", session=session)

Beyond the session: per-turn checkpoints of the application state (``state=``), runs that
wait for approval saved and resumed in another process (:func:`save_run_state`,
:func:`load_run_state`, :func:`durable`), rename migrations, context policies, an
audit trail, cross-session memory and retention.
"""

# pyright: reportUnusedImport=false
# ruff: noqa: F401
# The TYPE_CHECKING imports give type checkers the public names' types; at run time each
# name is imported on first use from where _EXPORTS says (a test checks the two agree).

from importlib import import_module
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; _EXPORTS below is what runs
    from agent_persist.drift import DriftOption

    from .audit import DEFAULT_PRICES, AuditHooks, AuditReport, AuditTrail
    from .checkpoints import RUN_STATE_KIND, TURN_KIND, StateHook, TurnCheckpoint
    from .decorator import durable
    from .drift import CATEGORIES, NO_STATE_CHANGE, config_changes
    from .encryption import EncryptedStoreSession, UnauthenticatedItemError
    from .errors import (
        CorruptItemError,
        DamagedItemError,
        FutureItemFormatError,
        InvalidLimitError,
        MissingAgentError,
        MissingToolError,
        PendingInterruptionError,
        RunInProgressError,
        UnknownRenameError,
    )
    from .fingerprint import agent_config, agent_fingerprint
    from .items import ITEM_FORMAT_VERSION, ITEM_FORMATS, ItemFormats, wrap_item
    from .migrations import rename_agent, rename_tool
    from .policies import SlidingWindow, SummaryPlusRecent, TrimToolOutputs, context_policy
    from .retention import cleanup_idle_sessions, touch
    from .run_state import load_run_state, pending_run_state, save_run_state
    from .session import ITEMS_LOG, StoreSession
    from .tool_outputs import StoreToolOutputs, full_tool_output
    from .user_memory import Fact, UserMemory

__version__ = _version("openai-agents-persist")

_EXPORTS = {
    "AuditHooks": ".audit",
    "AuditReport": ".audit",
    "AuditTrail": ".audit",
    "CATEGORIES": ".drift",
    "CorruptItemError": ".errors",
    "DEFAULT_PRICES": ".audit",
    "DamagedItemError": ".errors",
    "DriftOption": "agent_persist.drift",
    "EncryptedStoreSession": ".encryption",
    "Fact": ".user_memory",
    "FutureItemFormatError": ".errors",
    "ITEMS_LOG": ".session",
    "ITEM_FORMATS": ".items",
    "ITEM_FORMAT_VERSION": ".items",
    "InvalidLimitError": ".errors",
    "ItemFormats": ".items",
    "MissingAgentError": ".errors",
    "MissingToolError": ".errors",
    "NO_STATE_CHANGE": ".drift",
    "PendingInterruptionError": ".errors",
    "RunInProgressError": ".errors",
    "RUN_STATE_KIND": ".checkpoints",
    "SlidingWindow": ".policies",
    "StateHook": ".checkpoints",
    "StoreSession": ".session",
    "StoreToolOutputs": ".tool_outputs",
    "SummaryPlusRecent": ".policies",
    "TURN_KIND": ".checkpoints",
    "TrimToolOutputs": ".policies",
    "TurnCheckpoint": ".checkpoints",
    "UnauthenticatedItemError": ".encryption",
    "UnknownRenameError": ".errors",
    "UserMemory": ".user_memory",
    "agent_config": ".fingerprint",
    "agent_fingerprint": ".fingerprint",
    "cleanup_idle_sessions": ".retention",
    "config_changes": ".drift",
    "context_policy": ".policies",
    "durable": ".decorator",
    "full_tool_output": ".tool_outputs",
    "load_run_state": ".run_state",
    "pending_run_state": ".run_state",
    "rename_agent": ".migrations",
    "rename_tool": ".migrations",
    "save_run_state": ".run_state",
    "touch": ".retention",
    "wrap_item": ".items",
}
"""Where each name lives: imported on first use, so loading the package (the plugin entry
point does) does not import the SDK."""


_DEPRECATED = {"persistent_run": "durable"}
"""Renamed names, old -> new: each still resolves, with a DeprecationWarning, for one minor
release (CHANGELOG.md)."""


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        from ._deprecated import warn_renamed

        new = _DEPRECATED[name]
        warn_renamed(f"{__name__}.{name}", f"{__name__}.{new}")
        return __getattr__(new)
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = sorted([*_EXPORTS, "__version__"])  # pyright: ignore[reportUnsupportedDunderAll]
