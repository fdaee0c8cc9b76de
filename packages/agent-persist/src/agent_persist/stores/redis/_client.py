"""Connecting the Redis store: URLs checked before any I/O, and the client they open.

    client, shown = open_client("redis://:secret@cache:6379/0")
    shown   # 'redis://:***@cache:6379/0', safe to put in logs and error messages
    client, shown = open_client("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")   # a cluster

Imported only through :mod:`agent_persist.stores.redis`, which checks first that ``redis``
is installed.
"""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ...errors import InvalidStoreURLError
from .._gate import FairGate

__all__ = [
    "CLUSTER_SCHEMES",
    "POOL_SIZE",
    "POOL_TIMEOUT",
    "SCHEMES",
    "GatedCluster",
    "describe_client",
    "describe_pool",
    "mask_url",
    "open_client",
]

SCHEMES = ("redis", "rediss", "unix")
"""The URL schemes redis-py understands for one server."""
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
"""The URL schemes of a Redis Cluster: ``host:port`` startup nodes separated by commas."""

_CLUSTER_OPTIONS: dict[str, Any] = {
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "client_name": str,
    "ssl_cert_reqs": str,
    "ssl_ca_certs": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_check_hostname": lambda value: {"true": True, "false": False}[str(value).lower()],  # pyright: ignore[reportUnknownLambdaType, reportUnknownArgumentType]
}
"""The query parameters a cluster URL takes, and how each is parsed."""

_MASK = "***"

POOL_SIZE = 16
"""Connections one client opens at most per event loop by default: Redis runs commands one
at a time, so more connections only lengthen the queue at the server (at 4 processes of 32
conversations, a pool of 32 had p99 5-7x p50 where 8 or 16 had 2x), and 600 processes stay
within Redis's default ``maxclients`` of 10,000."""
POOL_TIMEOUT = 30.0
"""Seconds a command waits for a free connection before ``StoreUnavailableError``."""


