"""``--plugin MODULE[:ATTR]`` and ``AGENT_PERSIST_PLUGINS``: a user's own kinds for the command.

    agent-persist verify --plugin myapp.persist:registry
    AGENT_PERSIST_PLUGINS=myapp.persist:registry,other.kinds agent-persist migrate

Installed adapters announce their kinds through the ``agent_persist.plugins`` entry point;
a program's own kinds (``quickstart.chat``) live in a ``Registry`` it builds in code. A
plugin spec names that code, so ``verify`` and ``migrate`` know those kinds without
publishing a package. ``ATTR`` (default: ``registry``, else ``register``) may be:

- a :class:`~agent_persist.Registry`: its kinds are added;
- a function taking a registry, like an adapter's entry point (``register(registry)``):
  it registers into the command's registry;
- a function taking no argument and returning a ``Registry``: its kinds are added.

``MODULE`` is imported from the installed packages or, failing that, the current directory.
Anything that does not load is a one-line usage error (exit 2).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from ..migrations import Registry, default_registry
from ._app import EXIT_USAGE, fail, one_line

__all__ = ["DEFAULT_ATTRS", "PLUGINS_ENV", "load_registry", "plugin_option", "plugin_specs"]

PLUGINS_ENV = "AGENT_PERSIST_PLUGINS"
DEFAULT_ATTRS = ("registry", "register")
"""What ``MODULE`` alone names: the first of these attributes the module has."""


def plugin_specs(options: Sequence[str]) -> list[str]:
    """The specs of ``AGENT_PERSIST_PLUGINS`` then ``options``, blanks dropped.

    The variable separates specs with commas, or ``os.pathsep`` where that is not ``:``
    (``;`` on Windows): on POSIX ``:`` already separates MODULE from ATTR.
    """
    text = os.environ.get(PLUGINS_ENV, "")
    if os.pathsep != ":":
        text = text.replace(os.pathsep, ",")
    specs = [spec.strip() for spec in text.split(",")]
    specs += [spec.strip() for spec in options]
    return [spec for spec in specs if spec]


def load_registry(base: Registry | None, options: Sequence[str]) -> Registry:
    """``base`` (default: the installed plugins' registry) with every plugin spec added.

    With no spec, ``base`` itself; otherwise a new registry, so neither ``base`` nor the
    process-wide default is changed.
    """
    specs = plugin_specs(options)
    start = base if base is not None else default_registry()
    if not specs:
        return start
    registry = Registry()
    registry.include(start)
    for spec in specs:
        _apply(spec, registry)
    return registry


def _refuse(spec: str, problem: str) -> Exception:
    return fail(f"plugin {spec!r}: {problem}", EXIT_USAGE)


def _import(spec: str, module_name: str) -> Any:
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
        raise _refuse(spec, "expected MODULE[:ATTR], e.g. myapp.persist:registry")
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if not _is_missing(exc, module_name):  # it exists but imports something missing
            raise _refuse(spec, f"importing {module_name!r} failed: {_named(exc)}") from None
    except Exception as exc:  # the module's own code failed (a syntax error, a raise)
        raise _refuse(spec, f"importing {module_name!r} failed: {_named(exc)}") from None
    here = os.getcwd()
    if here in sys.path:
        raise _refuse(spec, f"no module named {module_name!r}")
    sys.path.append(here)  # a module beside the user, where `python -m` would find it
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        sys.path.remove(here)
        if isinstance(exc, ModuleNotFoundError) and _is_missing(exc, module_name):
            problem = f"no module named {module_name!r} (in the installed packages or {here})"
            raise _refuse(spec, problem) from None
        raise _refuse(spec, f"importing {module_name!r} failed: {_named(exc)}") from None


def _is_missing(exc: ModuleNotFoundError, module_name: str) -> bool:
    """Whether the module itself (or its package) is what was not found."""
    return exc.name is not None and (
        module_name == exc.name or module_name.startswith(exc.name + ".")
    )


def _named(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(exc)}"


def _attribute(spec: str, module: Any, attr: str | None) -> Any:
    names = DEFAULT_ATTRS if attr is None else (attr,)
    for name in names:
        value: Any = module
        try:
            for part in name.split("."):
                value = getattr(value, part)
        except AttributeError:
            continue
        return value
    wanted = " or ".join(repr(name) for name in names)
    raise _refuse(spec, f"module {module.__name__!r} has no attribute {wanted}")


def _apply(spec: str, registry: Registry) -> None:
    """Load one ``MODULE[:ATTR]`` and add what it names to ``registry``."""
    module_name, _, attr = spec.partition(":")
    module = _import(spec, module_name.strip())
    value = _attribute(spec, module, attr.strip() or None)
    if isinstance(value, Registry):
        registry.include(value)
        return
    if not callable(value):
        raise _refuse(
            spec,
            f"{type(value).__name__} is not a Registry, a function taking a registry, "
            "or a function returning one",
        )
    takes_registry = _can_call(value, registry)
    if not takes_registry and not _can_call(value):
        raise _refuse(spec, "a function must take a registry, or nothing and return one")
    try:
        result = value(registry) if takes_registry else value()
    except Exception as exc:
        raise _refuse(spec, f"it raised {_named(exc)}") from None
    if isinstance(result, Registry):
        if result is not registry:
            registry.include(result)
    elif not takes_registry:
        raise _refuse(spec, f"it returned {type(result).__name__}, not a Registry")


def _can_call(function: Any, *arguments: Any) -> bool:
    """Whether ``function`` accepts these positional arguments (unknown: only one)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: try the plugin shape
        return len(arguments) == 1
    try:
        signature.bind(*arguments)
    except TypeError:
        return False
    return True


plugin_option = click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE[:ATTR]",
    help=(
        "Load your own kinds and migrations: a Registry, or a function registering into one "
        f"(ATTR default: registry, else register). Repeatable; also ${PLUGINS_ENV} "
        "(comma-separated)."
    ),
)
"""The ``--plugin`` option of the commands that use a registry (``verify``, ``migrate``)."""
