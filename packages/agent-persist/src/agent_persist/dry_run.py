"""Deprecated: the dry run moved to :mod:`agent_persist.maintenance`, removed in 0.3.0.

    from agent_persist.maintenance import dry_run      # or: from agent_persist import dry_run

Every name still resolves here, with a ``DeprecationWarning`` naming its replacement.
Importing this module rebinds the package attribute ``agent_persist.dry_run`` to it (Python
does that for every submodule), so the module is callable: ``agent_persist.dry_run(store)``
keeps working either way.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from . import maintenance
from ._deprecated import warn_renamed

__all__: list[str] = []  # nothing new is imported from here

_MOVED = ("DryRunEntry", "DryRunReport", "dry_run")


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warn_renamed(f"{__name__}.{name}", f"agent_persist.maintenance.{name}")
    return getattr(maintenance, name)


class _CallableModule(types.ModuleType):
    """This module, callable as the function it shadows on the package."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return maintenance.dry_run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
