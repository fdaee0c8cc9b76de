"""The public names of every package, checked against a snapshot: none vanishes unnoticed.

``tests/public_surface.json`` holds, for every public module (no ``_``-prefixed part) of the
three packages, its ``__all__``; and, under ``"deprecated"``, the renamed names that still
resolve, each with its replacement. The test fails when

- a name of the snapshot is gone, unless it is a deprecated alias that still resolves and
  warns (a removal is a decision: take it out of the snapshot and say so in CHANGELOG.md);
- a module or a name is new: add it to the snapshot deliberately (the failure prints the
  diff; ``AGENT_PERSIST_UPDATE_SURFACE=1`` rewrites the ``"modules"`` part from the code).

The deprecation policy (one minor release) is CHANGELOG.md's.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import pkgutil
import re
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.needs_extras  # imports every module, the optional back ends too

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).with_name("public_surface.json")
PACKAGES = ("agent_persist", "autogen_persist", "openai_agents_persist")


def _public_modules() -> dict[str, ModuleType]:
    """Every importable module of the packages with no ``_``-prefixed part, by name."""
    found: dict[str, ModuleType] = {}
    for top in PACKAGES:
        package = importlib.import_module(top)
        names = [top] + [m.name for m in pkgutil.walk_packages(package.__path__, f"{top}.")]
        for name in names:
            if not any(part.startswith("_") for part in name.split(".")):
                found[name] = importlib.import_module(name)
    return found


def _surface() -> dict[str, list[str]]:
    surface: dict[str, list[str]] = {}
    for name, module in sorted(_public_modules().items()):
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"public module {name} declares no __all__"
        surface[name] = sorted(exported)
    return surface


def _snapshot() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def _diff(recorded: dict[str, list[str]], current: dict[str, list[str]]) -> list[str]:
    lines: list[str] = []
    for module in sorted(set(recorded) | set(current)):
        if module not in current:
            lines.append(f"- module {module}")
        elif module not in recorded:
            lines.append(f"+ module {module}: {current[module]}")
        else:
            before, after = set(recorded[module]), set(current[module])
            lines += [f"- {module}.{n}" for n in sorted(before - after)]
            lines += [f"+ {module}.{n}" for n in sorted(after - before)]
    return lines


def test_the_snapshot_matches_the_code() -> None:
    current = _surface()
    snapshot = _snapshot()
    if os.environ.get("AGENT_PERSIST_UPDATE_SURFACE"):
        snapshot["modules"] = current
        SNAPSHOT.write_text(json.dumps(snapshot, indent=2, sort_keys=True) + "\n", "utf-8")
    recorded: dict[str, list[str]] = snapshot["modules"]
    deprecated: dict[str, dict[str, str]] = snapshot["deprecated"]
    lines = _diff(recorded, current)
    # a vanished name is fine only as a deprecated alias (checked to resolve and warn below)
    unexplained = [
        line
        for line in lines
        if not (
            line.startswith("- ")
            and " " not in line[2:]
            and line[2:].rpartition(".")[2] in deprecated.get(line[2:].rpartition(".")[0], {})
        )
    ]
    assert not unexplained, (
        "the public surface changed; a removed name needs a deprecated alias (listed under "
        '"deprecated"), a new one a deliberate entry in tests/public_surface.json '
        "(AGENT_PERSIST_UPDATE_SURFACE=1 rewrites it):\n" + "\n".join(unexplained)
    )


@pytest.mark.parametrize(
    ("module", "name", "replacement"),
    [
        (module, name, replacement)
        for module, aliases in sorted(_snapshot()["deprecated"].items())
        for name, replacement in sorted(aliases.items())
    ],
)
def test_a_deprecated_alias_resolves_and_warns(module: str, name: str, replacement: str) -> None:
    imported = importlib.import_module(module)
    assert name not in getattr(imported, "__all__", ()), "a deprecated name is not re-exported"
    with pytest.warns(DeprecationWarning, match=re.escape(replacement)) as caught:
        value = getattr(imported, name)
    assert name in str(caught[0].message)
    assert value is not None
    if "." not in replacement and "(" not in replacement:  # a plain rename in the same module
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert value is getattr(imported, replacement), "the alias is the new object"


def test_the_deprecated_openai_names_still_work() -> None:
    from agent_persist import Registry
    from openai_agents_persist import RUN_STATE_KIND, durable, renames

    registry = Registry()
    with pytest.warns(DeprecationWarning, match="openai_agents_persist.migrations.rename_tool"):
        rename_tool = renames.rename_tool
    rename_tool("lookup", "find", registry=registry)
    with pytest.warns(DeprecationWarning, match=r"Registry\.renames"):
        declared_renames = renames.declared_renames
    assert declared_renames(registry) == ([], [("lookup", "find")])
    assert registry.renames(RUN_STATE_KIND) == {"tool": [("lookup", "find")]}
    with pytest.warns(DeprecationWarning, match="durable"):
        from openai_agents_persist import persistent_run  # type: ignore[attr-defined]
    assert persistent_run is durable


def test_openai_type_checking_imports_match_the_lazy_exports() -> None:
    """The package lists its names in ``_EXPORTS``; its TYPE_CHECKING imports must agree."""
    init = ROOT / "packages/openai-agents-persist/src/openai_agents_persist/__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                module = "." * stmt.level + (stmt.module or "")
                typed.update({alias.asname or alias.name: module for alias in stmt.names})
    package = importlib.import_module("openai_agents_persist")
    exports: dict[str, str] = package._EXPORTS  # pyright: ignore[reportPrivateUsage]
    assert typed == exports
    assert package.__all__ == sorted([*exports, "__version__"])


def test_every_public_name_resolves() -> None:
    """A name in ``__all__`` that is not there (a wrong lazy-export entry) fails here."""
    missing = [
        f"{name}.{exported}"
        for name, module in sorted(_public_modules().items())
        for exported in getattr(module, "__all__", ())
        if not hasattr(module, exported)
    ]
    assert missing == []
