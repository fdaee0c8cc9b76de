"""Built-in migrations: declare what changed, and old checkpoints load into the new team.

    from autogen_persist import migrations

    migrations.rename_participant("writer", "author")      # keys, sources, speakers
    migrations.add_participant("editor", prime=True)       # it reads the thread so far
    migrations.remove_participant("critic")                # its state dropped
    migrations.reorder_participants()                      # RoundRobin: same next agent
    migrations.change_team_type()                          # RoundRobin <-> Selector
    migrations.replace_initial_messages()                  # new few-shot messages
    migrations.rename_tool("search", "web_search")         # stored calls and results
    migrations.rename_message_type("Draft", "DraftV2")     # stored messages' type

Each call registers, in the default registry (or ``registry=``), a fingerprint-change
handler covering the :mod:`~autogen_persist.drift` change it names, so the default
``migrate`` drift policy carries the state across instead of refusing it. The handlers act on
the materialized state (AutoGen's ``TeamState`` with its lists inline) through the pure
functions of :mod:`autogen_persist._transforms`; a failure (a rename of an agent the state
does not hold...) is a ``MigrationFailedError`` and nothing stored changes. The migrated
state is written by the next checkpoint, the changed lists in full.

Renames are declarations too: without one, a participant or tool that disappeared while
another appeared is a removal and an addition (nothing says the new one is the old one).
``rename_message_type`` is not a configuration change (AutoGen's configuration does not list
message types), so it applies on every load that finds the old type.

The system message, the model and an added tool need nothing: they are covered by built-in
no-op migrations (:data:`autogen_persist._plugin.NO_STATE_CHANGE`). :func:`accept_changes`
does the same for any other category, when the state does not depend on it either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from agent_persist import Change, Registry, default_registry
from agent_persist.migrations import FingerprintChange

from . import _transforms as transforms
from ._plugin import KIND_AGENT, KIND_TEAM, ensure_registered

__all__ = [
    "accept_changes",
    "add_participant",
    "change_team_type",
    "remove_participant",
    "rename_message_type",
    "rename_participant",
    "rename_tool",
    "reorder_participants",
    "replace_initial_messages",
]

Handler = Callable[[Any, FingerprintChange], Any]
_Apply = Callable[[dict[str, Any], Change], Any]


def _registry(registry: Registry | None) -> Registry:
    return ensure_registered(registry or default_registry())


def _declare(registry: Registry | None, subject: str, old: str, new: str) -> None:
    """Declare the rename on the registry, for both kinds (a team's agents load alone too)."""
    target = _registry(registry)
    for kind in (KIND_TEAM, KIND_AGENT):
        target.declare_rename(kind, subject, old, new)


def _install(
    registry: Registry | None,
    kinds: Iterable[str],
    covers: Callable[[Change], bool],
    apply: _Apply,
    name: str,
) -> Handler:
    """Register a handler that applies ``apply`` for each change ``covers`` selects."""

    def handler(payload: Any, change: FingerprintChange) -> Any:
        for item in change.changes:
            if covers(item):
                apply(cast("dict[str, Any]", payload), item)
        return payload

    handler.__name__ = handler.__qualname__ = name
    target = _registry(registry)
    kinds = tuple(kinds)
    installed = target.fingerprint_handler(kinds[0], name)
    if installed is not None:  # the same declaration again: one handler, not two
        return installed
    for kind in kinds:
        target.on_fingerprint_change(kind, covers=covers)(handler)
    return handler


def rename_participant(old: str, new: str, *, registry: Registry | None = None) -> Handler:
    """Declare that agent ``old`` is now called ``new``.

    Its state key, the ``source`` of every stored message it wrote (the manager's thread,
    every buffer and model context, the runs' output), handoff targets, and Selector's
    ``previous_speaker`` / Swarm's ``current_speaker`` are renamed.
    """
    _declare(registry, "participant", old, new)
    return _install(
        registry,
        (KIND_TEAM, KIND_AGENT),
        lambda c: c.what == "participant renamed" and c.old == old and c.new == new,
        lambda payload, _: transforms.rename_participant(payload, old, new),
        f"rename_participant({old!r}, {new!r})",
    )


def add_participant(
    name: str | None = None, *, prime: bool = False, registry: Registry | None = None
) -> Handler:
    """Declare that agent ``name`` (``None``: any) joined the team.

    It starts with the state it is built with (its ``initial_messages``). With ``prime``,
    its buffer holds the conversation's chat messages so far, so it sees the history when it
    first speaks; without, it sees only what is said from now on. RoundRobin puts it where
    the new team has it, the next speaker staying the same agent.
    """
    return _install(
        registry,
        (KIND_TEAM,),
        lambda c: c.what == "participant added" and name in (None, c.subject),
        lambda payload, c: transforms.add_participant(payload, c.subject, prime=prime),
        f"add_participant({name!r}, prime={prime})",
    )


def remove_participant(name: str | None = None, *, registry: Registry | None = None) -> Handler:
    """Declare that agent ``name`` (``None``: any) left: its state is dropped.

    Its messages stay in the others' views. RoundRobin's next speaker stays the same agent,
    or becomes the one after it if it was the one removed; Selector forgets it as previous
    speaker; a Swarm whose current speaker it was hands over to the first remaining agent.
    """
    return _install(
        registry,
        (KIND_TEAM,),
        lambda c: c.what == "participant removed" and name in (None, c.subject),
        lambda payload, c: transforms.remove_participant(payload, c.subject),
        f"remove_participant({name!r})",
    )


def reorder_participants(*, registry: Registry | None = None) -> Handler:
    """Declare the new order intended: RoundRobin's next speaker stays the same AGENT.

    AutoGen stores the next speaker as an index; left alone, a new order would hand the
    turn to whichever agent now sits at that index.
    """
    return _install(
        registry,
        (KIND_TEAM,),
        lambda c: c.what == "participants reordered",
        lambda payload, c: transforms.reorder_participants(
            payload, [str(n) for n in cast("list[Any]", c.new or [])]
        ),
        "reorder_participants()",
    )


def change_team_type(*, registry: Registry | None = None) -> Handler:
    """Declare a RoundRobinGroupChat <-> SelectorGroupChat switch: the manager is converted.

    RoundRobin's next speaker index becomes Selector's previous speaker (who spoke last),
    and back; the thread and turn count are kept. Other team types raise.
    """
    return _install(
        registry,
        (KIND_TEAM,),
        lambda c: c.what == "team type changed",
        lambda payload, c: transforms.change_team_type(payload, str(c.new)),
        "change_team_type()",
    )


def replace_initial_messages(
    agent: str | None = None, *, registry: Registry | None = None
) -> Handler:
    """Declare new ``initial_messages`` (few-shot examples) for ``agent`` (``None``: any).

    AutoGen stores them at the head of the model context, so the old ones would stay: the
    old prefix of each stored context is replaced by the new messages.
    """
    return _install(
        registry,
        (KIND_TEAM, KIND_AGENT),
        lambda c: c.what == "initial messages changed" and agent in (None, c.subject),
        lambda payload, c: transforms.replace_initial_messages(
            payload,
            c.subject,
            cast("list[Any]", c.old or []),
            cast("list[Any]", c.new or []),
        ),
        f"replace_initial_messages({agent!r})",
    )


def rename_tool(old: str, new: str, *, registry: Registry | None = None) -> Handler:
    """Declare that tool ``old`` is now ``new``: stored calls and results are renamed.

    The declaration covers what renaming the tool changes in the configuration: its name
    (``config.name`` included) and, when the Python function was renamed with it (a tool
    named after its function, or ``FunctionTool(name=...)`` beside a renamed function), the
    function's name in the ``def`` line of ``config.source_code``. That is all: the rest
    of the source must be the same text, comments and docstring included, and the code
    must not use the old or the new name (a recursive call, or a call to another function
    that now has the name, changes what the code does). A description taken from the
    docstring is unchanged when the docstring is. Any other edit is still reported
    (``setting changed: ...tools.<new>.config.source_code``) and needs its own
    declaration, such as ``accept_changes("setting changed")``.

    Only a rename of the tool is covered: a function renamed behind an unchanged tool name
    (``FunctionTool(find_customer, name="lookup_customer")``) is a source change.
    """
    _declare(registry, "tool", old, new)
    return _install(
        registry,
        (KIND_TEAM, KIND_AGENT),
        lambda c: c.what == "tool renamed" and c.old == old and c.new == new,
        lambda payload, _: transforms.rename_tool(payload, old, new),
        f"rename_tool({old!r}, {new!r})",
    )


def rename_message_type(old: str, new: str, *, registry: Registry | None = None) -> None:
    """Declare that a custom message type ``old`` is now registered as ``new``.

    AutoGen refuses a message type it does not know (``Unknown message type``); every load
    renames the ``type`` of the stored messages that still carry the old name.
    """
    _declare(registry, "message type", old, new)


def accept_changes(
    *categories: str,
    kinds: Iterable[str] = (KIND_TEAM, KIND_AGENT),
    registry: Registry | None = None,
) -> Handler:
    """Declare that changes of these categories need no state change (a no-op migration).

    For a setting the state does not depend on, such as ``"setting changed"`` (a termination
    condition's limit, a description) or ``"tool removed"`` when old calls may stay.
    """
    wanted = frozenset(categories)
    return _install(
        registry,
        kinds,
        lambda c: c.what in wanted,
        lambda payload, _: payload,
        f"accept_changes({', '.join(sorted(wanted))})",
    )
