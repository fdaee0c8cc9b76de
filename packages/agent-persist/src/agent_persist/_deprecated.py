"""Deprecated aliases: each warns, names its replacement, and lives one minor release.

The policy (CHANGELOG.md): a name deprecated in 0.x is removed in 0.x+1.
"""

from __future__ import annotations

import warnings

REMOVED_IN = "0.3.0"
"""The release that removes the aliases deprecated in this one."""


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated in favour of ``new``, pointing at the caller's line.

    The default ``stacklevel`` suits a call from the alias itself (a module ``__getattr__``),
    so the warning names the user's code.
    """
    warnings.warn(
        f"{old} is deprecated; use {new} instead ({old} is removed in {REMOVED_IN})",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
