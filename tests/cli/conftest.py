"""The command's fixtures, defined in ``cli_support`` beside the helpers the tests import."""

from cli_support import backend, sqlite

__all__ = ["backend", "sqlite"]
