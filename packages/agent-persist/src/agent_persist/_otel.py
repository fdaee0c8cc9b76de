"""The OpenTelemetry binding behind :mod:`agent_persist.telemetry`: hooks free without it.

    with checkpoint_write(store, envelope) as scope:    # the shared NOOP without OpenTelemetry
        ...
        scope.set(CHECKPOINT_BYTES, written)

Each hook returns the shared :data:`NOOP` scope until OpenTelemetry is found, so an
instrumented call without it costs one function call and no allocation. With it, a hook
returns a scope that opens a span, current for the block (so driver spans and our own nest
under it), and records an error as status ``ERROR`` with the exception's type only: messages
can quote stored data. Checkpoint writes also feed the latency, size and conflict metrics;
a lease takeover feeds its counter. Metric attributes are the store and the kind, never a
thread id or a namespace: those are unbounded.

The first hook call tries the import once (:func:`_resolve`); when it fails nothing is
imported again until :func:`configure` is called. A store's ``setup()`` tries it first
(:func:`prepare`): importing OpenTelemetry holds the event loop for 20-90 ms, which inside
the first checkpoint call stalls every call in flight.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import ConflictError

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider
    from typing_extensions import Self

    from .envelope import Envelope
    from .stores.base import BaseStore

NAME = "agent_persist"
"""The tracer's and the meter's name (the instrumentation scope)."""
logger = logging.getLogger("agent_persist")

# span names
PUT = "agent_persist.put"
GET = "agent_persist.get"
READ_LOG = "agent_persist.read_log"
READ_LOG_LINES = "agent_persist.read_log_lines"
READ_LOGS = "agent_persist.read_logs"
TAIL = "agent_persist.tail"
TAIL_LINES = "agent_persist.tail_lines"
ACQUIRE_LEASE = "agent_persist.acquire_lease"
RENEW_LEASE = "agent_persist.renew_lease"
RELEASE_LEASE = "agent_persist.release_lease"
MIGRATE = "agent_persist.migrate"
RESUME = "agent_persist.resume"

# attribute names
STORE = "agent_persist.store"
NAMESPACE = "agent_persist.namespace"
THREAD_ID = "agent_persist.thread.id"
CHECKPOINT_ID = "agent_persist.checkpoint.id"
KIND = "agent_persist.checkpoint.kind"
SCHEMA_VERSION = "agent_persist.checkpoint.schema_version"
STEP = "agent_persist.checkpoint.step"
CHECKPOINT_BYTES = "agent_persist.checkpoint.bytes"
LOG_NAME = "agent_persist.log.name"
LOG_ITEMS = "agent_persist.log.items"
LOG_BYTES = "agent_persist.log.bytes"
TAKE_OVER = "agent_persist.lease.take_over"
FROM_VERSION = "agent_persist.migration.from_version"
TO_VERSION = "agent_persist.migration.to_version"
HANDLERS = "agent_persist.migration.handlers"
DRIFT_POLICY = "agent_persist.drift.policy"
RESUMED = "agent_persist.resumed"
ERROR_TYPE = "error.type"

# metric names
WRITE_DURATION = "agent_persist.checkpoint.write.duration"
CHECKPOINT_SIZE = "agent_persist.checkpoint.size"
CONFLICTS = "agent_persist.checkpoint.conflicts"
TAKEOVERS = "agent_persist.lease.takeovers"

_DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
_SIZE_BUCKETS = tuple(float(4**n) for n in range(4, 13))  # 256 B .. 16 MiB
_IDLE_RECHECK = 0.1
"""Seconds an "SDK not set up" verdict is trusted: the most a late setup can miss."""


class Scope:
    """What every hook returns: a context manager; this base records nothing."""

    __slots__ = ()

    recording = False
    """Whether anything is recorded: callers skip computing attributes when it is not."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def set(self, key: str, value: str | int | bool) -> None:
        """Add an attribute to the span."""

    def checkpoint(self, envelope: Envelope) -> None:
        """Add the attributes of the checkpoint read or written."""


NOOP = Scope()
"""The one scope every hook returns while OpenTelemetry is absent or disabled."""


