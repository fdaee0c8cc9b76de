"""What a tool sees of the durable call journal, and how a user says what to do after a crash.

    from agent_persist.journal import idempotency_key

    def charge_card(amount: int) -> str:
        key = idempotency_key()               # same on every resume of this call
        return payments.charge(amount, idempotency_key=key)

    team = DurableTeam(build_team, store=url, thread_id="t-1",
                       tool_policies={"lookup": "rerun", "charge_card": reconcile_charge})

Durable runs record every completed model call and tool run in the thread's journal (the
log :data:`JOURNAL_LOG`), so a worker that resumes after a crash replays them instead of
paying for them again (:mod:`agent_persist._journal`). A tool that was started but not
recorded as finished (the worker died inside it) follows its :data:`ToolPolicyOption`:

- ``"raise"`` (the default): :class:`~agent_persist.errors.ToolOutcomeUnknownError` before
  the run goes on, naming the tool, its arguments and its idempotency key. Nothing runs
  twice unless someone says so: a careful default for tools with side effects.
- ``"rerun"``: run it again, with the same idempotency key (for idempotent tools, or tools
  whose API deduplicates on the key).
- a ``reconcile`` function: called with the :class:`ToolCall`, it returns what the tool
  would have returned (for example after asking the mail provider whether the message
  went out); the tool never runs again.
"""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Awaitable, Callable, Generator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = [
    "JOURNAL_LOG",
    "JournalOption",
    "Reconcile",
    "ToolCall",
    "ToolPolicy",
    "ToolPolicyOption",
    "current_tool_call",
    "idempotency_key",
    "tool_policies",
]

JOURNAL_LOG = "$journal"
"""The log holding a thread's journal; emptied by every turn's checkpoint."""

JournalOption: TypeAlias = "bool | Literal['discard']"
"""``True`` (journal and replay), ``False`` (off), or ``"discard"``: drop a journal that
cannot be read (``CorruptJournalError``) and go live, then journal as usual."""


class ToolPolicy(enum.Enum):
    """What to do with a tool call a crash left started but not finished."""

    RAISE = "raise"
    RERUN = "rerun"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call as the journal knows it: what ``reconcile`` and the tool itself can see."""

    thread_id: str
    name: str
    arguments: Any
    call_id: str | None
    idempotency_key: str
    """Stable across resumes of the same call, different for every call: pass it to
    external APIs that deduplicate requests."""
    where: str = field(default="", compare=False)
    """The run and turn, for messages."""


Reconcile: TypeAlias = Callable[[ToolCall], "Awaitable[Any] | Any"]
"""Returns the result of a tool call whose outcome a crash left unknown."""

ToolPolicyOption: TypeAlias = "ToolPolicy | Literal['raise', 'rerun'] | Reconcile"
"""A tool's policy: ``"raise"``, ``"rerun"``, or a reconcile function."""

_CURRENT: contextvars.ContextVar[ToolCall | None] = contextvars.ContextVar(
    "agent_persist_tool_call", default=None
)


def current_tool_call() -> ToolCall | None:
    """The journaled tool call running now, or ``None`` outside one."""
    return _CURRENT.get()


def idempotency_key() -> str | None:
    """The running tool call's idempotency key, or ``None`` outside a durable run's tool."""
    call = _CURRENT.get()
    return None if call is None else call.idempotency_key


@contextmanager
def running(call: ToolCall) -> Generator[None]:
    """Make ``call`` the current tool call while the tool body runs."""
    token = _CURRENT.set(call)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def tool_policies(
    policies: Mapping[str, ToolPolicyOption] | None,
) -> dict[str, ToolPolicy | Reconcile]:
    """``policies`` checked: tool names to a :class:`ToolPolicy` or a callable.

    Raises:
        TypeError: Not a mapping of strings, or a value that is neither a policy nor callable.
        ValueError: A policy name other than ``"raise"`` and ``"rerun"``.
    """
    if policies is None:
        return {}
    if not isinstance(policies, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(f"tool_policies must be a mapping, got {type(policies).__name__}")
    checked: dict[str, ToolPolicy | Reconcile] = {}
    for name, policy in policies.items():
        if not isinstance(name, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"tool_policies keys must be tool names, got {name!r}")
        if isinstance(policy, ToolPolicy):
            checked[name] = policy
        elif isinstance(policy, str):
            try:
                checked[name] = ToolPolicy(policy)
            except ValueError:
                raise ValueError(
                    f"tool_policies[{name!r}] must be 'raise', 'rerun' or a function, "
                    f"got {policy!r}"
                ) from None
        elif callable(policy):
            checked[name] = policy
        else:
            raise TypeError(
                f"tool_policies[{name!r}] must be 'raise', 'rerun' or a function, "
                f"got {type(policy).__name__}"
            )
    return checked


def journal_option(value: object) -> JournalOption:
    """``value`` checked as the ``journal=`` option."""
    if value is True or value is False or value == "discard":
        return value  # pyright: ignore[reportReturnType]
    raise ValueError(f"journal must be True, False or 'discard', got {value!r}")
