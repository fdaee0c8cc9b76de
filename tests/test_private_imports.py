"""No test imports a ``_``-private module (or name) of another package than the one it tests.

Each test directory tests one package and may reach into that package's internals; another
package is used through its public API, as users use it, so its internals can move freely.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGES = frozenset({"agent_persist", "autogen_persist", "openai_agents_persist"})
OWNER = {
    "autogen": "autogen_persist",
    "openai_agents": "openai_agents_persist",
    "core": "agent_persist",
    "stores": "agent_persist",
    "faults": "agent_persist",
    "cli": "agent_persist",
}
"""The package each test directory tests; files directly under tests/ share the core's."""


_DOTTED = re.compile(r"(agent_persist|autogen_persist|openai_agents_persist)(\.\w+)+")
"""A string naming a module or attribute path of ours (as import_module and patch take)."""


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def violations(source: str, owner: str) -> list[str]:
    """``line: module`` for every import of another package's private module or name."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        imported: list[str] = []
        if isinstance(node, ast.Import):
            imported = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported = [f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
            imported.append(node.module)
        elif (  # import_module("x._y"), monkeypatch.setattr("x._y.name", ...), patch("x._y")
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _DOTTED.fullmatch(node.value)
        ):
            imported = [node.value]
        for dotted in imported:
            top, _, rest = dotted.partition(".")
            if top in PACKAGES and top != owner and _private(rest):
                found.append(f"{node.lineno}: {dotted}")
    return sorted(set(found), key=lambda line: (int(line.split(":")[0]), line))


def test_the_checker_catches_a_private_import_of_another_package() -> None:
    source = (
        "from agent_persist._json import canonical_json\n"
        "import openai_agents_persist._item_lines\n"
        "from agent_persist.drift import _short\n"
        "from autogen_persist import _termination\n"
        "from autogen_persist._load import load_checkpoint\n"
        "from agent_persist import canonical_json, __version__\n"
        "importlib.import_module('agent_persist.stores._records')\n"
        "monkeypatch.setattr('openai_agents_persist._bad_items.LIMIT', 1)\n"
        "monkeypatch.setattr('autogen_persist._load.X', 1)\n"
        "print('agent_persist is great. _really')\n"
    )
    assert violations(source, "autogen_persist") == [
        "1: agent_persist._json",
        "1: agent_persist._json.canonical_json",
        "2: openai_agents_persist._item_lines",
        "3: agent_persist.drift._short",
        "7: agent_persist.stores._records",
        "8: openai_agents_persist._bad_items.LIMIT",
    ]


def test_no_test_imports_a_private_module_of_another_package() -> None:
    found: list[str] = []
    for path in sorted(TESTS.rglob("*.py")):
        parts = path.relative_to(TESTS).parts
        owner = OWNER.get(parts[0], "agent_persist") if len(parts) > 1 else "agent_persist"
        found += [
            f"{path.relative_to(TESTS)}:{line}"
            for line in violations(path.read_text(encoding="utf-8"), owner)
        ]
    assert not found, "use the other package's public API instead:\n" + "\n".join(found)