class _Otel:
    """The tracer and the instruments, built once OpenTelemetry imports."""

    def __init__(
        self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None
    ):
        from importlib.metadata import version

        from opentelemetry import context, metrics, trace

        package_version = version("agent-persist")
        self.context = context
        self.trace = trace
        self.metrics = metrics
        self.live = tracer_provider is not None or meter_provider is not None
        """Providers were given, or a global one was set (which is for good): no more checks."""
        self._recheck_at = 0.0
        self.status = trace.Status
        self.error = trace.StatusCode.ERROR
        self.tracer = trace.get_tracer(NAME, package_version, tracer_provider)
        meter = metrics.get_meter(NAME, package_version, meter_provider)
        self.write_duration = meter.create_histogram(
            WRITE_DURATION,
            unit="s",
            description="How long a checkpoint write (put) took, encoding included.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.checkpoint_size = meter.create_histogram(
            CHECKPOINT_SIZE,
            unit="By",
            description="Bytes a checkpoint write stored: its sealed payload and appended items.",
            explicit_bucket_boundaries_advisory=_SIZE_BUCKETS,
        )
        self.conflicts = meter.create_counter(
            CONFLICTS,
            unit="{conflict}",
            description="Checkpoint writes refused because another writer moved the head.",
        )
        self.takeovers = meter.create_counter(
            TAKEOVERS,
            unit="{takeover}",
            description="Leases acquired with take_over= (the holder expired or was proven dead).",
        )

    def idle(self) -> bool:
        """Whether the global providers are still the API's no-op proxies (no SDK set up).

        Then a hook returns :data:`NOOP` instead of paying for spans nobody records. Asking
        the API costs microseconds (it looks at the environment), so an idle answer is kept
        for :data:`_IDLE_RECHECK` seconds; once a provider is set (that is for good) the
        answer stays ``False`` and the proxies hand our spans over to it.
        """
        if self.live:
            return False
        now = time.monotonic()
        if now < self._recheck_at:
            return True
        if isinstance(self.trace.get_tracer_provider(), self.trace.ProxyTracerProvider):
            meter_provider = self.metrics.get_meter_provider()
            if type(meter_provider).__name__ == "_ProxyMeterProvider":
                self._recheck_at = now + _IDLE_RECHECK
                return True
        self.live = True
        return False


_otel: _Otel | None = None
_resolved = False
_enabled = True
_tracer_provider: Any = None
_meter_provider: Any = None


def configure(*, tracer_provider: Any, meter_provider: Any, enabled: bool) -> None:
    """Rebind the hooks (see :func:`agent_persist.telemetry.configure`)."""
    global _resolved, _otel, _enabled, _tracer_provider, _meter_provider
    _tracer_provider, _meter_provider, _enabled = tracer_provider, meter_provider, enabled
    _otel, _resolved = None, False


def _resolve() -> _Otel | None:
    """Import OpenTelemetry once; ``None`` (and nothing imported) when it is not installed.

    An installation too broken to set up is logged once and left alone: telemetry must
    never be why a checkpoint is not written.
    """
    global _resolved, _otel
    _otel = None
    if _enabled:
        try:
            _otel = _Otel(_tracer_provider, _meter_provider)
        except ImportError as exc:
            if exc.name is None or exc.name.split(".")[0] != "opentelemetry":
                logger.warning("OpenTelemetry is installed but cannot be imported: %s", exc)
        except Exception as exc:
            logger.warning("OpenTelemetry could not be set up, so it is not used: %r", exc)
    _resolved = True
    return _otel


def prepare() -> None:
    """Import OpenTelemetry now, if no hook has tried yet (at setup, not on a first call)."""
    if not _resolved:
        _resolve()


def _binding() -> _Otel | None:
    """The binding when something may record; ``None`` when absent, disabled or idle."""
    otel = _otel if _resolved else _resolve()
    if otel is None or (not otel.live and otel.idle()):
        return None
    return otel


class _Traced(Scope):
    """A span, current for the block; an exception marks it ``ERROR`` with its type."""

    __slots__ = ("_attributes", "_name", "_otel", "_span", "_token")

    recording = True

    def __init__(self, otel: _Otel, name: str, attributes: dict[str, Any]) -> None:
        self._otel, self._name, self._attributes = otel, name, attributes

    def __enter__(self) -> Self:
        otel = self._otel
        self._span: Span | None = None
        self._token: Token[Context] | None = None
        try:
            self._span = otel.tracer.start_span(self._name, attributes=self._attributes)
            context: Context = otel.trace.set_span_in_context(self._span)
            self._token = otel.context.attach(context)
        except Exception as exc:
            _failed(exc)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span, token = self._span, self._token
        try:
            if span is not None and exc is not None:
                error = type(exc).__qualname__
                span.set_attribute(ERROR_TYPE, error)
                span.set_status(self._otel.status(self._otel.error, error))
            self._finish(exc)
        except Exception as failure:
            _failed(failure)
        if token is not None:
            try:
                self._otel.context.detach(token)
            except Exception as failure:
                _failed(failure)
        if span is not None:
            try:
                span.end()
            except Exception as failure:
                _failed(failure)

    def _finish(self, exc: BaseException | None) -> None:
        """Record what the block's outcome means beyond the span (metrics)."""

    def set(self, key: str, value: str | int | bool) -> None:
        """Add an attribute to the span."""
        if self._span is not None:
            try:
                self._span.set_attribute(key, value)
            except Exception as exc:
                _failed(exc)

    def checkpoint(self, envelope: Envelope) -> None:
        """Add the attributes of the checkpoint read or written."""
        if self._span is not None:
            try:
                self._span.set_attributes(_checkpoint_attributes(envelope))
            except Exception as exc:
                _failed(exc)


_failure_logged = False


def _failed(exc: Exception) -> None:
    """OpenTelemetry itself raised (a broken exporter or processor): log once, go on.

    Telemetry must never be why a call fails, least of all a write that committed.
    """
    global _failure_logged
    if not _failure_logged:
        _failure_logged = True
        logger.warning("OpenTelemetry raised %r; agent-persist carries on without it", exc)


