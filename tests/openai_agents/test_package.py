"""The package's public names, and a plugin cheap enough for every tool to load."""

from __future__ import annotations

import subprocess
import sys

import openai_agents_persist


def test_every_public_name_resolves() -> None:
    for name in openai_agents_persist.__all__:
        assert getattr(openai_agents_persist, name) is not None, name
    assert set(dir(openai_agents_persist)) == set(openai_agents_persist.__all__)


def test_loading_the_plugin_does_not_import_the_sdk() -> None:
    code = (
        "import sys; from agent_persist import default_registry; registry = default_registry(); "
        "assert 'openai_agents.run_state' in registry.kinds; "
        "assert 'agents' not in sys.modules, 'the plugin imported the SDK'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 - fixed code
