"""A loopback TCP proxy that breaks connections on command, for fault-injection tests.

    proxy = await FaultProxy.start("127.0.0.1", 5432, protocol="postgres")
    store = SQLStore(proxy.url(postgres_url), schema=...)
    proxy.cut_all()                                   # every open connection dies now
    proxy.drop_reply(match=lambda text: text.startswith(b"COMMIT"))
    await store.put(envelope)       # the server commits; the client never hears it
    await proxy.close()

The proxy runs in the test's event loop and listens on 127.0.0.1 only. It understands just
enough of each wire protocol to count requests and replies: PostgreSQL's messages (a cycle
is a simple ``Query`` or an extended-query batch ended by ``Sync``, labelled ``EXECUTE`` and
the SQL of the statements it binds, or the SQL it only prepares; its reply ends with
``ReadyForQuery``; the startup and SSL negotiation count as cycles too) and Redis's RESP
(one reply per command). So a fault can hit exactly the n-th round trip of a call: the
server runs the request to its end and only the reply is lost, the case where a client
cannot know whether its write happened. The shared servers are never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

Protocol = Literal["postgres", "redis"]
Direction = Literal["client", "server"]
Match = Callable[[bytes], bool]

_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104
_CANCEL_REQUEST = 80877102
_LOOPBACK = "127.0.0.1"


# -- framing -------------------------------------------------------------------------------


def resp_end(buf: bytes | bytearray, pos: int = 0) -> int | None:
    """Where the RESP value starting at ``pos`` ends, or ``None`` if it is incomplete."""
    line = buf.find(b"\r\n", pos)
    if line < 0:
        return None
    kind, head, after = buf[pos : pos + 1], bytes(buf[pos + 1 : line]), line + 2
    if kind in (b"$", b"!", b"="):  # bulk: a length, then the bytes
        size = int(head)
        if size < 0:
            return after
        end = after + size + 2
        return end if len(buf) >= end else None
    if kind in (b"*", b"~", b">", b"%", b"|"):  # aggregates: count values (pairs for maps)
        count = int(head)
        if kind in (b"%", b"|"):
            count *= 2
        for _ in range(max(count, 0)):
            end = resp_end(buf, after)
            if end is None:
                return None
            after = end
        return after
    return after  # + - : _ # , ( : one line


@dataclass
class _Request:
    label: bytes
    doomed: bool = False


@dataclass
class _PostgresFraming:
    """Where PostgreSQL messages end, and which end a cycle (client) or a reply (server)."""

    startup: bool = True  # the client's untyped messages first: SSLRequest, StartupMessage
    ssl_answers: int = 0  # single-byte server answers still due to SSLRequests
    parsed: list[bytes] = field(default_factory=lambda: [])
    bound: list[bytes] = field(default_factory=lambda: [])
    statements: dict[bytes, bytes] = field(default_factory=lambda: {})  # name -> its SQL

    def requests(self, buf: bytes) -> list[tuple[int, bytes | None]]:
        """Complete client messages at the front of ``buf``: (size, label where a cycle ends)."""
        out: list[tuple[int, bytes | None]] = []
        pos = 0
        while True:
            if self.startup:
                if len(buf) - pos < 8 or len(buf) - pos < struct.unpack_from("!I", buf, pos)[0]:
                    break
                size, code = struct.unpack_from("!II", buf, pos)
                if code == _SSL_REQUEST:
                    self.ssl_answers += 1
                    out.append((size, b"SSL"))
                elif code in (_GSS_REQUEST, _CANCEL_REQUEST):
                    out.append((size, None))
                else:
                    self.startup = False
                    out.append((size, b"STARTUP"))
                pos += size
                continue
            if len(buf) - pos < 5:
                break
            kind = buf[pos : pos + 1]
            size = struct.unpack_from("!I", buf, pos + 1)[0] + 1
            if len(buf) - pos < size:
                break
            body = buf[pos + 5 : pos + size]
            label: bytes | None = None
            if kind == b"Q":
                label = body.rstrip(b"\x00")
            elif kind == b"P":
                name, query, _ = body.split(b"\x00", 2)
                self.statements[name] = query
                self.parsed.append(query)
            elif kind == b"B":  # runs a statement parsed earlier, maybe in another cycle
                name = body.split(b"\x00", 2)[1]
                self.bound.append(self.statements.get(name, b"?"))
            elif kind == b"S":
                if self.bound:  # a cycle that executes: "EXECUTE " and the statements' SQL
                    label = b"EXECUTE " + b"; ".join(self.bound)
                else:  # a prepare only (Parse, Describe)
                    label = b"; ".join(self.parsed) or b"SYNC"
                self.parsed, self.bound = [], []
            out.append((size, label))
            pos += size
        return out

    def replies(self, buf: bytes) -> list[tuple[int, bool]]:
        """Complete server messages at the front of ``buf``: (size, whether a reply ends)."""
        out: list[tuple[int, bool]] = []
        pos = 0
        while True:
            if self.ssl_answers:
                if len(buf) - pos < 1:
                    break
                self.ssl_answers -= 1
                out.append((1, True))
                pos += 1
                continue
            if len(buf) - pos < 5:
                break
            size = struct.unpack_from("!I", buf, pos + 1)[0] + 1
            if len(buf) - pos < size:
                break
            out.append((size, buf[pos : pos + 1] == b"Z"))
            pos += size
        return out


def _command(request: bytes) -> bytes:
    """A RESP command's label: its upper-case name, and its first argument if it has one."""
    if not request.startswith(b"*"):
        return b""
    words: list[bytes] = []
    at = request.find(b"\r\n") + 2
    while at < len(request) and len(words) < 2 and request[at : at + 1] == b"$":
        size_end = request.find(b"\r\n", at)
        size = int(request[at + 1 : size_end])
        words.append(request[size_end + 2 : size_end + 2 + size])
        at = size_end + 2 + size + 2
    if not words:
        return b""
    return b" ".join([words[0].upper(), *words[1:]])