def _checkpoint_attributes(envelope: Envelope) -> dict[str, Any]:
    return {
        THREAD_ID: envelope.thread_id,
        CHECKPOINT_ID: envelope.checkpoint_id,
        KIND: envelope.kind,
        SCHEMA_VERSION: envelope.schema_version,
        STEP: envelope.step,
    }


def _store_attributes(store: BaseStore) -> dict[str, Any]:
    return {STORE: store.backend, NAMESPACE: store.namespace}


class _Write(_Traced):
    """A checkpoint write: its span, latency, size and, when refused, a conflict."""

    __slots__ = ("_bytes", "_labels", "_started")

    def __init__(self, otel: _Otel, store: BaseStore, envelope: Envelope) -> None:
        attributes = _store_attributes(store)
        attributes.update(_checkpoint_attributes(envelope))
        super().__init__(otel, PUT, attributes)
        self._labels: dict[str, Any] = {STORE: attributes[STORE], KIND: envelope.kind}
        self._bytes: int | None = None

    def __enter__(self) -> Self:
        super().__enter__()
        self._started = time.perf_counter()
        return self

    def set(self, key: str, value: str | int | bool) -> None:
        """Add an attribute to the span; the checkpoint's bytes also go to the size metric."""
        super().set(key, value)
        if key == CHECKPOINT_BYTES and isinstance(value, int):
            self._bytes = value

    def _finish(self, exc: BaseException | None) -> None:
        elapsed = time.perf_counter() - self._started
        if exc is None:
            self._otel.write_duration.record(elapsed, self._labels)
            if self._bytes is not None:
                self._otel.checkpoint_size.record(self._bytes, self._labels)
            return
        self._otel.write_duration.record(
            elapsed, {**self._labels, ERROR_TYPE: type(exc).__qualname__}
        )
        if isinstance(exc, ConflictError):
            self._otel.conflicts.add(1, self._labels)


class _Lease(_Traced):
    """A lease call; one that took a dead holder's lease over counts a takeover."""

    __slots__ = ("_store",)

    def __init__(self, otel: _Otel, name: str, attributes: dict[str, Any]) -> None:
        super().__init__(otel, name, attributes)
        self._store = attributes[STORE]

    def _finish(self, exc: BaseException | None) -> None:
        if exc is None and self._attributes.get(TAKE_OVER):
            self._otel.takeovers.add(1, {STORE: self._store})


# -- the hooks: one global check, then NOOP unless OpenTelemetry is there ---------------------


def checkpoint_write(store: BaseStore, envelope: Envelope) -> Scope:
    """The scope of a ``put``; ``set(CHECKPOINT_BYTES, n)`` records its size."""
    otel = _binding()
    if otel is None:
        return NOOP
    return _Write(otel, store, envelope)


def checkpoint_read(store: BaseStore, thread_id: str, checkpoint_id: str | None) -> Scope:
    """The scope of a ``get``; ``checkpoint(envelope)`` adds what was read."""
    otel = _binding()
    if otel is None:
        return NOOP
    attributes = _store_attributes(store)
    attributes[THREAD_ID] = thread_id
    if checkpoint_id is not None:
        attributes[CHECKPOINT_ID] = checkpoint_id
    return _Traced(otel, GET, attributes)


def log_read(store: BaseStore, name: str, thread_id: str, log: str) -> Scope:
    """The scope of a log read (span ``name``); set ``LOG_ITEMS`` or ``LOG_BYTES``."""
    otel = _binding()
    if otel is None:
        return NOOP
    attributes = _store_attributes(store)
    attributes[THREAD_ID] = thread_id
    attributes[LOG_NAME] = log
    return _Traced(otel, name, attributes)


def lease_call(store: BaseStore, name: str, thread_id: str, *, take_over: bool = False) -> Scope:
    """The scope of a lease call (span ``name``); a successful ``take_over`` is counted."""
    otel = _binding()
    if otel is None:
        return NOOP
    attributes = _store_attributes(store)
    attributes[THREAD_ID] = thread_id
    if take_over:
        attributes[TAKE_OVER] = True
    return _Lease(otel, name, attributes)


def migration(
    envelope: Envelope, from_version: int, to_version: int, *, handlers: int, policy: str | None
) -> Scope:
    """The scope of an envelope's upgrade that runs migrations or applies a drift policy."""
    otel = _binding()
    if otel is None:
        return NOOP
    attributes = _checkpoint_attributes(envelope)
    attributes[FROM_VERSION] = from_version
    attributes[TO_VERSION] = to_version
    attributes[HANDLERS] = handlers
    if policy is not None:
        attributes[DRIFT_POLICY] = policy
    return _Traced(otel, MIGRATE, attributes)


def resume(kind: str, thread_id: str) -> Scope:
    """The scope of an adapter loading a thread's state into a fresh object."""
    otel = _binding()
    if otel is None:
        return NOOP
    return _Traced(otel, RESUME, {KIND: kind, THREAD_ID: thread_id})