def mask_url(url: str) -> str:
    """``url`` with its password (in the authority or the query string) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        name = user.partition(":")[0]
        netloc = f"{name}:{_MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, _MASK if k == "password" else v) for k, v in pairs], safe="*")
    if "://" not in url:  # not a URL redis-py reads; hide anything that may be a credential
        return f"{_MASK}@{url.rpartition('@')[2]}" if "@" in url else url
    tail = (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"


class _FairPool(aioredis.ConnectionPool):
    """redis-py's pool behind a :class:`.._gate.FairGate`: waiters served in order.

    The gate lets at most ``max_connections`` holders through, so the pool under it never
    runs out and never waits itself. It is redis-py's plain pool, not its blocking one: that
    one enters an async generator per connection taken, which warns on the loop the Agents
    SDK's ``Runner.run_sync`` keeps and shuts async generators down on after every run.
    """

    def __init__(self, *, timeout: float | None, **options: Any) -> None:
        super().__init__(**options)  # pyright: ignore[reportUnknownMemberType]
        self.timeout = timeout
        """Seconds a command waits for a connection (``pool_timeout``)."""
        self._gate = FairGate(
            self.max_connections,
            timeout=self.timeout,
            timed_out=lambda: redis_errors.ConnectionError("No connection available."),
        )
        self._handed: set[Any] = set()

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:  # pyright: ignore[reportIncompatibleMethodOverride]
        await self._gate.acquire()
        try:
            connection = await super().get_connection(*args, **kwargs)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        except BaseException:
            self._gate.release()
            raise
        self._handed.add(connection)
        return connection  # pyright: ignore[reportUnknownVariableType]

    async def release(self, connection: Any) -> None:
        await super().release(connection)
        if connection in self._handed:  # not one the pool dropped while handing it out
            self._handed.discard(connection)
            self._gate.release()


class GatedCluster(RedisCluster):
    """redis-py's cluster client behind a :class:`.._gate.FairGate` of ``pool_size``.

    Its nodes' pools raise at once when all their connections are busy; the gate makes a
    command wait its turn (up to ``pool_timeout``) instead, as the single-server pool does.
    Every command of the store passes it (a pipeline holds one slot: it uses one connection
    per node), so a node never sees more than ``pool_size`` connections from one client.
    """

    def __init__(self, *, pool_size: int, pool_timeout: float, **options: Any) -> None:
        super().__init__(max_connections=pool_size, **options)  # pyright: ignore[reportUnknownMemberType]
        self.gate = FairGate(
            pool_size,
            timeout=pool_timeout,
            timed_out=lambda: redis_errors.ConnectionError("No connection available."),
        )
        self.pool_limits = f"pool_size={pool_size}, pool_timeout={pool_timeout:g} s"

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.gate:
            return await super().execute_command(*args, **kwargs)


def open_client(
    url: str, *, pool_size: int = POOL_SIZE, pool_timeout: float = POOL_TIMEOUT
) -> tuple[aioredis.Redis | GatedCluster, str]:
    """A client for ``url`` (bytes in, bytes out) and the URL as it may be shown.

    A cluster URL (:data:`CLUSTER_SCHEMES`) opens a :class:`GatedCluster`.

    The client does not retry a command after a dropped connection: the server may already
    have run it, and running a put, append or pop twice is worse than an error the caller
    can act on (``StoreUnavailableError``).

    Its pool blocks: it opens at most ``pool_size`` connections, and a command that finds
    them all busy waits up to ``pool_timeout`` seconds for one, in the order they came
    (redis-py's default pool raises ``Too many connections`` at once instead).

    Everything that can be checked without the server is checked here, before any I/O: the
    scheme, the port (1-65535), the database number (a path or ``?db=`` that is not a
    number), and each query parameter, which must be one redis-py's connection takes
    (``socket_timeout``, ``ssl_cert_reqs``, ...) with a value it can parse. A database
    number the server does not have (``/99`` with ``databases 16``) shows at the first
    operation as ``StoreUnavailableError`` (see :func:`._errors.translate_error`).

    Raises:
        InvalidStoreURLError: any of the above is wrong; the message names it.
    """
    shown = mask_url(url)
    if urlsplit(url).scheme in CLUSTER_SCHEMES:
        return _open_cluster(url, shown, pool_size=pool_size, pool_timeout=pool_timeout), shown
    problem = _url_problem(url)
    if problem:
        raise InvalidStoreURLError(f"{shown!r} is not a valid Redis URL: {problem}")
    try:
        pool = _FairPool.from_url(  # pyright: ignore[reportUnknownMemberType]
            url,
            max_connections=pool_size,
            timeout=pool_timeout,
            decode_responses=False,
            retry=Retry(NoBackoff(), 0),
        )
        client = aioredis.Redis.from_pool(pool)
    except ValueError as exc:
        raise InvalidStoreURLError(f"{shown!r} is not a valid Redis URL: {exc}") from exc
    unknown = _unknown_parameters(client)
    if unknown:
        raise InvalidStoreURLError(
            f"{shown!r} is not a valid Redis URL: unknown parameter {unknown[0]!r} (redis-py "
            "takes the keyword arguments of its connection class, e.g. socket_timeout)"
        )
    return client, shown


def _open_cluster(url: str, shown: str, *, pool_size: int, pool_timeout: float) -> GatedCluster:
    """A cluster client for ``redis+cluster://`` (or ``rediss+cluster://``) startup nodes.

    ``[user[:password]@]host[:port][,host[:port]...][/0][?option=value...]``: any one node
    that answers tells the client the whole cluster. A cluster has database 0 only; the
    options are the connection's timeouts, ``client_name`` and the TLS settings.
    """

    def bad(problem: str) -> InvalidStoreURLError:
        return InvalidStoreURLError(f"{shown!r} is not a valid Redis Cluster URL: {problem}")

    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    user, has_password, password = credentials.partition(":")
    nodes: list[ClusterNode] = []
    for node in hosts.split(","):
        if node.startswith("["):  # an IPv6 address: [::1]:7000
            host, _, rest = node[1:].partition("]")
            port_text = rest.removeprefix(":") or "6379"
        else:
            host, _, port_text = node.partition(":")
            port_text = port_text or "6379"
        if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise bad(f"{node!r} is not host:port (a port in 1-65535)")
        nodes.append(ClusterNode(host, int(port_text)))
    if parts.path.strip("/") not in ("", "0"):
        raise bad(f"a cluster has database 0 only, got the path {parts.path!r}")
    options: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        parse = _CLUSTER_OPTIONS.get(name)
        if parse is None:
            raise bad(f"unknown parameter {name!r} (takes {', '.join(_CLUSTER_OPTIONS)})")
        try:
            options[name] = parse(value)
        except (ValueError, KeyError):
            raise bad(f"{name}={value!r} does not parse") from None
    return GatedCluster(
        pool_size=pool_size,
        pool_timeout=pool_timeout,
        startup_nodes=nodes,
        username=unquote(user) or None,
        password=unquote(password) if has_password else None,
        ssl=parts.scheme == "rediss+cluster",
        decode_responses=False,
        retry=Retry(NoBackoff(), 0),  # as for one server: never run a write twice
        **options,
    )


def _url_problem(url: str) -> str | None:
    """What is wrong with ``url``, for the cases redis-py would silently accept."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        return "use redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://"
    pool_options = {"max_connections", "timeout"} & {k for k, _ in parse_qsl(parts.query)}
    if pool_options:
        name = sorted(pool_options)[0]
        return f"{name!r} is a pool setting: open the store with pool_size= and pool_timeout="
    if parts.scheme == "unix":
        return None if parts.path else "a unix:// URL needs the socket's path"
    try:
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if port == 0:  # redis-py would silently connect to 6379 instead
        return "port 0 is not in 1-65535"
    database = parts.path.strip("/")
    if database and not database.isdigit():
        return f"the path must be a database number, got {parts.path!r}"
    return None


def _unknown_parameters(client: aioredis.Redis) -> list[str]:
    """URL parameters no connection would accept (redis-py would fail on first use).

    redis-py passes each query parameter it does not know to the connection class as a
    keyword; the class's ``__init__`` chain (through ``**kwargs`` forwarding) says which
    names it takes.
    """
    pool = client.connection_pool
    accepted: set[str] = set()
    for cls in pool.connection_class.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        accepted.update(p.name for p in parameters if p.kind is not p.VAR_KEYWORD)
        if all(p.kind is not p.VAR_KEYWORD for p in parameters):
            break
    options: dict[str, Any] = pool.connection_kwargs
    return sorted(set(options) - accepted)


def describe_pool(client: aioredis.Redis | GatedCluster) -> str | None:
    """The pool's limits as store options, for the message of a pool timeout."""
    if isinstance(client, GatedCluster):
        return client.pool_limits
    pool = client.connection_pool
    if not isinstance(pool, _FairPool):
        return f"max_connections={pool.max_connections}, a pool that does not wait"
    timeout = "none" if pool.timeout is None else f"{pool.timeout:g} s"
    return f"pool_size={pool.max_connections}, pool_timeout={timeout}"


def describe_client(client: aioredis.Redis) -> str:
    """A URL-like name for a client the caller built, for error messages (no password).

    Raises:
        ValueError: the client decodes responses to ``str``; the store reads bytes
            (sealed payloads are binary), so it needs ``decode_responses=False``.
    """
    options: dict[str, Any] = client.connection_pool.connection_kwargs
    if options.get("decode_responses"):
        raise ValueError(
            "the Redis store needs a client built with decode_responses=False: it stores "
            "binary payloads"
        )
    if "path" in options:
        return f"unix://{options['path']}?db={options.get('db', 0)}"
    host, port = options.get("host", "localhost"), options.get("port", 6379)
    return f"redis://{host}:{port}/{options.get('db', 0)}"
