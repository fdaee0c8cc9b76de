"""A real local Redis Cluster for the tests: three masters and three replicas on loopback.

    with LocalCluster(tmp_path) as cluster:
        url = cluster.url   # 'redis+cluster://127.0.0.1:41000,127.0.0.1:41001,...'

Started from ``redis-server --cluster-enabled yes`` in a temporary directory, joined by
``redis-cli --cluster create --cluster-replicas 1``, ready once every node reports
``cluster_state:ok``. Only the servers it started are stopped (by their process, never by
name); the shared Redis on 6379 is never touched. Persistence is off and the servers are
small, since the machine's cores are shared.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

__all__ = ["ClusterUnavailable", "LocalCluster"]

_NODES = 6
_READY_SECONDS = 30.0


class ClusterUnavailable(RuntimeError):
    """The cluster could not be started here (no redis-server, no free ports, timeout)."""


class _PortTaken(ClusterUnavailable):
    """A node could not listen: another process took its port after it was found free."""


_START_ATTEMPTS = 3


def _free_ports(count: int) -> list[int]:
    """``count`` loopback ports whose cluster bus port (+10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        try:
            with socket.socket() as bus:
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        ports.append(port)
    return ports


class LocalCluster:
    """Six ``redis-server`` processes forming a cluster; a context manager."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self.ports: list[int] = []
        self._cli = "redis-cli"

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming every node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def __enter__(self) -> LocalCluster:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            raise ClusterUnavailable("redis-server or redis-cli is not installed")
        self._cli = cli
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                self._start(server, cli)
            except _PortTaken:  # a race with whoever took the port: new ports, once more
                self.stop()
                if attempt == _START_ATTEMPTS:
                    raise
            except BaseException:
                self.stop()
                raise
            else:
                return self
        raise AssertionError("unreachable")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self, server: str, cli: str) -> None:
        self.ports = _free_ports(_NODES)
        for port in self.ports:
            self.start_node(port, server)
        for port in self.ports:
            self.wait_for(port, "PING", "PONG")
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        created = subprocess.run(  # noqa: S603 - our own arguments
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True,
            timeout=_READY_SECONDS,
            check=False,
        )
        if created.returncode != 0:
            raise ClusterUnavailable(f"redis-cli --cluster create failed: {created.stdout!r}")
        for port in self.ports:
            self.wait_for(port, "CLUSTER INFO", "cluster_state:ok")
        self.wait_replicated()

    def wait_replicated(self) -> None:
        """Wait until every running master has its replica online (``WAIT`` counts them)."""
        deadline = time.monotonic() + _READY_SECONDS
        for port in self._processes:
            while time.monotonic() < deadline:
                replication = self.info(port, "INFO replication")
                if "master_link_status:up" in replication or "state=online" in replication:
                    break
                time.sleep(0.1)
            else:
                raise ClusterUnavailable(f"node {port}: replication did not come up")

    def start_node(self, port: int, server: str = "redis-server") -> None:
        """Start (or restart) the node on ``port``, with its own directory and config."""
        work = self._directory / str(port)
        work.mkdir(parents=True, exist_ok=True)
        log = (work / "log").open("ab")
        self._processes[port] = subprocess.Popen(  # noqa: S603 - our own arguments
            [
                server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(work / "nodes.conf"),
                "--cluster-node-timeout",
                "1000",
                "--dir",
                str(work),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def replica_of(self, port: int) -> int:
        """The port of the master on ``port``'s replica."""
        found = re.search(r"slave0:ip=[^,]*,port=(\d+)", self.info(port, "INFO replication"))
        if found is None:
            raise ClusterUnavailable(f"node {port} has no replica")
        return int(found.group(1))

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port`` (a crash: no chance to hand anything over)."""
        process = self._processes.pop(port)
        process.kill()
        process.wait(timeout=10)

    def info(self, port: int, command: str) -> str:
        """A node's answer to ``command`` via redis-cli ('' if it does not answer)."""
        done = subprocess.run(  # noqa: S603 - our own arguments
            [self._cli, "-p", str(port), *command.split()],
            capture_output=True,
            timeout=5,
            check=False,
        )
        return done.stdout.decode(errors="replace")

    def wait_for(self, port: int, command: str, expected: str) -> None:
        """Wait until the node on ``port`` answers ``command`` with ``expected`` in it."""
        deadline = time.monotonic() + _READY_SECONDS
        while time.monotonic() < deadline:
            if expected in self.info(port, command):
                return
            self._check_running(port)
            time.sleep(0.1)
        raise ClusterUnavailable(f"node {port} did not answer {command!r} with {expected!r}")

    def _check_running(self, port: int) -> None:
        """Raise at once for a node whose process ended (its log says why)."""
        process = self._processes.get(port)
        if process is None or process.poll() is None:
            return
        log = (self._directory / str(port) / "log").read_text(errors="replace")
        if "Address already in use" in log:
            raise _PortTaken(f"node {port}: the port was taken before it could listen")
        raise ClusterUnavailable(f"node {port} exited: {log.strip().splitlines()[-1:]}")

    def wait_until_ok(self) -> None:
        """Wait until every running node reports ``cluster_state:ok`` again."""
        for port in self._processes:
            self.wait_for(port, "CLUSTER INFO", "cluster_state:ok")

    def stop(self) -> None:
        """Stop every server this cluster started (and only those)."""
        for process in self._processes.values():
            process.terminate()
        for process in self._processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._processes.clear()
