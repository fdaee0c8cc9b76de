"""OpenTelemetry spans and metrics, with the ``otel`` extra; nothing imported or paid without it.

    pip install "agent-persist[otel]"      # opentelemetry-api; the application brings the SDK

    from agent_persist import telemetry
    telemetry.configure(tracer_provider=provider, meter_provider=meters)  # else the globals
    telemetry.configure(enabled=False)      # OpenTelemetry installed, our spans not wanted

With ``opentelemetry-api`` importable, the stores, the migration registry and the adapters
report to the tracer and meter named ``agent_persist`` of the global providers (set by the
application, before or after this import), or of the ones given to :func:`configure`.
Without it nothing is imported and every instrumented call costs one check.

Spans: ``agent_persist.put``, ``.get``, ``.read_log``, ``.read_logs``, ``.read_log_lines``,
``.tail``, ``.tail_lines``, ``.acquire_lease``, ``.renew_lease``, ``.release_lease``, ``.migrate``
and ``.resume``, with the attributes ``agent_persist.store`` (``memory``, ``sqlite``,
``postgresql``, ``redis``), ``agent_persist.namespace``, ``agent_persist.thread.id``,
``agent_persist.checkpoint.{id,kind,schema_version,step,bytes}``,
``agent_persist.log.{name,items,bytes}``, ``agent_persist.lease.take_over``,
``agent_persist.migration.{from_version,to_version,handlers}``,
``agent_persist.drift.policy`` and ``agent_persist.resumed``. A failure sets the span's
status to ``ERROR`` and ``error.type`` to the exception's type; its message is not
recorded, as it can quote stored data.

Metrics (attributes ``agent_persist.store`` and ``agent_persist.checkpoint.kind`` only;
thread ids and namespaces are unbounded): ``agent_persist.checkpoint.write.duration``
(histogram, s; ``error.type`` on failures), ``agent_persist.checkpoint.size`` (histogram,
bytes of the sealed payload and appended items), ``agent_persist.checkpoint.conflicts``
(counter) and ``agent_persist.lease.takeovers`` (counter, ``take_over=`` acquisitions).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import _otel

if TYPE_CHECKING:
    from .envelope import Envelope

__all__ = ["Resume", "configure", "resuming"]


def configure(
    *, tracer_provider: Any = None, meter_provider: Any = None, enabled: bool = True
) -> None:
    """Choose where spans and metrics go; by default the global providers, resolved lazily.

    Args:
        tracer_provider: An OpenTelemetry ``TracerProvider``; ``None`` for the global one.
        meter_provider: An OpenTelemetry ``MeterProvider``; ``None`` for the global one.
        enabled: ``False`` turns every hook back into a no-op, even with OpenTelemetry
            installed (it is a dependency of some frameworks).
    """
    _otel.configure(tracer_provider=tracer_provider, meter_provider=meter_provider, enabled=enabled)


class Resume:
    """What :func:`resuming` yields: tell it which checkpoint the thread resumed from."""

    __slots__ = ("_scope", "envelope")

    def __init__(self, scope: _otel.Scope) -> None:
        self._scope = scope
        self.envelope: Envelope | None = None

    def found(self, envelope: Envelope | None) -> None:
        """Record the checkpoint loaded, or ``None`` for a thread that had none yet."""
        self.envelope = envelope
        self._scope.set(_otel.RESUMED, envelope is not None)
        if envelope is not None:
            self._scope.checkpoint(envelope)


@contextmanager
def resuming(logger: logging.Logger, *, kind: str, thread_id: str) -> Generator[Resume, None, None]:
    """Wrap an adapter's loading of a thread into a fresh object: a span, then an info log.

        with resuming(logger, kind="autogen.team", thread_id="t-1") as resume:
            head = await load(...)
            resume.found(head)      # logged on ``logger`` once the block succeeds

    The reads and migrations inside the block are the span's children.
    """
    with _otel.resume(kind, thread_id) as scope:
        resume = Resume(scope)
        yield resume
    envelope = resume.envelope
    if envelope is not None:
        logger.info(
            "thread %r: resumed from checkpoint %r (step %d, kind %r, schema version %d)",
            envelope.thread_id,
            envelope.checkpoint_id,
            envelope.step,
            envelope.kind,
            envelope.schema_version,
        )
