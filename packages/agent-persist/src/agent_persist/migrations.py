"""The migration registry: how old payloads become current ones, and raw state becomes envelopes.

Migrations are pure functions on JSON, registered per kind from one schema version to a
higher one::

    registry = Registry()
    registry.register_kind("my.team", version=2)

    @registry.register("my.team", 1, 2)
    def rename_writer(payload):
        payload["agents"]["author"] = payload["agents"].pop("writer")
        return payload

    current = registry.upgrade(await store.get("thread-1"))   # nothing is written
    await store.put(current.next(payload=current.payload))    # write-back is explicit

Upgrading never touches the stored data: a version newer than the code, a gap in the chain,
a migration that raises or one that returns an invalid payload each raise their own typed
error naming the kind, the versions and the thread. Adapters announce their kinds and
migrations through the ``agent_persist.plugins`` entry point group, which
:func:`default_registry` loads, so the core never imports an adapter.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, TypeVar, cast

from pydantic import ValidationError

from . import _otel
from ._json import canonical_json, container_ids, plain_json
from .drift import Change, DriftPolicy, drift_error
from .envelope import Envelope, Producer, with_payload
from .errors import (
    AgentPersistError,
    CorruptCheckpointError,
    FutureVersionError,
    InvalidPayloadError,
    MigrationFailedError,
    MigrationInvalidOutputError,
    MissingMigrationError,
    UnknownKindError,
)
from .versions import upgrade_header

__all__ = [
    "FingerprintChange",
    "Migration",
    "Registry",
    "default_registry",
    "register",
]

Migration = Callable[[Any], Any]
"""A pure function from a payload at one schema version to the payload at the next."""

PLUGIN_GROUP = "agent_persist.plugins"
"""Entry point group: each entry is a callable taking the :class:`Registry` to fill."""

_F = TypeVar("_F", bound=Callable[..., Any])
logger = logging.getLogger("agent_persist")


@dataclass(frozen=True, slots=True)
class FingerprintChange:
    """What a fingerprint-change handler is told.

    The configuration that wrote the payload (``old``) differs from the one loading it
    (``new``); ``changes`` lists how, when the adapter could tell.
    """

    kind: str
    thread_id: str
    old: str | None
    new: str
    changes: tuple[Change, ...] = ()


FingerprintHandler = Callable[[Any, FingerprintChange], Any]
Covers = Callable[[Change], bool]
"""Which changes a fingerprint-change handler migrates."""


@dataclass(frozen=True, slots=True)
class _Handler:
    function: FingerprintHandler
    covers: Covers | None
    """``None``: runs on every change and covers them all."""


@dataclass
class _Kind:
    version: int | None = None
    recognize: Callable[[Any], bool] | None = None
    validate: Callable[[Any], object] | None = None
    steps: dict[int, tuple[int, Migration]] = field(
        default_factory=dict[int, tuple[int, Migration]]
    )
    fingerprint_handlers: list[_Handler] = field(default_factory=list[_Handler])
    renames: dict[str, list[tuple[str, str]]] = field(
        default_factory=dict[str, list[tuple[str, str]]]
    )


def _where(envelope: Envelope) -> str:
    return f"checkpoint {envelope.checkpoint_id!r} of thread {envelope.thread_id!r}"


class Registry:
    """Kinds, their current schema versions, migrations and raw-state recognisers."""

    def __init__(self) -> None:
        self._kinds: dict[str, _Kind] = {}

    def register_kind(
        self,
        kind: str,
        *,
        version: int,
        recognize: Callable[[Any], bool] | None = None,
        validate: Callable[[Any], object] | None = None,
    ) -> None:
        """Declare a kind and the schema version this code writes.

        Args:
            kind: The envelope kind, such as ``autogen.team``.
            version: The current payload schema version.
            recognize: Tells whether raw, envelope-less state is of this kind (for adoption).
            validate: Raises if a payload at ``version`` has the wrong shape (a pydantic
                model's ``model_validate`` fits); run on every migrated payload.
        """
        spec = self._kinds.setdefault(kind, _Kind())
        spec.version, spec.recognize, spec.validate = version, recognize, validate

    def register(self, kind: str, from_version: int, to_version: int) -> Callable[[_F], _F]:
        """Decorator: register a migration of ``kind`` payloads from one version to another."""
        if not 0 <= from_version < to_version:
            raise ValueError(f"a migration goes up: got {from_version} -> {to_version}")
        spec = self._kinds.setdefault(kind, _Kind())
        if from_version in spec.steps:
            raise ValueError(f"{kind}: a migration from version {from_version} is registered")

        def decorate(function: _F) -> _F:
            spec.steps[from_version] = (to_version, function)
            return function

        return decorate

    def on_fingerprint_change(
        self, kind: str, *, covers: Iterable[str] | Covers | None = None
    ) -> Callable[[_F], _F]:
        """Decorator: a handler run when a payload is loaded by a changed configuration.

        Args:
            kind: The envelope kind it migrates.
            covers: The changes it migrates: ``Change.what`` categories, or a predicate on a
                :class:`~agent_persist.drift.Change`. It then runs only when one of them is
                among the changes. ``None``: it runs on every change and covers them all.
        """
        spec = self._kinds.setdefault(kind, _Kind())
        predicate = covers if covers is None or callable(covers) else _covers_any(covers)

        def decorate(function: _F) -> _F:
            spec.fingerprint_handlers.append(_Handler(function, predicate))
            return function

        return decorate

    def fingerprint_handler(self, kind: str, name: str) -> FingerprintHandler | None:
        """The fingerprint-change handler of ``kind`` whose ``__name__`` is ``name``, if any.

        Lets an adapter that installs named handlers install each one once, however often a
        team factory declares it.
        """
        spec = self._kinds.get(kind)
        for handler in spec.fingerprint_handlers if spec is not None else ():
            if getattr(handler.function, "__name__", None) == name:
                return handler.function
        return None

    def declare_rename(self, kind: str, subject: str, old: str, new: str) -> None:
        """Declare that ``subject`` ``old`` is called ``new`` in the configurations of ``kind``.

        A configuration diff sees a name that went and one that came; only the user knows
        the new one is the old one renamed. Adapters read the declarations back with
        :meth:`renames` and match them with :func:`agent_persist.drift.matched_renames`.
        Declaring the same rename again does nothing (a team factory may run many times).

        Args:
            kind: The envelope kind whose configurations the rename applies to.
            subject: What was renamed, as the adapter names it (``"participant"``,
                ``"agent"``, ``"tool"``, ``"message type"``).
            old: The name when the checkpoint was written.
            new: The name in the configuration that loads it.

        Raises:
            ValueError: A name is empty, the two are equal, or ``old`` already has another
                declared new name for this kind and subject.
        """
        for name in (old, new):
            if not isinstance(name, str) or not name:  # pyright: ignore[reportUnnecessaryIsInstance]
                raise ValueError(
                    f"a {subject} rename needs two non-empty names, got {old!r} -> {new!r}"
                )
        if old == new:
            raise ValueError(f"a {subject} rename needs two different names, got {old!r}")
        renames = self._kinds.setdefault(kind, _Kind()).renames.setdefault(subject, [])
        if (old, new) in renames:
            return
        if any(before == old for before, _ in renames):
            raise ValueError(f"a rename of {subject} {old!r} is already declared for {kind!r}")
        renames.append((old, new))

    def renames(self, kind: str) -> dict[str, list[tuple[str, str]]]:
        """The renames declared for ``kind``: ``{subject: [(old, new), ...]}`` in order.

        A copy: changing it declares nothing.
        """
        spec = self._kinds.get(kind)
        if spec is None:
            return {}
        return {subject: list(pairs) for subject, pairs in spec.renames.items()}

    def include(self, other: Registry) -> None:
        """Add every kind of ``other`` (version, recogniser, validator, migrations, renames...).

        A kind both define takes ``other``'s definition whole. The kinds are copied, so
        registering into either registry later does not change the other: this is how the
        ``agent-persist`` command combines the installed plugins' kinds with a user's own.
        """
        for kind, spec in other._kinds.items():
            self._kinds[kind] = _Kind(
                spec.version,
                spec.recognize,
                spec.validate,
                dict(spec.steps),
                list(spec.fingerprint_handlers),
                {subject: list(pairs) for subject, pairs in spec.renames.items()},
            )

    @property
    def kinds(self) -> list[str]:
        """Every kind registered, sorted."""
        return sorted(self._kinds)

    def current_version(self, kind: str) -> int:
        """The schema version this code writes for ``kind``: declared, or the chain's end."""
        spec = self._kinds.get(kind)
        if spec is None:
            raise UnknownKindError(
                f"kind {kind!r} is not registered; install its adapter or call register_kind()"
            )
        if spec.version is not None:
            return spec.version
        return max((to for to, _ in spec.steps.values()), default=0)

    def path(self, envelope: Envelope) -> list[tuple[int, int]]:
        """The migrations ``upgrade`` would run, as ``(from, to)`` pairs; raises as it would."""
        current = self.current_version(envelope.kind)
        version = envelope.schema_version
        if version > current:
            raise FutureVersionError(
                f"{_where(envelope)}: kind {envelope.kind!r} schema version {version} is newer "
                f"than this code's {current}; upgrade the package that owns the kind"
            )
        steps = self._kinds[envelope.kind].steps
        path: list[tuple[int, int]] = []
        while version < current:
            if version not in steps:
                known = ", ".join(f"{a}->{b}" for a, (b, _) in sorted(steps.items())) or "none"
                raise MissingMigrationError(
                    f"{_where(envelope)}: no migration of kind {envelope.kind!r} from schema "
                    f"version {version} towards {current} (registered: {known})"
                )
            target = steps[version][0]
            path.append((version, target))
            version = target
        return path

    def upgrade(
        self,
        envelope: Envelope,
        *,
        fingerprint: str | None = None,
        changes: Sequence[Change] = (),
        policy: DriftPolicy | None = None,
        owned: bool = False,
    ) -> Envelope:
        """Return ``envelope`` at the current schema version (the same object if it is).

        With ``fingerprint`` (of the configuration loading it) different from the envelope's,
        the configuration drifted. Without a ``policy`` every fingerprint-change handler of
        the kind runs. With one, :class:`~agent_persist.drift.DriftPolicy` decides, given the
        ``changes`` the adapter found (one generic change when it found none): ``strict``
        raises, ``migrate`` runs the handlers covering them and raises for the rest,
        ``accept`` runs none. Under a policy the result's metadata records the drift under
        ``"drift"``. The envelope keeps the writer's fingerprint either way.

        Migrations may edit the payload in place, so they run on a copy of it: ``envelope``
        is left as it was. With ``owned``, the caller gives ``envelope.payload`` up instead
        (freshly decoded, nothing else holding it or any part of it): the migrations run on
        it as it is, no copy is made, and ``envelope`` must not be used afterwards (its
        payload may no longer match its checksum). An owned envelope's checksum is not
        relied on either: a new envelope's is computed from its payload (with nothing to
        run or record, ``envelope`` itself comes back, as ever). Either way what a migration
        returns is checked in place and only rebuilt where ``json`` would change it.

        Raises:
            ConfigDriftError: The policy refuses a change (see its ``changes``).
            MigrationError: A migration is missing, raised or returned a bad payload.
        """
        path = self.path(envelope)
        spec = self._kinds[envelope.kind]
        drift = (
            fingerprint is not None
            and envelope.fingerprint is not None
            and fingerprint != envelope.fingerprint
        )
        handlers: list[_Handler] = []
        change = None
        if drift:
            assert fingerprint is not None  # noqa: S101 - narrowed by drift
            change = FingerprintChange(
                envelope.kind,
                envelope.thread_id,
                envelope.fingerprint,
                fingerprint,
                tuple(changes) or (Change("configuration changed", "fingerprint"),),
            )
            handlers = self._drift_handlers(envelope, spec, change, policy)
        elif fingerprint is not None and envelope.fingerprint is None and policy is None:
            handlers = list(spec.fingerprint_handlers)  # no recorded fingerprint: legacy
            change = FingerprintChange(envelope.kind, envelope.thread_id, None, fingerprint)
        if not path and not handlers and not (drift and policy is not None):
            return envelope
        applied = policy.value if drift and policy is not None else None
        to_version = self.current_version(envelope.kind)
        with _otel.migration(
            envelope, envelope.schema_version, to_version, handlers=len(handlers), policy=applied
        ):
            upgraded = self._migrate(
                envelope, spec, path, handlers, change, policy if drift else None, owned=owned
            )
        _log_upgrade(envelope, upgraded, handlers, change, applied)
        return upgraded

    def _migrate(
        self,
        envelope: Envelope,
        spec: _Kind,
        path: list[tuple[int, int]],
        handlers: list[_Handler],
        change: FingerprintChange | None,
        policy: DriftPolicy | None,
        *,
        owned: bool,
    ) -> Envelope:
        """Run the chain, then the handlers; record the drift when a policy applied."""
        ran = bool(path or handlers)
        payload: Any = envelope.payload
        if ran and not owned:  # the steps may edit it in place: the caller's stays as it was
            payload = json.loads(canonical_json(envelope.payload, max_depth=None))
        # What a step may return as it is: its input's containers (the caller's owned
        # payload or the copy above). Anything else it put in is copied (see plain_json).
        known = container_ids(payload) if ran else set[int]()
        for from_version, to_version in path:
            migrate = spec.steps[from_version][1]
            payload = self._run(
                envelope, f"migration {from_version}->{to_version}", migrate, payload, known
            )
        updates: dict[str, Any] = {"schema_version": self.current_version(envelope.kind)}
        for handler in handlers:
            assert change is not None  # noqa: S101 - handlers run only on a change
            payload = self._run(
                envelope,
                f"fingerprint handler {getattr(handler.function, '__name__', handler)!r}",
                lambda p, h=handler.function: h(p, change),
                payload,
                known,
            )
        if policy is not None and change is not None:
            updates["metadata"] = {
                **envelope.metadata,
                "drift": {
                    "policy": policy.value,
                    "from": change.old,
                    "to": change.new,
                    "changes": [str(c) for c in change.changes],
                },
            }
        if spec.validate is not None:
            try:
                spec.validate(payload)
            except (ValueError, TypeError, ValidationError) as exc:
                raise MigrationInvalidOutputError(
                    f"{_where(envelope)}: migrated {envelope.kind!r} payload fails validation "
                    f"at schema version {updates['schema_version']}: {exc}"
                ) from exc
        if not ran and not owned:  # the payload, and so its checksum, is the envelope's own
            return with_payload(envelope, payload, checksum=envelope.checksum, **updates)
        # owned: its checksum is not trusted, nor its depth checked unless a step's output
        return with_payload(envelope, payload, depth_checked=ran, **updates)

    @staticmethod
    def _drift_handlers(
        envelope: Envelope, spec: _Kind, change: FingerprintChange, policy: DriftPolicy | None
    ) -> list[_Handler]:
        """The handlers to run on a drifted payload; raises if the policy refuses a change."""
        where = _where(envelope)
        if policy is None:
            return list(spec.fingerprint_handlers)
        if policy is DriftPolicy.ACCEPT:
            return []
        if policy is DriftPolicy.STRICT:
            raise drift_error(where, change.changes, policy)
        chosen: list[_Handler] = []
        uncovered = list(change.changes)
        for handler in spec.fingerprint_handlers:
            covers = handler.covers
            if covers is None:
                chosen.append(handler)
                uncovered = []
            elif any(covers(c) for c in change.changes):
                chosen.append(handler)
                uncovered = [c for c in uncovered if not covers(c)]
        if uncovered:
            raise drift_error(where, uncovered, policy)
        return chosen

    @staticmethod
    def _run(
        envelope: Envelope, step: str, function: Migration, payload: Any, known: set[int]
    ) -> Any:
        """Run one step; its output checked in place (``known``: see :func:`plain_json`)."""
        try:
            result = function(payload)
        except Exception as exc:
            raise MigrationFailedError(
                f"{_where(envelope)}: {step} of kind {envelope.kind!r} raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if result is None:
            raise MigrationInvalidOutputError(
                f"{_where(envelope)}: {step} of kind {envelope.kind!r} returned None; "
                "a migration must return the new payload"
            )
        try:
            return plain_json(result, what="migrated payload", known=known)
        except InvalidPayloadError as exc:
            raise MigrationInvalidOutputError(
                f"{_where(envelope)}: {step} of kind {envelope.kind!r} returned {exc}"
            ) from exc

    def adopt(
        self,
        raw: Any,
        *,
        thread_id: str,
        kind: str | None = None,
        producer: Producer | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Envelope:
        """Wrap state saved without an envelope (format 0) as schema version 0 of its kind.

        An envelope (a dict with ``format_version``) is parsed and returned instead, so any
        file, old or new, can go through here. Call :meth:`upgrade` on the result.
        """
        if isinstance(raw, dict) and "format_version" in raw:
            return self._parse(cast("dict[str, Any]", raw))
        if kind is None:
            kind = self._recognize(raw)
        elif kind not in self._kinds:
            self.current_version(kind)  # raises UnknownKindError
        return Envelope.create(
            kind=kind,
            schema_version=0,
            thread_id=thread_id,
            payload=raw,
            producer=producer or Producer(package="unknown (adopted raw state)"),
            metadata={"adopted": True, **(metadata or {})},
        )

    def _recognize(self, raw: Any) -> str:
        matches = [
            kind
            for kind, spec in self._kinds.items()
            if spec.recognize is not None and _recognizes(spec.recognize, raw)
        ]
        if len(matches) != 1:
            shape = (
                f"an object with keys {sorted(cast('dict[str, Any]', raw))[:8]}"
                if isinstance(raw, dict)
                else type(raw).__name__
            )
            found = f"it matches {sorted(matches)}" if matches else "no registered kind matches it"
            raise UnknownKindError(
                f"cannot tell the kind of raw state ({shape}): {found}; pass kind= explicitly"
            )
        return matches[0]

    @staticmethod
    def _parse(raw: dict[str, Any]) -> Envelope:
        header = upgrade_header(dict(raw), where="envelope file")
        try:
            return Envelope.model_validate(header)
        except ValidationError as exc:
            raise CorruptCheckpointError(f"envelope file: not a valid envelope: {exc}") from exc


def _log_upgrade(
    before: Envelope,
    after: Envelope,
    handlers: list[_Handler],
    change: FingerprintChange | None,
    policy: str | None,
) -> None:
    """Info for each migration and handler applied; a warning for drift accepted as is."""
    where = _where(before)
    if after.schema_version != before.schema_version:
        logger.info(
            "%s: kind %r migrated from schema version %d to %d (in memory; nothing written)",
            where,
            before.kind,
            before.schema_version,
            after.schema_version,
        )
    # the changes' categories and subjects only: their values can be long or private
    summary = "; ".join(f"{c.what}: {c.subject}" for c in change.changes) if change else ""
    for handler in handlers:
        logger.info(
            "%s: fingerprint-change handler %r applied (%s)",
            where,
            getattr(handler.function, "__name__", repr(handler.function)),
            summary or "no recorded fingerprint",
        )
    if policy == DriftPolicy.ACCEPT.value:
        logger.warning(
            "%s was written by another configuration; loaded as is (drift policy 'accept'): %s",
            where,
            summary,
        )


def _covers_any(categories: Iterable[str]) -> Covers:
    """A predicate covering the changes whose ``what`` is one of ``categories``."""
    wanted = frozenset(categories)

    def covers(change: Change) -> bool:
        return change.what in wanted

    return covers


def _recognizes(recognize: Callable[[Any], bool], raw: Any) -> bool:
    """A recogniser that chokes on an unexpected shape simply does not recognise it."""
    try:
        return bool(recognize(raw))
    except Exception:
        return False


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, filled once by every installed adapter's plugin."""
    global _default
    if _default is None:
        registry = Registry()
        for plugin in entry_points(group=PLUGIN_GROUP):
            try:
                plugin.load()(registry)
            except Exception as exc:
                raise AgentPersistError(
                    f"the agent-persist plugin {plugin.name!r} ({plugin.value}) failed to "
                    f"load: {exc}"
                ) from exc
        _default = registry
    return _default


def register(kind: str, from_version: int, to_version: int) -> Callable[[_F], _F]:
    """Decorator: register a migration in the :func:`default_registry`."""
    return default_registry().register(kind, from_version, to_version)