class _RespFraming:
    """Where RESP values end: every command is a request, every value a whole reply."""

    def requests(self, buf: bytes) -> list[tuple[int, bytes | None]]:
        out: list[tuple[int, bytes | None]] = []
        pos = 0
        while pos < len(buf):
            end = resp_end(buf, pos)
            if end is None:
                break
            out.append((end - pos, _command(buf[pos:end])))
            pos = end
        return out

    def replies(self, buf: bytes) -> list[tuple[int, bool]]:
        out: list[tuple[int, bool]] = []
        pos = 0
        while pos < len(buf):
            end = resp_end(buf, pos)
            if end is None:
                break
            out.append((end - pos, True))
            pos = end
        return out


# -- the proxy -----------------------------------------------------------------------------


@dataclass
class _Armed:
    """A one-shot fault waiting for its moment."""

    kind: Literal["bytes", "reply"]
    direction: Direction = "client"
    remaining: int = 0
    match: Match | None = None


class _Link:
    """One proxied connection: both sides and the framing of what crosses it."""

    def __init__(
        self,
        proxy: FaultProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = client
        self.server_reader, self.server_writer = server
        self.framing = _PostgresFraming() if proxy.protocol == "postgres" else _RespFraming()
        self.pending: list[_Request] = []  # requests waiting for their reply, oldest first
        self.dead = False

    def cut(self) -> None:
        """Drop both sides at once, without a goodbye."""
        if not self.dead:
            self.dead = True
            self.client_writer.transport.abort()
            self.server_writer.transport.abort()

    async def pump_requests(self) -> None:
        """Client to server: forwarded as it comes; complete requests are noted."""
        buf = bytearray()
        while not self.dead:
            data = await self.client_reader.read(65536)
            if not data:
                break
            data, clipped = self.proxy.clip(data, "client")
            self.server_writer.write(data)
            buf += data
            for size, label in self.framing.requests(bytes(buf)):
                del buf[:size]
                if label is not None:
                    self.proxy.requests.append(label)
                    self.pending.append(_Request(label, self.proxy.doom(label)))
            if clipped:
                await self._strike()
                return
        if not self.dead:
            with contextlib.suppress(OSError):
                self.server_writer.write_eof()

    async def pump_replies(self) -> None:
        """Server to client: whole messages, except those of a reply that must be lost."""
        buf = bytearray()
        while not self.dead:
            data = await self.server_reader.read(65536)
            if not data:
                break
            data, clipped = self.proxy.clip(data, "server")
            buf += data
            forward = bytearray()
            for size, ends in self.framing.replies(bytes(buf)):
                message = bytes(buf[:size])
                del buf[:size]
                request = self.pending[0] if self.pending else None
                if request is None or not request.doomed:
                    forward += message
                if ends and request is not None:
                    self.pending.pop(0)
                    if request.doomed:  # the server finished it; the client never hears
                        self.client_writer.write(bytes(forward))
                        await self._strike()
                        return
            if clipped:  # a reply cut mid-message
                self.client_writer.write(bytes(forward + buf))
                await self._strike()
                return
            self.client_writer.write(bytes(forward))
        if not self.dead:
            with contextlib.suppress(OSError):
                self.client_writer.write_eof()

    async def _strike(self) -> None:
        """Count the fault and drop the connection once what was let through is sent."""
        self.proxy.fired += 1
        with contextlib.suppress(OSError):
            await self.client_writer.drain()
            await self.server_writer.drain()
        self.cut()


class FaultProxy:
    """Forwards 127.0.0.1:<port> to a server and breaks connections when told to.

    Every control is one-shot and counts in :attr:`fired` when it strikes.
    """

    def __init__(self, target: tuple[str, int], protocol: Protocol) -> None:
        if target[0] not in (_LOOPBACK, "localhost", "::1"):
            raise ValueError(f"the fault proxy only forwards to loopback, not {target[0]!r}")
        self.target = target
        self.protocol = protocol
        self.port = 0
        self.fired = 0
        self.accepted = 0
        self.refusing = False
        self.requests: list[bytes] = []
        """Every round trip's label, in order (PostgreSQL: the statements a ``Sync`` ends)."""
        self._links: set[_Link] = set()
        self._handlers = 0
        self._armed: _Armed | None = None
        self._server: asyncio.Server | None = None

    @classmethod
    async def start(cls, url: str, protocol: Protocol) -> FaultProxy:
        """A running proxy in front of the server ``url`` names."""
        parts = urlsplit(url)
        default = 5432 if protocol == "postgres" else 6379
        proxy = cls((parts.hostname or _LOOPBACK, parts.port or default), protocol)
        proxy._server = await asyncio.start_server(proxy._accept, _LOOPBACK, 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    def url(self, url: str) -> str:
        """``url`` pointing at the proxy instead of the server."""
        parts = urlsplit(url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@" if auth else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{_LOOPBACK}:{self.port}"))

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        self.cut_all()
        while self._handlers:  # each handler ends once both of its pumps have seen the cut
            self.cut_all()
            await asyncio.sleep(0.005)
        if self._server is not None:
            await self._server.wait_closed()

    # -- controls ----------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        """Connections alive through the proxy now."""
        return sum(1 for link in self._links if not link.dead)

    def cut_all(self) -> int:
        """Drop every open connection now; returns how many there were."""
        links = [link for link in self._links if not link.dead]
        for link in links:
            link.cut()
        return len(links)

    def cut_after_bytes(self, count: int, *, direction: Direction) -> None:
        """Drop the connection that carries the ``count``-th byte from now in ``direction``.

        ``"client"`` counts what the client sends, ``"server"`` what the server answers; the
        byte that reaches the count is the last one forwarded.
        """
        self._armed = _Armed("bytes", direction=direction, remaining=count)

    def drop_reply(self, nth: int = 1, *, match: Match | None = None) -> None:
        """Let the ``nth`` request from now (that ``match`` accepts) run; lose its reply.

        The request reaches the server whole; the proxy swallows the reply and drops the
        connection once the server has finished it (a commit happens, the client never
        hears of it). A request is a PostgreSQL cycle (labelled by its SQL text, or
        ``STARTUP``/``SSL``/``SYNC``) or a Redis command (labelled by its upper-case name and
        first argument: ``EVALSHA <sha>``).
        """
        self._armed = _Armed("reply", remaining=nth, match=match)

    def disarm(self) -> bool:
        """Remove a fault that has not struck; whether there was one."""
        armed, self._armed = self._armed, None
        return armed is not None

    @property
    def armed(self) -> bool:
        """Whether a fault is still waiting."""
        return self._armed is not None

    # -- plumbing ------------------------------------------------------------------------

    def doom(self, label: bytes) -> bool:
        """Whether the request labelled ``label`` is the one whose reply must be lost."""
        armed = self._armed
        if armed is None or armed.kind != "reply":
            return False
        if armed.match is not None and not armed.match(label):
            return False
        armed.remaining -= 1
        if armed.remaining > 0:
            return False
        self._armed = None
        return True

    def clip(self, data: bytes, direction: Direction) -> tuple[bytes, bool]:
        """``data`` cut short where an armed byte count runs out, and whether it did."""
        armed = self._armed
        if armed is None or armed.kind != "bytes" or armed.direction != direction:
            return data, False
        if len(data) < armed.remaining:
            armed.remaining -= len(data)
            return data, False
        self._armed = None
        return data[: armed.remaining], True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.refusing:
            self.fired += 1
            writer.transport.abort()
            return
        self._handlers += 1
        try:
            try:
                server = await asyncio.open_connection(*self.target)
            except OSError:
                writer.transport.abort()
                return
            link = _Link(self, (reader, writer), server)
            self._links.add(link)
            try:
                await asyncio.gather(
                    self._guard(link, link.pump_requests()),
                    self._guard(link, link.pump_replies()),
                )
            finally:
                link.cut()
                self._links.discard(link)
        finally:
            self._handlers -= 1

    @staticmethod
    async def _guard(link: _Link, pump: Coroutine[Any, Any, None]) -> None:
        try:
            await pump
        except OSError:  # a side went away: the other goes too
            link.cut()
