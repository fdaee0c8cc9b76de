"""Reading export files for ``import``: everything is checked before anything is written.

    planned = read_import([Path("backup/")])      # raises CorruptCheckpointError, says where
    for thread in planned:
        await import_thread(store, thread.plan)

A file is refused whole for any damage: bytes that are not UTF-8, JSON that does not parse
(truncated, malformed, ``NaN``/``Infinity`` literals, a number too large for a float or
with more digits than Python reads), a value nested deeper than :data:`MAX_NESTING`, a
record of the wrong shape, an envelope that does not validate (a checksum that does not
match its payload, a step or version beyond what a store holds), a checkpoint of another
thread, checkpoint ids or thread ids seen twice, parents that do not chain, a log change
that keeps more items than the log had. Only then does ``import`` open the store.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from .._json import JSON
from ..envelope import Envelope
from ..errors import CorruptCheckpointError, EncryptionError, InvalidPayloadError
from ..versions import upgrade_header
from ._sealed import SEALED_FIELD
from ._transfer import FORMAT, FORMAT_VERSION

__all__ = [
    "MAX_NESTING",
    "PlannedThread",
    "plan_records",
    "plan_thread",
    "read_import",
    "read_records",
]

MAX_NESTING = 256
"""The deepest payload, metadata value or log item accepted, in nested arrays/objects.

JSON nested much deeper cannot be read back by Python's parser inside a running command
(it raises ``RecursionError`` near 1,000 levels, fewer with a deep call stack), so a value
that imported would be unreadable; real agent state is a few dozen levels deep.
"""

INT_MAX = 2**31 - 1
"""The largest step and schema version every store holds (PostgreSQL ``integer``)."""

MAX_DIGITS = 4300
"""The longest integer literal read (Python's own limit for ``int(str)``)."""

LogSteps = dict[str, tuple[int, list[JSON]]]
"""Per log, ``(keep, add)``: keep the first K items of the previous view, then append."""

Plan = list[tuple[Envelope | None, LogSteps]]
"""Per checkpoint (``None``: the changes after the head), its log changes."""


@dataclass(frozen=True, slots=True)
class PlannedThread:
    """One thread of the files, checked and ready to write."""

    thread_id: str
    where: str
    plan: Plan

    @property
    def checkpoints(self) -> int:
        """How many checkpoints the thread holds."""
        return len(self.plan) - 1


def read_import(paths: tuple[Path, ...]) -> list[PlannedThread]:
    """Every thread of the files (directories: their ``*.json``; ``-``: stdin), checked.

    Raises:
        CorruptCheckpointError: The first damage found, naming the file, thread and
            checkpoint; nothing has been written.
        FutureVersionError: A file or envelope format newer than this code.
        OSError: A file that cannot be read.
    """
    return plan_records(read_records(paths))


def read_records(paths: tuple[Path, ...]) -> list[tuple[Any, str]]:
    """Every thread record of the files, parsed but not checked, with where it was read."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    records: list[tuple[Any, str]] = []
    for file in files:
        source = "stdin" if str(file) == "-" else str(file)
        data = _stdin_bytes() if str(file) == "-" else file.read_bytes()
        for index, record in enumerate(_thread_records(parse(data, where=source), source)):
            records.append((record, f"{source}: threads[{index}]"))
    return records


def plan_records(records: list[tuple[Any, str]]) -> list[PlannedThread]:
    """The threads of :func:`read_records`, each checked (see :func:`plan_thread`)."""
    planned: list[PlannedThread] = []
    thread_seen: dict[str, str] = {}
    checkpoint_seen: dict[str, str] = {}
    for record, where in records:
        thread = plan_thread(record, where=where)
        if thread.thread_id in thread_seen:
            raise CorruptCheckpointError(
                f"{thread.where}: thread {thread.thread_id!r} is also in "
                f"{thread_seen[thread.thread_id]}"
            )
        thread_seen[thread.thread_id] = thread.where
        for envelope, _ in thread.plan:
            if envelope is None:
                continue
            first = checkpoint_seen.setdefault(envelope.checkpoint_id, thread.where)
            if first != thread.where:
                raise CorruptCheckpointError(
                    f"{thread.where}: checkpoint id {envelope.checkpoint_id!r} is also used "
                    f"in {first}"
                )
        planned.append(thread)
    return planned


def _stdin_bytes() -> bytes:
    return sys.stdin.buffer.read()


def parse(data: bytes, *, where: str) -> Any:
    """Strict JSON from bytes: UTF-8 (a BOM allowed), finite numbers, bounded nesting."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorruptCheckpointError(
            f"{where}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
        ) from None
    if not text.strip():
        raise CorruptCheckpointError(f"{where}: empty file, not an agent-persist export")
    try:
        return json.loads(
            text, parse_constant=_no_constant, parse_float=_finite, parse_int=_bounded
        )
    except RecursionError:
        raise CorruptCheckpointError(
            f"{where}: nested too deeply to read (values may nest {MAX_NESTING} levels)"
        ) from None
    except ValueError as exc:  # JSONDecodeError, or one of the checks below
        raise CorruptCheckpointError(f"{where}: not valid JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range of a float")
    return value


