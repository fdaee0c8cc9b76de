"""Lease owners that say which process they are, so a restart can prove its predecessor dead.

Public as :mod:`agent_persist.leases`. This module imports nothing of the package, so a
process can load it alone (the tests' children do, to start fast)::

    owner = owner_id()              # "host/boot-id/pid-namespace/pid/start-time/random"
    ...
    except LeaseHeldError as held:  # after a crash and a restart
        if held.holder is not None and owner_is_dead(held.holder):
            lease = await store.acquire_lease(thread_id, owner, ttl=ttl, take_over=held.holder)

A process is named by the kernel's boot id, its pid namespace, its pid and the pid's start
time (field 22 of ``/proc/<pid>/stat``, in clock ticks since boot). Hostnames repeat across
containers and pids repeat across namespaces and reboots, but that quadruple names one
process for ever. :func:`owner_is_dead` is ``True`` only when it can prove the owner gone:
same boot, same pid namespace (so this process sees the owner's pid), and no such pid any
more, or a pid reused by a later process, or a zombie. Anything it cannot read or parse (another
machine, another container, a non-Linux system, an owner name chosen by hand) counts as alive,
so a live worker's lease is never taken from it; such a lease is only taken once it expires.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OwnerIdentity", "owner_id", "owner_is_dead", "parse_owner"]

_PROC = Path("/proc")
_UNKNOWN = "-"
_NAMESPACE = re.compile(r"pid:\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class OwnerIdentity:
    """The parts of an owner id; ``"-"`` for a part that could not be read."""

    host: str
    boot_id: str
    pid_namespace: str
    pid: int
    start_time: str
    nonce: str


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _boot_id() -> str | None:
    return _read(_PROC / "sys" / "kernel" / "random" / "boot_id")


def _pid_namespace() -> str | None:
    try:
        link = os.readlink(_PROC / "self" / "ns" / "pid")
    except OSError:
        return None
    match = _NAMESPACE.fullmatch(link)
    return match.group(1) if match else None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or ``None`` if unreadable."""
    try:
        text = (_PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    _, close, rest = text.rpartition(")")  # the name may hold spaces and parentheses
    fields = rest.split()
    return fields if close and len(fields) >= 20 else None


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields else None  # field 22; the list starts at field 3


def _pid_exists(pid: int) -> bool | None:
    """Whether the pid exists in this pid namespace; ``None`` if that cannot be told.

    A signal 0 asks the kernel itself, so a ``/proc`` that hides other users' processes
    (``hidepid``) cannot make a live process look gone.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    except OSError:
        return None
    return True


def _proc_is_ours() -> bool:
    """Whether ``/proc`` shows this process's pid namespace (it may be the host's)."""
    try:
        return os.readlink(_PROC / "self") == str(os.getpid())
    except OSError:
        return False


def owner_id() -> str:
    """A lease owner id naming this process: host, boot id, pid namespace, pid, start time.

    A random suffix makes every call unique, so two holders in one process are two owners.
    Parts that cannot be read (not Linux) are ``"-"``; such an owner is never provably dead.
    """
    pid = os.getpid()
    parts = [
        socket.gethostname().replace("/", "_") or _UNKNOWN,
        _boot_id() or _UNKNOWN,
        _pid_namespace() or _UNKNOWN,
        str(pid),
        _start_time(pid) or _UNKNOWN,
        secrets.token_hex(4),
    ]
    return "/".join(parts)


def parse_owner(owner: str) -> OwnerIdentity | None:
    """The parts of an id made by :func:`owner_id`, or ``None`` for any other string."""
    parts = owner.split("/")
    if len(parts) != 6 or not parts[3].isdigit() or int(parts[3]) <= 0:
        return None
    host, boot_id, namespace, pid, start_time, nonce = parts
    return OwnerIdentity(host, boot_id, namespace, int(pid), start_time, nonce)


def owner_is_dead(owner: str) -> bool:
    """Whether the process named by ``owner`` provably no longer runs.

    ``True`` only when ``owner`` comes from :func:`owner_id` on this boot of this kernel, in
    this pid namespace, and its pid is gone, reused by a process started at another time, or
    a zombie. Every other case, unreadable or unparsable included, is ``False``: alive.
    """
    identity = parse_owner(owner)
    if identity is None or _UNKNOWN in (identity.boot_id, identity.pid_namespace):
        return False
    if identity.start_time == _UNKNOWN or not identity.start_time.isdigit():
        return False
    boot_id, namespace = _boot_id(), _pid_namespace()
    if boot_id is None or namespace is None or not _proc_is_ours():
        return False
    if identity.boot_id != boot_id or identity.pid_namespace != namespace:
        return False
    exists = _pid_exists(identity.pid)
    if exists is None:
        return False
    if not exists:
        return True
    fields = _stat_fields(identity.pid)
    if fields is None:  # hidden, or it exited a moment ago: the next look will tell
        return False
    state, start_time = fields[0], fields[19]
    return start_time != identity.start_time or state in ("Z", "X")
