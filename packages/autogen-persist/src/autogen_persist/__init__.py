"""The agent-persist adapter for autogen-agentchat (filled in by its own issue)."""

from importlib.metadata import version as _version

__version__ = _version("autogen-persist")

__all__ = ["__version__"]
