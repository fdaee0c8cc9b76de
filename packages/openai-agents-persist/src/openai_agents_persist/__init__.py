"""The agent-persist adapter for the OpenAI Agents SDK: a ``Session`` on every store.

    from openai_agents_persist import StoreSession

    async with StoreSession.open("user-1", "sqlite:///agents.db") as session:
        result = await Runner.run(agent, "Hello", session=session)

Beyond the session: per-turn checkpoints of the application state (``state=``), runs that
wait for approval saved and resumed in another process (:func:`save_run_state`,
:func:`load_run_state`, :func:`persistent_run`), rename migrations, context policies, an
audit trail, cross-session memory and retention.
"""

from importlib import import_module
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_persist.drift import DriftOption

    from .audit import DEFAULT_PRICES, AuditHooks, AuditReport, AuditTrail
    from .checkpoints import RUN_STATE_KIND, TURN_KIND, StateHook, TurnCheckpoint
    from .decorator import persistent_run
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
        UnknownRenameError,
    )
    from .fingerprint import agent_config, agent_fingerprint
    from .items import ITEM_FORMAT_VERSION, ITEM_FORMATS, ItemFormats, wrap_item
    from .policies import SlidingWindow, SummaryPlusRecent, TrimToolOutputs, context_policy
    from .renames import rename_agent, rename_tool
    from .retention import cleanup_idle_sessions, touch
    from .run_state import load_run_state, pending_run_state, save_run_state
    from .session import ITEMS_LOG, StoreSession
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
    "RUN_STATE_KIND": ".checkpoints",
    "SlidingWindow": ".policies",
    "StateHook": ".checkpoints",
    "StoreSession": ".session",
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
    "load_run_state": ".run_state",
    "pending_run_state": ".run_state",
    "persistent_run": ".decorator",
    "rename_agent": ".renames",
    "rename_tool": ".renames",
    "save_run_state": ".run_state",
    "touch": ".retention",
    "wrap_item": ".items",
}
"""Where each name lives: imported on first use, so loading the package (the plugin entry
point does) does not import the SDK."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "CATEGORIES",
    "DEFAULT_PRICES",
    "ITEMS_LOG",
    "ITEM_FORMATS",
    "ITEM_FORMAT_VERSION",
    "NO_STATE_CHANGE",
    "RUN_STATE_KIND",
    "TURN_KIND",
    "AuditHooks",
    "AuditReport",
    "AuditTrail",
    "CorruptItemError",
    "DamagedItemError",
    "DriftOption",
    "EncryptedStoreSession",
    "Fact",
    "FutureItemFormatError",
    "InvalidLimitError",
    "ItemFormats",
    "MissingAgentError",
    "MissingToolError",
    "PendingInterruptionError",
    "SlidingWindow",
    "StateHook",
    "StoreSession",
    "SummaryPlusRecent",
    "TrimToolOutputs",
    "TurnCheckpoint",
    "UnauthenticatedItemError",
    "UnknownRenameError",
    "UserMemory",
    "__version__",
    "agent_config",
    "agent_fingerprint",
    "cleanup_idle_sessions",
    "config_changes",
    "context_policy",
    "load_run_state",
    "pending_run_state",
    "persistent_run",
    "rename_agent",
    "rename_tool",
    "save_run_state",
    "touch",
    "wrap_item",
]
