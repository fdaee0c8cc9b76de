"""Bad input every store must refuse the same way, before writing anything.

    seeded = await seed(store)
    for case in BAD_INPUTS:
        error = await refusal(case, store, seeded)    # None when the store got it right

Each :class:`BadInput` is one call with one wrong argument, the exception type it must
raise (a ``TypeError`` / ``ValueError`` naming the argument, or an
:class:`~agent_persist.errors.InvalidPayloadError` for values that are not plain JSON or that
no store can hold) and the text the message must hold. :data:`BAD_ENVELOPES` are the
constructor's own refusals, checked without a store. :func:`snapshot` is what a refused call
must leave unchanged, read through the public API.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from .._json import MAX_JSON_DEPTH
from .._limits import MAX_INT32, MAX_NAMESPACE_BYTES, MAX_TEXT_LENGTH
from ..envelope import Envelope, Producer
from ..errors import InvalidPayloadError, ThreadNotFoundError
from ..stores.base import BaseStore, Lease

__all__ = [
    "BAD_ENVELOPES",
    "BAD_INPUTS",
    "BAD_STORE_OPTIONS",
    "BadEnvelope",
    "BadInput",
    "Seeded",
    "deep",
    "refusal",
    "seed",
    "snapshot",
]

PRODUCER = Producer(package="agent-persist-conformance", package_version="1")
MINUTE = timedelta(minutes=1)


def wrong(value: object) -> Any:
    """A deliberately wrong argument, typed ``Any`` so the type checker lets the call be made."""
    return value


def deep(depth: int) -> Any:
    """A JSON value nesting ``depth`` arrays and objects (``deep(1) == []``)."""
    value: Any = []
    for level in range(depth - 1):
        value = [value] if level % 2 else {"k": value}
    return value


@dataclass(frozen=True, slots=True)
class Seeded:
    """What :func:`seed` wrote: thread ``t`` (two checkpoints, log ``log``), a lease."""

    head: Envelope
    lease: Lease


async def seed(store: BaseStore) -> Seeded:
    """Write the data bad calls must leave alone."""
    first = await store.put(
        _envelope("t", metadata={"user": "ada"}), appends={"log": ["a", {"b": [1]}]}
    )
    head = await store.put(
        first.next(payload={"n": 1}, metadata={"user": "ada", "n": 1}), appends={"log": ["c"]}
    )
    lease = await store.acquire_lease("held", "owner", ttl=timedelta(minutes=5))
    return Seeded(head=head, lease=lease)


def _envelope(thread_id: str, **fields: Any) -> Envelope:
    return Envelope.create(
        kind="conformance.test",
        schema_version=1,
        thread_id=thread_id,
        payload={"n": 0},
        producer=PRODUCER,
        **fields,
    )


async def snapshot(store: BaseStore) -> list[Any]:
    """Everything the public API shows of the store's threads, checkpoints and logs."""
    state: list[Any] = []
    for info in sorted(await store.list_threads(), key=lambda t: t.thread_id):
        state.append(info)
        try:
            checkpoints = await store.list_checkpoints(info.thread_id)
        except ThreadNotFoundError:
            checkpoints = []
        state.append(checkpoints)
        logs = {"log", "new-log"}.union(*(c.logs for c in checkpoints))
        for log in sorted(logs):
            state.append((log, await store.read_log(info.thread_id, log)))
    return state