def _bounded(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits (at most {MAX_DIGITS} are read)")
    return int(text)


def _thread_records(document: Any, source: str) -> list[Any]:
    if not isinstance(document, dict):
        raise CorruptCheckpointError(
            f"{source}: not an agent-persist export (a JSON {_type(document)}, not an object)"
        )
    body = cast("dict[str, Any]", document)
    if body.get("format") != FORMAT:
        raise CorruptCheckpointError(f"{source}: not an agent-persist export")
    version = body.get("version")
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise CorruptCheckpointError(
            f"{source}: export format version {version!r}, this code reads {FORMAT_VERSION}"
        )
    threads = body.get("threads")
    if not isinstance(threads, list):
        raise CorruptCheckpointError(f"{source}: 'threads' is not a list (a JSON {_type(threads)})")
    return cast("list[Any]", threads)


def _type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages ("a JSON array")."""
    for python, name in ((dict, "object"), (list, "array"), (str, "string"), (bool, "boolean")):
        if isinstance(value, python):
            return name
    return "null" if value is None else "number"


def plan_thread(record: Any, *, where: str) -> PlannedThread:
    """Check a whole exported thread and turn it into the writes that rebuild it.

    Every envelope is validated and every log change checked against the log's length at
    that point, so a damaged thread is refused whole, and ``--replace`` never deletes a
    thread for an import that would fail half-way. A pruned thread's oldest checkpoint
    points to a parent that is gone: it becomes the root (``parent_id`` null).
    """
    if not isinstance(record, dict):
        raise CorruptCheckpointError(f"{where}: not a thread record (a JSON {_type(record)})")
    fields = cast("dict[str, Any]", record)
    thread_id = fields.get("thread_id")
    if not isinstance(thread_id, str):
        raise CorruptCheckpointError(f"{where}: no thread_id string")
    where = f"{where} (thread {thread_id!r})"
    if fields.get(SEALED_FIELD) is not None:
        raise EncryptionError(
            f"{where}: sealed by an encrypted store (exported without --decrypt); import it "
            "with --keys-env PREFIX (the key ring it was sealed with), or export it again "
            "with --decrypt; nothing was imported"
        )
    checkpoints = fields.get("checkpoints")
    if not isinstance(checkpoints, list) or not checkpoints:
        raise CorruptCheckpointError(f"{where}: 'checkpoints' is not a non-empty list")
    lengths: dict[str, int] = {}
    plan: Plan = []
    ids: set[str] = set()
    head: str | None = None
    for index, raw in enumerate(cast("list[Any]", checkpoints)):
        claimed = (
            cast("dict[str, Any]", raw).get("checkpoint_id") if isinstance(raw, dict) else None
        )
        at = f"{where} checkpoint {index}"
        at += f" ({claimed})" if isinstance(claimed, str) else ""
        envelope, changes = _checkpoint(raw, where=at)
        if envelope.thread_id != thread_id:
            raise CorruptCheckpointError(f"{at}: belongs to thread {envelope.thread_id!r}")
        if envelope.checkpoint_id in ids:
            raise CorruptCheckpointError(f"{at}: the checkpoint id is used twice in the thread")
        ids.add(envelope.checkpoint_id)
        if index == 0 and envelope.parent_id is not None:
            envelope = envelope.model_copy(update={"parent_id": None})  # pruned history
        elif envelope.parent_id != head:
            raise CorruptCheckpointError(
                f"{at}: its parent {envelope.parent_id!r} is not the checkpoint before it "
                f"({head!r})"
            )
        plan.append((envelope, _log_steps(changes, lengths, where=at)))
        head = envelope.checkpoint_id
    after = fields.get("log_changes_after_head")
    plan.append((None, _log_steps(after, lengths, where=f"{where} log_changes_after_head")))
    return PlannedThread(thread_id, where, plan)


def _checkpoint(raw: Any, *, where: str) -> tuple[Envelope, Any]:
    """The envelope of one exported checkpoint, validated, and its raw log changes."""
    if not isinstance(raw, dict):
        raise CorruptCheckpointError(f"{where}: not a checkpoint record (a JSON {_type(raw)})")
    fields = dict(cast("dict[str, Any]", raw))
    changes = fields.pop("log_changes", None)
    for name in ("payload", "metadata"):
        _check_nesting(fields.get(name), where=f"{where}: {name}")
    for name in ("format_version", "schema_version", "step"):
        value = fields.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= INT_MAX:
            raise CorruptCheckpointError(f"{where}: {name} {value} is out of range 0..{INT_MAX}")
    checksum = fields.get("checksum")
    if not isinstance(checksum, str) or not checksum:
        raise CorruptCheckpointError(f"{where}: no checksum, so the payload cannot be checked")
    header = upgrade_header(fields, where=where)
    try:
        return Envelope.model_validate(header), changes
    except ValidationError as exc:
        raise CorruptCheckpointError(f"{where}: not a valid envelope: {_summary(exc)}") from None
    except InvalidPayloadError as exc:  # raised by the payload and metadata checks
        raise CorruptCheckpointError(f"{where}: {exc}") from None


def _summary(exc: ValidationError) -> str:
    """A validation error's problems on one line: ``field: message; ...``."""
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'envelope'}: {error['msg']}"
        for error in exc.errors()
    ]
    shown = "; ".join(problems[:3])
    return shown if len(problems) <= 3 else f"{shown} (and {len(problems) - 3} more)"


