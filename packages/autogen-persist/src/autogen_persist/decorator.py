"""The decorator that makes a team or agent factory durable, and the function under it.

    @durable(store="sqlite:///agents.db")
    def build_team(topic: str) -> RoundRobinGroupChat:
        return RoundRobinGroupChat([writer(topic), critic()], termination_condition=...)

    team = build_team("cats", thread_id="essay-1")          # a DurableTeam
    await Console(team.run_stream(task="Write an essay."))  # rerun after a crash: resumes

    agent = make_durable(build_agent, store=store, thread_id="user-42")   # a DurableAgent

The user keeps writing the factory AutoGen code already has; the decorated factory takes a
keyword-only ``thread_id`` and returns a :class:`~autogen_persist.DurableTeam` (for a team)
or :class:`~autogen_persist.DurableAgent` (for an agent), which calls the factory again,
with the same arguments, whenever it needs fresh objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import wraps
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from autogen_agentchat.base import ChatAgent, Team

from agent_persist import DriftPolicy, Registry
from agent_persist.drift import DriftOption
from agent_persist.journal import JournalOption, ToolPolicyOption
from agent_persist.leases import DEFAULT_LEASE_TTL
from agent_persist.stores import CheckpointStore

from ._durable import CheckpointCallback
from .agent import DurableAgent
from .errors import UnsupportedComponentError
from .team import DurableTeam

__all__ = ["durable", "make_durable"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class _Once(Generic[_T]):
    """A factory whose first product was already built (to see what it builds)."""

    def __init__(self, first: _T, factory: Callable[[], _T]) -> None:
        self._first: list[_T] = [first]
        self._factory = factory

    def __call__(self) -> _T:
        return self._first.pop() if self._first else self._factory()


@overload
def make_durable(
    factory: Callable[[], Team], *, store: CheckpointStore | str, thread_id: str, **options: Any
) -> DurableTeam: ...
@overload
def make_durable(
    factory: Callable[[], ChatAgent],
    *,
    store: CheckpointStore | str,
    thread_id: str,
    **options: Any,
) -> DurableAgent: ...
def make_durable(
    factory: Callable[[], Team] | Callable[[], ChatAgent],
    *,
    store: CheckpointStore | str,
    thread_id: str,
    **options: Any,
) -> DurableTeam | DurableAgent:
    """A durable team or agent for ``thread_id``, from a factory that builds it afresh.

    ``options`` are those of :class:`~autogen_persist.DurableTeam` (worker_id, lease_ttl,
    lease_wait, registry, metadata, on_checkpoint, drift, write_attempts, journal,
    tool_policies). The factory is
    called once here, to see whether it builds a team or an agent; that first object serves
    the first run.
    """
    return _make_durable(factory, store=store, thread_id=thread_id, **options)


def _make_durable(
    factory: Callable[[], Team | ChatAgent],
    *,
    store: CheckpointStore | str,
    thread_id: str,
    **options: Any,
) -> DurableTeam | DurableAgent:
    first: object = factory()
    if isinstance(first, Team):
        teams = cast("Callable[[], Team]", factory)
        return DurableTeam(_Once(first, teams), store=store, thread_id=thread_id, **options)
    if isinstance(first, ChatAgent):  # pyright: ignore[reportUnnecessaryIsInstance]
        agents = cast("Callable[[], ChatAgent]", factory)
        return DurableAgent(_Once(first, agents), store=store, thread_id=thread_id, **options)
    raise UnsupportedComponentError(
        f"the factory built {type(first).__qualname__}: neither an AutoGen Team nor a ChatAgent"
    )


class _Decorator:
    def __init__(self, store: CheckpointStore | str, options: dict[str, Any]) -> None:
        self._store, self._options = store, options

    @overload
    def __call__(self, factory: Callable[_P, Team]) -> Callable[..., DurableTeam]: ...
    @overload
    def __call__(self, factory: Callable[_P, ChatAgent]) -> Callable[..., DurableAgent]: ...
    def __call__(
        self, factory: Callable[_P, Team] | Callable[_P, ChatAgent]
    ) -> Callable[..., DurableTeam | DurableAgent]:
        @wraps(factory)
        def build(*args: Any, thread_id: str, **kwargs: Any) -> DurableTeam | DurableAgent:
            return _make_durable(
                lambda: factory(*args, **kwargs),
                store=self._store,
                thread_id=thread_id,
                **self._options,
            )

        return build


def durable(
    *,
    store: CheckpointStore | str,
    worker_id: str | None = None,
    lease_ttl: timedelta = DEFAULT_LEASE_TTL,
    lease_wait: timedelta | None = None,
    registry: Registry | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    drift: DriftOption = DriftPolicy.MIGRATE,
    journal: JournalOption = True,
    tool_policies: Mapping[str, ToolPolicyOption] | None = None,
) -> _Decorator:
    """Decorate a team or agent factory: calling it with ``thread_id=`` gives a durable one.

    Args:
        store: A store, or its URL (each run opens and closes it unless used in
            ``async with``).
        worker_id: This worker's lease owner name; by default one naming this process
            (host, boot id, pid namespace, pid, start time), so that a restart can prove it
            dead and take its lease over at once.
        lease_ttl: How long the lease lasts without renewal (15 s); it is renewed every
            third of it while running. A worker that crashed on another machine keeps the
            thread at most this long.
        lease_wait: How long to wait for another live worker's lease before
            ``ThreadBusyError``; ``None`` (the default) waits ``lease_ttl`` plus one
            renewal interval, long enough for a crashed worker's lease to run out;
            ``timedelta(0)`` fails at once. A lease whose owner is provably dead (a
            process of this machine that no longer runs) is taken over without waiting.
        registry: The migration registry (the process-wide default one).
        on_checkpoint: Called with each checkpoint once it is stored.
        drift: The drift policy, ``"migrate"`` (default), ``"strict"`` or ``"accept"``: what
            to do when the factory's configuration differs from the checkpoint's.
        journal: Journal every model call and tool run so a resume after a crash pays for
            none twice (``True``, the default); ``False`` turns it off; ``"discard"`` drops
            a journal that cannot be read (``CorruptJournalError``) and goes on live.
        tool_policies: Tool name to what a resume does with a call of that tool a crash
            left running: ``"raise"`` (the default: ``ToolOutcomeUnknownError``),
            ``"rerun"`` (idempotent tools) or a reconcile function returning its result.
    """
    return _Decorator(
        store,
        {
            "worker_id": worker_id,
            "lease_ttl": lease_ttl,
            "lease_wait": lease_wait,
            "registry": registry,
            "on_checkpoint": on_checkpoint,
            "drift": drift,
            "journal": journal,
            "tool_policies": tool_policies,
        },
    )