Call = Callable[[BaseStore, Seeded], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class BadInput:
    """One call with one bad argument, and how it must be refused."""

    label: str
    call: Call
    error: type[Exception]
    says: str
    """Text the message must hold: the argument's name."""
    category: str = ""


def _with_log_version(head: Envelope, version: int) -> Envelope:
    """``head`` claiming a log version no store gives out."""
    return head.model_copy(update={"logs": {"log": version}})


def _constructed(head: Envelope, **fields: Any) -> Envelope:
    """The next envelope with ``fields`` forced in, bypassing validation like a careless caller."""
    values = {**head.next(payload={"n": 2}).__dict__, **fields}
    return Envelope.model_construct(**values)


_BAD_TEXT: tuple[tuple[str, Any, type[Exception]], ...] = (
    ("an int", 123, TypeError),
    ("bytes", b"t", TypeError),
    ("a NUL character", "a\x00b", ValueError),
    ("a lone surrogate", "a\ud800b", ValueError),
    (f"more than {MAX_TEXT_LENGTH} characters", "x" * (MAX_TEXT_LENGTH + 1), ValueError),
)
_BAD_COUNTS: tuple[tuple[str, Any, type[Exception]], ...] = (
    ("a bool", True, TypeError),
    ("a float", 1.5, TypeError),
    ("a str", "1", TypeError),
    ("negative", -1, ValueError),
    ("beyond 32 bits", MAX_INT32 + 1, ValueError),
    ("beyond 64 bits", 2**64, ValueError),
)
_BAD_DURATIONS: tuple[tuple[str, Any, type[Exception]], ...] = (
    ("an int", 5, TypeError),
    ("a float", 1.5, TypeError),
    ("negative", -MINUTE, ValueError),
    ("beyond 100 years", timedelta.max, ValueError),
)
_BAD_JSON: tuple[tuple[str, Any], ...] = (
    ("NaN", math.nan),
    ("Infinity", math.inf),
    ("-Infinity", -math.inf),
    ("a lone surrogate", "\udc80"),
    ("a set", {1, 2}),
    ("bytes", b"x"),
    ("an object", object()),
    ("a tuple key", {(1, 2): 1}),
    (f"nesting {MAX_JSON_DEPTH + 1} deep", deep(MAX_JSON_DEPTH + 1)),
    ("an int of 5000 digits", 10**4999),
)
_BAD_FILTERS: tuple[tuple[str, Any, type[Exception]], ...] = (
    ("a list", [("a", 1)], TypeError),
    ("a str", "user=ada", TypeError),
    ("an int key", {1: "x"}, TypeError),
    ("a NUL in a key", {"a\x00": 1}, ValueError),
    ("a lone surrogate in a key", {"\ud800": 1}, ValueError),
    ("a NUL in a value", {"a": "\x00"}, ValueError),
    ("a lone surrogate in a value", {"a": "\ud800"}, ValueError),
    ("NaN", {"a": math.nan}, ValueError),
    ("Infinity", {"a": math.inf}, ValueError),
    ("an int beyond 64 bits", {"a": 2**64}, ValueError),
    ("a list value", {"a": [1]}, ValueError),
    ("an object value", {"a": {"b": 1}}, ValueError),
    ("a bytes value", {"a": b"x"}, TypeError),
    ("a set value", {"a": {1}}, TypeError),
)

# Methods taking text, by argument: how to call each with ``bad`` in that argument's place.
_TEXT_CALLS: dict[str, Callable[[Any], Call]] = {
    "get thread_id": lambda bad: lambda s, _: s.get(bad),
    "get checkpoint_id": lambda bad: lambda s, _: s.get("t", bad),
    "list_checkpoints thread_id": lambda bad: lambda s, _: s.list_checkpoints(bad),
    "list_checkpoints before": lambda bad: lambda s, _: s.list_checkpoints("t", before=bad),
    "delete_thread thread_id": lambda bad: lambda s, _: s.delete_thread(bad),
    "fork thread_id": lambda bad: lambda s, _: s.fork(bad, "f"),
    "fork new_thread_id": lambda bad: lambda s, _: s.fork("t", bad),
    "fork checkpoint_id": lambda bad: lambda s, _: s.fork("t", "f", checkpoint_id=bad),
    "append thread_id": lambda bad: lambda s, _: s.append(bad, "log", ["x"]),
    "append log": lambda bad: lambda s, _: s.append("t", bad, ["x"]),
    "read_log thread_id": lambda bad: lambda s, _: s.read_log(bad, "log"),
    "read_log log": lambda bad: lambda s, _: s.read_log("t", bad),
    "read_log_lines log": lambda bad: lambda s, _: s.read_log_lines("t", bad),
    "read_logs thread_id": lambda bad: lambda s, d: s.read_logs(bad, ["log"], at=d.head),
    "read_logs logs name": lambda bad: lambda s, d: s.read_logs("t", ["log", bad], at=d.head),
    "tail thread_id": lambda bad: lambda s, _: s.tail(bad, "log", 1),
    "tail_lines log": lambda bad: lambda s, _: s.tail_lines("t", bad, 1),
    "log_length log": lambda bad: lambda s, _: s.log_length("t", bad),
    "pop thread_id": lambda bad: lambda s, _: s.pop(bad, "log"),
    "pop log": lambda bad: lambda s, _: s.pop("t", bad),
    "clear_log log": lambda bad: lambda s, _: s.clear_log("t", bad),
    "acquire_lease thread_id": lambda bad: lambda s, _: s.acquire_lease(bad, "o", ttl=MINUTE),
    "acquire_lease owner": lambda bad: lambda s, _: s.acquire_lease("t", bad, ttl=MINUTE),
    "prune thread_id": lambda bad: lambda s, _: s.prune(bad, keep_last=1),
    "put appends log name": lambda bad: (
        lambda s, d: s.put(d.head.next(payload={}), appends={bad: ["x"]})
    ),
    "put clear_logs name": lambda bad: (
        lambda s, d: s.put(d.head.next(payload={}), clear_logs=["log", bad])
    ),
    "put envelope.thread_id": lambda bad: lambda s, d: s.put(_constructed(d.head, thread_id=bad)),
    "put envelope.checkpoint_id": lambda bad: (
        lambda s, d: s.put(_constructed(d.head, checkpoint_id=bad))
    ),
    "put envelope.kind": lambda bad: lambda s, d: s.put(_constructed(d.head, kind=bad)),
}
_COUNT_CALLS: dict[str, Callable[[Any], Call]] = {
    "list_checkpoints limit": lambda bad: lambda s, _: s.list_checkpoints("t", limit=bad),
    "list_threads limit": lambda bad: lambda s, _: s.list_threads(limit=bad),
    "read_log start": lambda bad: lambda s, _: s.read_log("t", "log", start=bad),
    "read_log stop": lambda bad: lambda s, _: s.read_log("t", "log", stop=bad),
    "read_log_lines start": lambda bad: lambda s, _: s.read_log_lines("t", "log", start=bad),
    "read_logs start": lambda bad: lambda s, d: s.read_logs("t", {"log": (bad, None)}, at=d.head),
    "read_logs stop": lambda bad: lambda s, d: s.read_logs("t", {"log": (0, bad)}, at=d.head),
    "tail count": lambda bad: lambda s, _: s.tail("t", "log", bad),
    "tail_lines count": lambda bad: lambda s, _: s.tail_lines("t", "log", bad),
    "prune keep_last": lambda bad: lambda s, _: s.prune("t", keep_last=bad),
    "put envelope.step": lambda bad: lambda s, d: s.put(_constructed(d.head, step=bad)),
    "put envelope.schema_version": lambda bad: (
        lambda s, d: s.put(_constructed(d.head, schema_version=bad))
    ),
}
_DURATION_CALLS: dict[str, Callable[[Any], Call]] = {
    "acquire_lease ttl": lambda bad: lambda s, _: s.acquire_lease("t", "o", ttl=bad),
    "renew_lease ttl": lambda bad: lambda s, d: s.renew_lease(d.lease, ttl=bad),
    "prune older_than": lambda bad: lambda s, _: s.prune("t", older_than=bad),
}
_JSON_CALLS: dict[str, tuple[str, Callable[[Any], Call]]] = {
    "append items": ("items", lambda bad: lambda s, _: s.append("t", "log", ["ok", bad])),
    "put appends": (
        "appends['log']",
        lambda bad: lambda s, d: s.put(d.head.next(payload={}), appends={"log": ["ok", bad]}),
    ),
    "put payload (bypassing the constructor)": (
        "payload",
        lambda bad: lambda s, d: s.put(_constructed(d.head, payload=bad)),
    ),
    "fork metadata": ("metadata", lambda bad: lambda s, _: s.fork("t", "f", metadata={"m": bad})),
}


def _cases() -> list[BadInput]:
    cases: list[BadInput] = []
    for call_name, make in _TEXT_CALLS.items():
        argument = call_name.split(" ", 1)[1]
        for label, bad, error in _BAD_TEXT:
            cases.append(BadInput(f"{call_name}: {label}", make(bad), error, argument, "text"))
    for call_name, make in _COUNT_CALLS.items():
        argument = call_name.split(" ", 1)[1]
        for label, bad, error in _BAD_COUNTS:
            cases.append(BadInput(f"{call_name}: {label}", make(bad), error, argument, "count"))
    for call_name, make in _DURATION_CALLS.items():
        argument = call_name.split(" ", 1)[1]
        for label, bad, error in _BAD_DURATIONS:
            cases.append(BadInput(f"{call_name}: {label}", make(bad), error, argument, "duration"))
        if argument == "ttl":
            cases.append(
                BadInput(f"{call_name}: None", make(None), TypeError, argument, "duration")
            )
    for call_name, (argument, make) in _JSON_CALLS.items():
        for label, bad in _BAD_JSON:
            cases.append(
                BadInput(f"{call_name}: {label}", make(bad), InvalidPayloadError, argument, "json")
            )
    filter_calls: dict[str, Callable[[Any], Call]] = {
        "list_checkpoints": lambda bad: lambda s, _: s.list_checkpoints("t", metadata=bad),
        "list_threads": lambda bad: lambda s, _: s.list_threads(metadata=bad),
    }
    for call_name, call in filter_calls.items():
        for label, bad, error in _BAD_FILTERS:
            cases.append(
                BadInput(f"{call_name} metadata: {label}", call(bad), error, "metadata", "filter")
            )
    cases += _other_cases()
    return cases


def _other_cases() -> list[BadInput]:
    def case(label: str, call: Call, error: type[Exception], says: str) -> BadInput:
        return BadInput(label, call, error, says, "argument")

    other_lease = Lease("elsewhere", "owner", "token", datetime.now().astimezone())
    return [
        case(
            "put envelope: a dict",
            lambda s, d: s.put(wrong(d.head.model_dump())),
            TypeError,
            "envelope",
        ),
        case("put envelope: None", lambda s, _: s.put(wrong(None)), TypeError, "envelope"),
        case(
            "put appends: a list",
            lambda s, d: s.put(d.head.next(payload={}), appends=wrong([["x"]])),
            TypeError,
            "appends",
        ),
        case(
            "put appends items: a str",
            lambda s, d: s.put(d.head.next(payload={}), appends={"log": "abc"}),
            TypeError,
            "appends['log']",
        ),
        case(
            "put appends items: bytes",
            lambda s, d: s.put(d.head.next(payload={}), appends={"log": b"abc"}),
            TypeError,
            "appends['log']",
        ),
        case(
            "put appends items: a set",
            lambda s, d: s.put(d.head.next(payload={}), appends=wrong({"log": {1}})),
            TypeError,
            "appends['log']",
        ),
        case(
            "put appends items: an int",
            lambda s, d: s.put(d.head.next(payload={}), appends=wrong({"log": 5})),
            TypeError,
            "appends['log']",
        ),
        case(
            "put clear_logs: a str",
            lambda s, d: s.put(d.head.next(payload={}), clear_logs=wrong("log")),
            TypeError,
            "clear_logs",
        ),
        case(
            "put clear_logs: a set",
            lambda s, d: s.put(d.head.next(payload={}), clear_logs=wrong({"log"})),
            TypeError,
            "clear_logs",
        ),
        case(
            "put clear_logs: a mapping",
            lambda s, d: s.put(d.head.next(payload={}), clear_logs=wrong({"log": 1})),
            TypeError,
            "clear_logs",
        ),
        case(
            "put lease: a str",
            lambda s, d: s.put(d.head.next(payload={}), lease=wrong("x")),
            TypeError,
            "lease",
        ),
        case(
            "put lease: another thread's",
            lambda s, d: s.put(d.head.next(payload={}), lease=d.lease),
            ValueError,
            "lease",
        ),
        case(
            "put envelope.metadata: a NUL",
            lambda s, d: s.put(_constructed(d.head, metadata={"a": "\x00"})),
            InvalidPayloadError,
            "metadata",
        ),
        case(
            "put envelope.metadata: an int beyond 64 bits",
            lambda s, d: s.put(_constructed(d.head, metadata={"a": 2**64})),
            InvalidPayloadError,
            "metadata",
        ),
        case(
            "put envelope.metadata: a list",
            lambda s, d: s.put(_constructed(d.head, metadata=[1])),
            TypeError,
            "metadata",
        ),
        case(
            "put envelope.parent_id: a NUL",
            lambda s, d: s.put(_constructed(d.head, parent_id="\x00")),
            ValueError,
            "parent_id",
        ),
        case("append items: a str", lambda s, _: s.append("t", "log", "abc"), TypeError, "items"),
        case("append items: bytes", lambda s, _: s.append("t", "log", b"abc"), TypeError, "items"),
        case(
            "append items: a dict",
            lambda s, _: s.append("t", "log", wrong({"a": 1})),
            TypeError,
            "items",
        ),
        case(
            "append items: None", lambda s, _: s.append("t", "log", wrong(None)), TypeError, "items"
        ),
        case(
            "append items: a generator",
            lambda s, _: s.append("t", "log", wrong(i for i in range(2))),
            TypeError,
            "items",
        ),
        case(
            "append lease: an int",
            lambda s, _: s.append("t", "log", ["x"], lease=wrong(1)),
            TypeError,
            "lease",
        ),
        case(
            "append lease: another thread's",
            lambda s, _: s.append("t", "log", ["x"], lease=other_lease),
            ValueError,
            "lease",
        ),
        case(
            "read_log start: None",
            lambda s, _: s.read_log("t", "log", start=wrong(None)),
            TypeError,
            "start",
        ),
        case(
            "read_log at: a str",
            lambda s, _: s.read_log("t", "log", at=wrong("x")),
            TypeError,
            "at",
        ),
        case(
            "read_log at: another thread's",
            lambda s, d: s.read_log("u", "log", at=d.head),
            ValueError,
            "at",
        ),
        case(
            "read_log at: a log version beyond 64 bits",
            lambda s, d: s.read_log("t", "log", at=_with_log_version(d.head, 2**64)),
            ValueError,
            "at",
        ),
        case(
            "read_logs at: None",
            lambda s, _: s.read_logs("t", ["log"], at=wrong(None)),
            TypeError,
            "at",
        ),
        case(
            "read_logs at: another thread's",
            lambda s, d: s.read_logs("u", ["log"], at=d.head),
            ValueError,
            "at",
        ),
        case(
            "read_logs logs: a str",
            lambda s, d: s.read_logs("t", wrong("log"), at=d.head),
            TypeError,
            "logs",
        ),
        case(
            "read_logs logs: a range that is not a pair",
            lambda s, d: s.read_logs("t", {"log": wrong((0,))}, at=d.head),
            TypeError,
            "logs",
        ),
        case("tail count: None", lambda s, _: s.tail("t", "log", wrong(None)), TypeError, "count"),
        case(
            "renew_lease lease: a str",
            lambda s, _: s.renew_lease(wrong("x"), ttl=MINUTE),
            TypeError,
            "lease",
        ),
        case(
            "renew_lease lease: an int token",
            lambda s, d: s.renew_lease(replace(d.lease, token=1), ttl=MINUTE),
            TypeError,
            "lease.token",
        ),
        case(
            "release_lease lease: None",
            lambda s, _: s.release_lease(wrong(None)),
            TypeError,
            "lease",
        ),
        case(
            "release_lease lease: a str expiry",
            lambda s, d: s.release_lease(replace(d.lease, expires_at="soon")),
            TypeError,
            "lease.expires_at",
        ),
        case(
            "fork metadata: a list",
            lambda s, _: s.fork("t", "f", metadata=wrong([("a", 1)])),
            TypeError,
            "metadata",
        ),
        case(
            "fork metadata: a NUL key",
            lambda s, _: s.fork("t", "f", metadata={"\x00": 1}),
            InvalidPayloadError,
            "metadata",
        ),
    ]


BAD_INPUTS: tuple[BadInput, ...] = tuple(_cases())
"""Every bad call, grouped by ``category`` (text, count, duration, json, filter, argument)."""


async def refusal(case: BadInput, store: BaseStore, seeded: Seeded) -> str | None:
    """Run one bad call; what went wrong, or ``None`` if it was refused as it must be."""
    try:
        await case.call(store, seeded)
    except Exception as exc:
        if type(exc) is not case.error:
            raised = f"{type(exc).__name__}: {exc!s:.200}"
            return f"{case.label}: raised {raised}, not {case.error.__name__}"
        if case.says not in str(exc):
            return f"{case.label}: the message does not name {case.says!r}: {exc!s:.200}"
        return None
    return f"{case.label}: accepted"


@dataclass(frozen=True, slots=True)
class BadEnvelope:
    """One envelope construction with one bad field."""

    label: str
    build: Callable[[], Any]
    error: type[Exception]
    says: str


def _create(**fields: Any) -> Callable[[], Envelope]:
    values: dict[str, Any] = {
        "kind": "k",
        "schema_version": 1,
        "thread_id": "t",
        "payload": {},
        "producer": PRODUCER,
        **fields,
    }
    return lambda: Envelope.create(**values)


def _next(**changes: Any) -> Callable[[], Envelope]:
    changes.setdefault("payload", {})
    return lambda: _envelope("t").next(**changes)


def _envelope_cases() -> list[BadEnvelope]:
    cases: list[BadEnvelope] = []
    invalid = ValidationError
    for field in ("kind", "thread_id", "parent_id", "fingerprint", "stop_reason"):
        for label, bad in (
            ("an int", 1),
            ("a NUL character", "a\x00"),
            ("a lone surrogate", "\ud800"),
        ):
            cases.append(
                BadEnvelope(f"create {field}: {label}", _create(**{field: bad}), invalid, field)
            )
    for field in ("kind", "thread_id", "parent_id"):
        long = "x" * (MAX_TEXT_LENGTH + 1)
        cases.append(
            BadEnvelope(f"create {field}: too long", _create(**{field: long}), invalid, field)
        )
    cases.append(BadEnvelope("create kind: empty", _create(kind=""), invalid, "kind"))
    for field in ("schema_version", "step"):
        for label, bad in (
            ("negative", -1),
            ("a bool", True),
            ("a float", 1.0),
            ("a str", "1"),
            ("None", None),
            ("beyond 32 bits", MAX_INT32 + 1),
            ("beyond 64 bits", 2**64),
        ):
            cases.append(
                BadEnvelope(f"create {field}: {label}", _create(**{field: bad}), invalid, field)
            )
            cases.append(
                BadEnvelope(f"next {field}: {label}", _next(**{field: bad}), invalid, field)
            )
    cases += [
        BadEnvelope("create status: unknown", _create(status="sleeping"), invalid, "status"),
        BadEnvelope("create producer: an int", _create(producer=1), invalid, "producer"),
        BadEnvelope(
            "create producer.package: a NUL",
            _create(producer={"package": "\x00"}),
            invalid,
            "package",
        ),
        BadEnvelope("create metadata: a list", _create(metadata=[1]), invalid, "metadata"),
        BadEnvelope("next: an unknown field", _next(colour="red"), invalid, "colour"),
        BadEnvelope(
            "next created_at: naive", _next(created_at=datetime(2020, 1, 1)), invalid, "created_at"
        ),
        BadEnvelope(
            "replace checksum: wrong",
            lambda: _envelope("t").replace(checksum="sha256:0"),
            invalid,
            "checksum",
        ),
    ]
    for label, bad in _BAD_JSON:
        for field in ("payload", "metadata"):
            value = bad if field == "payload" else {"m": bad}
            cases.append(
                BadEnvelope(
                    f"create {field}: {label}",
                    _create(**{field: value}),
                    InvalidPayloadError,
                    field,
                )
            )
            cases.append(
                BadEnvelope(
                    f"next {field}: {label}", _next(**{field: value}), InvalidPayloadError, field
                )
            )
    for label, bad in (
        ("a NUL in a value", {"a": "\x00"}),
        ("a NUL in a key", {"a\x00": 1}),
        ("a nested NUL", {"a": [{"b": "\x00"}]}),
        ("an int beyond 64 bits", {"a": 2**63}),
        ("a nested int beyond 64 bits", {"a": {"b": -(2**63) - 1}}),
    ):
        cases.append(
            BadEnvelope(
                f"create metadata: {label}", _create(metadata=bad), InvalidPayloadError, "metadata"
            )
        )
    return cases


BAD_ENVELOPES: tuple[BadEnvelope, ...] = tuple(_envelope_cases())
"""Envelope constructions every caller gets refused, whatever store it writes to."""

BAD_STORE_OPTIONS: tuple[tuple[str, dict[str, Any], type[Exception], str], ...] = (
    ("namespace: an int", {"namespace": 1}, TypeError, "namespace"),
    ("namespace: a NUL", {"namespace": "a\x00"}, ValueError, "namespace"),
    (
        "namespace: too long",
        {"namespace": "🤖" * (MAX_NAMESPACE_BYTES // 4 + 1)},
        ValueError,
        "namespace",
    ),
    ("ttl: an int", {"ttl": 60}, TypeError, "ttl"),
    ("ttl: zero", {"ttl": timedelta(0)}, ValueError, "ttl"),
    ("ttl: beyond 100 years", {"ttl": timedelta.max}, ValueError, "ttl"),
    ("keep_last: zero", {"keep_last": 0}, ValueError, "keep_last"),
    ("keep_last: a float", {"keep_last": 2.0}, TypeError, "keep_last"),
    ("keep_last: beyond 32 bits", {"keep_last": MAX_INT32 + 1}, ValueError, "keep_last"),
    ("codec: a str", {"codec": "zlib"}, TypeError, "codec"),
)
"""Store constructor options every store refuses (``BaseStore.__init__`` checks them)."""
