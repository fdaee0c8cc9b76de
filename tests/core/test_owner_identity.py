"""owner_is_dead: True only when the owner's process provably no longer runs.

Real processes, no mocks: this process, a child that is alive, a zombie and a reaped one,
and owner ids altered the way another machine, container or a reused pid would alter them.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from agent_persist.leases import owner_id, owner_is_dead, parse_owner

pytestmark = pytest.mark.skipif(
    not Path("/proc/sys/kernel/random/boot_id").exists(), reason="needs Linux /proc"
)

PRINT_OWNER_AND_WAIT = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("owners", {inspect.getfile(owner_id)!r})
module = sys.modules["owners"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)  # only owner_id's module: the package is slow to import
print(module.owner_id(), flush=True)
sys.stdin.read()
"""


def _replace(owner: str, index: int, value: str) -> str:
    parts = owner.split("/")
    parts[index] = value
    return "/".join(parts)


def _child() -> tuple[subprocess.Popen[str], str]:
    """A child process that prints its owner id and runs until its stdin closes."""
    child = subprocess.Popen(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", PRINT_OWNER_AND_WAIT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def _end(child: subprocess.Popen[str], *, reap: bool = True) -> None:
    """Let the child exit (and reap it unless ``reap`` is False)."""
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.close()
    child.stdout.read()  # EOF: the child is exiting
    child.stdout.close()
    if reap:
        child.wait()


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def test_this_process_is_alive() -> None:
    owner = owner_id()
    identity = parse_owner(owner)
    assert identity is not None
    assert "-" not in (identity.boot_id, identity.pid_namespace, identity.start_time)
    assert not owner_is_dead(owner)
    assert owner_id() != owner  # a new owner per call, the same process


def test_a_child_is_alive_then_dead_once_reaped() -> None:
    child, owner = _child()
    try:
        assert parse_owner(owner) is not None
        assert not owner_is_dead(owner)
    finally:
        _end(child)
    assert owner_is_dead(owner)


def test_a_zombie_is_dead() -> None:
    child, owner = _child()
    _end(child, reap=False)
    try:
        while _state(child.pid) != "Z":  # not reaped: it stays a zombie
            time.sleep(0.01)
        assert owner_is_dead(owner)
    finally:
        child.wait()


def test_a_reused_pid_with_another_start_time_is_dead() -> None:
    owner = owner_id()  # this pid exists, but "started" at another time
    start_time = owner.split("/")[4]
    assert owner_is_dead(_replace(owner, 4, str(int(start_time) + 1)))


def test_a_dead_pid_of_another_boot_or_pid_namespace_is_alive() -> None:
    child, owner = _child()
    _end(child)
    assert owner_is_dead(owner)
    assert not owner_is_dead(_replace(owner, 1, str(uuid.uuid4())))  # another machine / boot
    assert not owner_is_dead(_replace(owner, 2, "4026531999"))  # another container
    # the proof rests on boot id, namespace, pid and start time: not the (renamable) hostname,
    # nor the random suffix
    assert owner_is_dead(_replace(owner, 0, "renamed-host"))
    assert owner_is_dead(_replace(owner, 5, "ffffffff"))


@pytest.mark.parametrize(
    "owner",
    [
        "",
        "worker-a",
        "host:123:abcd",
        "a/b/c/d/e/f",
        "host/-/-/1/-/ab",
        "host/{boot}/{ns}/notapid/1/ab",
        "host/{boot}/{ns}/0/1/ab",
        "host/{boot}/{ns}/999999999/-/ab",
        "host/{boot}/{ns}/999999999/x/ab",
        "host/{boot}/{ns}/999999999/1/ab/extra",
    ],
)
def test_unparsable_or_incomplete_owners_are_alive(owner: str) -> None:
    mine = owner_id().split("/")
    assert not owner_is_dead(owner.format(boot=mine[1], ns=mine[2]))


def test_a_vanished_pid_of_this_boot_and_namespace_is_dead() -> None:
    mine = owner_id().split("/")
    assert owner_is_dead("/".join([mine[0], mine[1], mine[2], "999999999", "1", "ab"]))
