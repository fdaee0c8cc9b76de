"""The agent-persist adapter for openai-agents (filled in by its own issue)."""

from importlib.metadata import version as _version

__version__ = _version("openai-agents-persist")

__all__ = ["__version__"]
