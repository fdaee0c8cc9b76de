"""Deprecated: the dry run moved to :mod:`agent_persist.maintenance`.

    from agent_persist.maintenance import dry_run      # or: from agent_persist import dry_run

This module re-exports it for one minor release and warns when imported. Importing it sets
the package attribute ``agent_persist.dry_run`` to this module (Python's import system does
that for every submodule), so the module is made callable: ``agent_persist.dry_run(store)``
keeps working either way.
"""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any

from .maintenance import DryRunEntry, DryRunReport, dry_run

__all__ = ["DryRunEntry", "DryRunReport", "dry_run"]

warnings.warn(
    "agent_persist.dry_run is deprecated and will be removed in the next minor release; "
    "import DryRunEntry, DryRunReport and dry_run from agent_persist.maintenance "
    "(or agent_persist)",
    DeprecationWarning,
    stacklevel=2,
)


class _CallableModule(types.ModuleType):
    """This module, callable as the function it shadows on the package."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return dry_run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
