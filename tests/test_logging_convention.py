"""The logging convention: one standard logger per package, and no handler installed by us.

Applications configure logging; a library that adds handlers (or logs under many names)
makes that configuration guesswork. So every ``logging.getLogger`` call in the packages
names its own package, and importing everything leaves those loggers without handlers.
"""

from __future__ import annotations

import ast
import importlib
import logging
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "agent_persist": ROOT / "packages/agent-persist/src/agent_persist",
    "autogen_persist": ROOT / "packages/autogen-persist/src/autogen_persist",
    "openai_agents_persist": ROOT / "packages/openai-agents-persist/src/openai_agents_persist",
}


def _logger_names(source: Path) -> list[tuple[int, str | None]]:
    """The (line, name) of every ``getLogger(...)`` call; ``None`` when not a literal."""
    found: list[tuple[int, str | None]] = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name != "getLogger":
            continue
        arg = node.args[0] if node.args else None
        literal = arg.value if isinstance(arg, ast.Constant) else None
        found.append((node.lineno, literal if isinstance(literal, str) else None))
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_logger_is_the_package_logger(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: getLogger({name!r})"
        for path in sorted(PACKAGES[package].rglob("*.py"))
        for line, name in _logger_names(path)
        if name != package
    ]
    assert wrong == [], f"use logging.getLogger({package!r}) only"


def test_importing_everything_installs_no_handler() -> None:
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            if ".testing" in info.name or info.name.endswith("__main__"):
                continue  # test helpers import pytest; __main__ would run the command
            importlib.import_module(info.name)
    for package in PACKAGES:
        logger = logging.getLogger(package)
        assert logger.handlers == [], f"{package} installed a handler"
        assert logger.propagate, f"{package} stopped propagation to the application's handlers"
