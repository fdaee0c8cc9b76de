"""Reading a thread's checkpoint for this adapter, and writing the next one.

    head = await read_head(store, "t-1", kind=KIND_TEAM, registry=registry)
    stored = await write_checkpoint(store, head, thread_id="t-1", kind=KIND_TEAM,
                                    payload=payload, appends=appends, fingerprint=fp,
                                    config=config)

Reading upgrades the envelope along the registered schema migrations (an adopted raw state,
an old schema) without writing anything, and refuses a checkpoint of another kind; drift
migrations need the logs read back first (:mod:`autogen_persist._load`). Writing names the
head it expects as parent, so a concurrent writer gets ``ConflictError``, and appends the
configuration to the ``config`` log when its fingerprint differs from the parent's.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Mapping, Sequence
from importlib.metadata import version
from typing import Any

from agent_persist import Envelope, Lease, Producer, Registry, Status, config_appends
from agent_persist.errors import ThreadNotFoundError
from agent_persist.retry import DEFAULT_WRITE_ATTEMPTS, put_retrying
from agent_persist.stores import CheckpointStore

from ._payload import SCHEMA_VERSION
from .errors import IncompatibleCheckpointError, KindMismatchError

__all__ = ["find_head", "load_native", "producer", "read_head", "write_checkpoint"]

logger = logging.getLogger("autogen_persist")


@functools.cache  # reading package metadata costs 1-2 ms, on every checkpoint
def producer() -> Producer:
    """This package and the autogen-agentchat version that produced the state."""
    return Producer(
        package="autogen-persist",
        package_version=version("autogen-persist"),
        framework="autogen-agentchat",
        framework_version=version("autogen-agentchat"),
    )


async def read_head(
    store: CheckpointStore,
    thread_id: str,
    *,
    kind: str,
    registry: Registry,
    checkpoint_id: str | None = None,
) -> Envelope:
    """The thread's head (or a given checkpoint) at the current schema version.

    ``ThreadNotFoundError`` if there is none. The configuration drift is not looked at here.
    """
    envelope = await store.get(thread_id, checkpoint_id)
    if envelope.kind != kind:
        raise KindMismatchError(
            f"checkpoint {envelope.checkpoint_id!r} of thread {thread_id!r} is of kind "
            f"{envelope.kind!r}, not {kind!r}: it was not written for this kind of object"
        )
    return registry.upgrade(envelope)


async def load_native(load: Awaitable[None], *, where: str, what: str) -> None:
    """Run AutoGen's ``load_state``; its errors become ``IncompatibleCheckpointError``."""
    try:
        await load
    except (ValueError, KeyError, TypeError) as exc:
        raise IncompatibleCheckpointError(
            f"{where} cannot be loaded into this {what}: {exc}"
        ) from exc


async def find_head(
    store: CheckpointStore,
    thread_id: str,
    *,
    kind: str,
    registry: Registry,
) -> Envelope | None:
    """:func:`read_head` of the head, or ``None`` for a thread that does not exist yet."""
    try:
        return await read_head(store, thread_id, kind=kind, registry=registry)
    except ThreadNotFoundError:
        return None


async def write_checkpoint(
    store: CheckpointStore,
    head: Envelope | None,
    *,
    thread_id: str,
    kind: str,
    payload: Any,
    appends: Mapping[str, Sequence[Any]],
    fingerprint: str | None,
    config: Any = None,
    status: Status = Status.RUNNING,
    stop_reason: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    lease: Lease | None = None,
    clear_logs: Sequence[str] = (),
    attempts: int = DEFAULT_WRITE_ATTEMPTS,
) -> Envelope:
    """Store the checkpoint that follows ``head`` (or the thread's first) with its appends.

    ``lease`` is the writer's lease: the store refuses the write (``LeaseLostError``) unless
    it still holds the thread. ``clear_logs`` are emptied in the same write (the call
    journal, which a checkpoint ends).

    ``config`` (what ``fingerprint`` is the fingerprint of, with the layout) goes to the
    ``config`` log only when the fingerprint differs from ``head``'s, so a checkpoint costs
    nothing more until the configuration changes. A write the connection broke is tried
    again, up to ``attempts`` times in all, with the same envelope: if an attempt was
    committed although its reply was lost, the next one returns it (``put`` is idempotent
    by checkpoint id), so a lost reply never becomes a false conflict or a duplicate.
    """
    fields: dict[str, Any] = {
        "status": status,
        "stop_reason": stop_reason,
        "fingerprint": fingerprint,
        "producer": producer(),
    }
    if metadata is not None:
        fields["metadata"] = dict(metadata)
    if head is None:
        envelope = Envelope.create(
            kind=kind,
            schema_version=SCHEMA_VERSION,
            thread_id=thread_id,
            payload=payload,
            **fields,
        )
    else:
        envelope = head.next(payload=payload, schema_version=SCHEMA_VERSION, **fields)
    if config is not None:
        appends = {**appends, **config_appends(head, fingerprint=fingerprint, config=config)}
    return await put_retrying(
        store,
        envelope,
        appends=appends,
        lease=lease,
        clear_logs=clear_logs,
        attempts=attempts,
        logger=logger,
    )