def _log_steps(raw: Any, lengths: dict[str, int], *, where: str) -> LogSteps:
    """Check one checkpoint's log changes against the logs' lengths; updates ``lengths``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CorruptCheckpointError(
            f"{where}: log changes are not an object (a JSON {_type(raw)})"
        )
    steps: LogSteps = {}
    for name, change in cast("dict[str, Any]", raw).items():
        at = f"{where}: log {name!r}"
        body = cast("dict[str, Any]", change) if isinstance(change, dict) else {}
        if not isinstance(body.get("add"), list):
            raise CorruptCheckpointError(f"{at}: not a log change ({{'keep': K, 'add': [...]}})")
        added = cast("list[JSON]", body["add"])
        keep = body.get("keep")
        length = lengths.get(name, 0)
        if not isinstance(keep, int) or isinstance(keep, bool) or not 0 <= keep <= length:
            raise CorruptCheckpointError(
                f"{at}: keep {keep!r} out of range (the log had {length} items)"
            )
        for position, item in enumerate(added):
            _check_nesting(item, where=f"{at} item {keep + position}")
        lengths[name] = keep + len(added)
        steps[name] = (keep, added)
    return steps


def _check_nesting(value: Any, *, where: str) -> None:
    """Refuse a value nested deeper than :data:`MAX_NESTING` (walked without recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: list[Any] = list(cast("dict[str, Any]", item).values())
        elif isinstance(item, list):
            children = cast("list[Any]", item)
        else:
            continue
        if depth > MAX_NESTING:
            raise CorruptCheckpointError(f"{where}: nested more than {MAX_NESTING} levels deep")
        pending.extend((child, depth + 1) for child in children if _is_container(child))


def _is_container(value: Any) -> bool:
    return isinstance(value, dict | list)
