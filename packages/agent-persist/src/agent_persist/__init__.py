"""agent-persist: durable, versioned, migratable state for AI agents."""

from importlib.metadata import version as _version

__version__ = _version("agent-persist")

__all__ = ["__version__"]
