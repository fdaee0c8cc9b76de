"""The metadata PyPI shows for each package: license, authors, URLs, versions, README.

`uv run nox -s wheels` checks the built wheels themselves; this checks the sources they are
built from, cheaply, on every test run.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the 3.10 floor
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["agent-persist", "autogen-persist", "openai-agents-persist"]
ADAPTERS = {"autogen-persist": "autogen-agentchat", "openai-agents-persist": "openai-agents"}
REPOSITORY = "https://github.com/agent-persist/agent-persist"


def project(package: str) -> dict[str, Any]:
    path = ROOT / "packages" / package / "pyproject.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))["project"]


def requirement(package: str, name: str) -> Requirement:
    found = [Requirement(r) for r in project(package)["dependencies"]]
    matching = [r for r in found if r.name == name]
    assert len(matching) == 1, f"{package} should depend on {name} once"
    return matching[0]


@pytest.mark.parametrize("package", PACKAGES)
def test_license_file_is_the_repository_license(package: str) -> None:
    meta = project(package)
    assert meta["license"] == "MIT"
    assert meta["license-files"] == ["LICENSE"]
    copy = ROOT / "packages" / package / "LICENSE"
    assert copy.read_text(encoding="utf-8") == (ROOT / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize("package", PACKAGES)
def test_authors_urls_classifiers_keywords(package: str) -> None:
    meta = project(package)
    assert meta["authors"] == [{"name": "agent-persist developers"}]
    assert meta["urls"]["Repository"] == REPOSITORY
    assert set(meta["urls"]) == {"Homepage", "Repository", "Issues", "Changelog"}
    assert all(url.startswith(REPOSITORY) for url in meta["urls"].values())
    floor = Version(meta["requires-python"].removeprefix(">="))
    minors = sorted(
        int(m.group(1))
        for c in meta["classifiers"]
        if (m := re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", c))
    )
    assert minors == list(range(floor.minor, 14))
    assert meta["keywords"]


@pytest.mark.parametrize("package", PACKAGES)
def test_readme_stands_alone(package: str) -> None:
    meta = project(package)
    assert meta["readme"] == "README.md"
    text = (ROOT / "packages" / package / "README.md").read_text(encoding="utf-8")
    assert "see the repository readme" not in text.lower()
    assert "pip install " in text
    assert "```python" in text
    # PyPI renders no file next to the README: every link must be absolute.
    relative = re.findall(r"\]\((?!https://|#)([^)]+)\)", text)
    assert relative == []


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_adapter_needs_a_compatible_core(adapter: str) -> None:
    core = Version(project("agent-persist")["version"])
    spec = requirement(adapter, "agent-persist").specifier
    assert core in spec
    assert Version(f"{core.major}.{core.minor + 1}.0") not in spec  # pre-1.0: minors may break


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_framework_range_is_bounded(adapter: str) -> None:
    """Both ends are named, so `nox -s frameworks` can test the oldest and the newest."""
    spec = requirement(adapter, ADAPTERS[adapter]).specifier
    assert {s.operator for s in spec} == {">=", "<"}
