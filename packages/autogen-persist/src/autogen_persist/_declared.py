"""What the user declared about a registry's changes: renames the diff cannot guess.

    declare(registry, "participant", "writer", "author")
    declarations(registry).renames["participant"]     # [("writer", "author")]

A configuration diff sees a participant (or a tool) that disappeared and another that
appeared; only the user knows the new one is the old one renamed. The declarations live
beside the registry they were made for (a weak mapping, so a dropped registry takes its
declarations with it), which is where the loaders look.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from agent_persist import Registry

__all__ = ["Declarations", "declarations", "declare", "declared"]


@dataclass
class Declarations:
    """Declared renames by subject (``participant``, ``tool``, ``message type``)."""

    renames: dict[str, list[tuple[str, str]]] = field(
        default_factory=dict[str, list[tuple[str, str]]]
    )
    handlers: dict[str, object] = field(default_factory=dict[str, object])
    """Built-in migrations installed, by name: declaring one again installs nothing."""

    def of(self, subject: str) -> dict[str, str]:
        """The renames of one subject, old name -> new name."""
        return dict(self.renames.get(subject, ()))


_DECLARED: WeakKeyDictionary[Registry, Declarations] = WeakKeyDictionary()


def declarations(registry: Registry) -> Declarations:
    """What was declared for ``registry`` (empty if nothing was)."""
    return _DECLARED.get(registry) or Declarations()


def declare(registry: Registry, subject: str, old: str, new: str) -> None:
    """Record that ``old`` was renamed ``new``; one declaration per old name and subject."""
    if not old or not new or old == new:
        raise ValueError(f"a {subject} rename needs two different names, got {old!r} -> {new!r}")
    found = _DECLARED.setdefault(registry, Declarations())
    renames = found.renames.setdefault(subject, [])
    if (old, new) in renames:
        return  # declared again (a factory run once per build): nothing new
    if any(before == old for before, _ in renames):
        raise ValueError(f"a rename of {subject} {old!r} is already declared for this registry")
    renames.append((old, new))


def declared(registry: Registry) -> Declarations:
    """The declarations of ``registry``, created on first use."""
    return _DECLARED.setdefault(registry, Declarations())
