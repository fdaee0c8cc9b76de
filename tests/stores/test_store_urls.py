"""Store URLs as users paste them: what each one opens, or the one-line error it gives.

Three tables. ``TRANSLATED``: the asyncpg connect arguments a PostgreSQL URL's libpq
parameters become (no server needed). ``INVALID``: URLs refused when the store is built,
before any I/O, naming the parameter at fault. ``test_postgres_urls`` and
``test_redis_urls``: URLs against the real servers, each either working (a put and a get) or
refused with one line that never shows the password.
"""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from agent_persist.cli import CliConfig, cli
from agent_persist.errors import InvalidStoreURLError, StoreUnavailableError
from agent_persist.stores import open_store
from agent_persist.stores.base import BaseStore
from agent_persist.stores.redis import RedisStore
from agent_persist.stores.sql import SQLStore
from agent_persist.stores.sql._url import asyncpg_arguments
from agent_persist.testing.conformance import envelope

TLS = Path(__file__).parent.parent / "fixtures" / "tls"
CA, CLIENT_CERT, CLIENT_KEY = TLS / "ca.pem", TLS / "client.pem", TLS / "client.key"
PASSWORD = "hunter2"  # noqa: S105 - the secret no message may show


def translate(query: str, timeout: float = 10.0) -> tuple[sa.URL, dict[str, Any]]:
    return asyncpg_arguments(sa.make_url(f"postgresql+asyncpg://u@db/app{query}"), timeout=timeout)


def assert_one_line_without_password(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message, message
    assert PASSWORD not in message, message
    return message


# -- translation: URL -> asyncpg connect arguments (no server) -----------------------------

TRANSLATED: list[tuple[str, dict[str, Any]]] = [
    ("", {"timeout": 10.0}),
    ("?sslmode=disable", {"timeout": 10.0, "ssl": "disable"}),
    ("?sslmode=allow", {"timeout": 10.0, "ssl": "allow"}),
    ("?sslmode=prefer", {"timeout": 10.0, "ssl": "prefer"}),
    ("?ssl=prefer", {"timeout": 10.0, "ssl": "prefer"}),  # asyncpg's own name, as SQLAlchemy
    ("?sslmode=prefer&sslrootcert=" + str(CA), {"timeout": 10.0, "ssl": "prefer"}),
    ("?connect_timeout=3", {"timeout": 3.0}),
    ("?connect_timeout=0", {"timeout": None}),  # libpq: 0 waits forever
    ("?command_timeout=2.5", {"timeout": 10.0, "command_timeout": 2.5}),
    (
        "?application_name=worker-7",
        {"timeout": 10.0, "server_settings": {"application_name": "worker-7"}},
    ),
    (
        "?options=-c%20search_path%3Dapp,public%20-cstatement_timeout%3D5s"
        "%20--lock-timeout%3D2s%20-c%20work_mem%3D%27 64MB%27",
        {
            "timeout": 10.0,
            "server_settings": {
                "search_path": "app,public",
                "statement_timeout": "5s",
                "lock_timeout": "2s",
                "work_mem": " 64MB",
            },
        },
    ),
    (
        "?options=-c%20application_name%3Dfrom-options&application_name=from-param",
        {"timeout": 10.0, "server_settings": {"application_name": "from-param"}},
    ),
    ("?target_session_attrs=read-write", {"timeout": 10.0, "target_session_attrs": "read-write"}),
    (
        "?target_session_attrs=prefer-standby",
        {"timeout": 10.0, "target_session_attrs": "prefer-standby"},
    ),
]


@pytest.mark.parametrize(("query", "expected"), TRANSLATED)
def test_libpq_parameters_become_asyncpg_arguments(query: str, expected: dict[str, Any]) -> None:
    url, args = translate(query)
    assert args == expected
    assert dict(url.query) == {}  # nothing left for SQLAlchemy to pass to asyncpg.connect


def test_connect_timeout_overrides_the_store_option() -> None:
    assert translate("?connect_timeout=4", timeout=30.0)[1]["timeout"] == 4.0
    assert translate("", timeout=30.0)[1]["timeout"] == 30.0


def test_host_port_and_statement_cache_stay_on_the_url_for_sqlalchemy() -> None:
    query = "?host=/var/run/postgresql&port=5433&prepared_statement_cache_size=0&sslmode=disable"
    url, args = translate(query)
    assert dict(url.query) == {
        "host": "/var/run/postgresql",
        "port": "5433",
        "prepared_statement_cache_size": "0",
    }
    assert args == {"timeout": 10.0, "ssl": "disable"}
    multi, _ = translate("?host=a:5432&host=b:5433&target_session_attrs=primary")
    assert dict(multi.query) == {"host": ("a:5432", "b:5433")}


def context_of(query: str) -> ssl.SSLContext:
    tls = translate(query)[1]["ssl"]
    assert isinstance(tls, ssl.SSLContext)
    return tls


@pytest.mark.parametrize(
    ("query", "verifies", "checks_hostname"),
    [
        ("?sslmode=require", False, False),  # encrypted, no certificate checked
        (f"?sslmode=require&sslrootcert={CA}", True, False),  # with a CA: the chain (libpq)
        (f"?sslmode=verify-ca&sslrootcert={CA}", True, False),
        (f"?sslmode=verify-full&sslrootcert={CA}", True, True),
        ("?sslmode=verify-full&sslrootcert=system", True, True),
        ("?sslrootcert=system", True, True),  # libpq: system CAs imply verify-full
        (f"?ssl=verify-full&sslrootcert={CA}", True, True),
    ],
)
def test_tls_modes_check_what_libpq_checks(
    query: str, verifies: bool, checks_hostname: bool
) -> None:
    context = context_of(query)
    assert context.verify_mode == (ssl.CERT_REQUIRED if verifies else ssl.CERT_NONE)
    assert context.check_hostname is checks_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    if verifies:
        assert context.cert_store_stats()["x509_ca"] >= 1  # the CA file, or the system's


def test_a_client_certificate_is_loaded_into_the_context() -> None:
    query = f"?sslmode=verify-full&sslrootcert={CA}&sslcert={CLIENT_CERT}&sslkey={CLIENT_KEY}"
    context = context_of(query)
    assert [cert["subject"] for cert in context.get_ca_certs()] == [
        ((("commonName", "agent-persist test CA"),),)
    ]
    # load_cert_chain checked the pair; the same key with another certificate fails:
    with pytest.raises(InvalidStoreURLError, match="'sslkey'"):
        translate(f"?sslmode=require&sslcert={CA}&sslkey={CLIENT_KEY}")


# -- refused before any I/O -----------------------------------------------------------------

INVALID: list[tuple[str, str]] = [
    ("postgresql://u:hunter2@db/app?sslmode=bogus", "'sslmode' is 'bogus'"),
    ("postgresql://u:hunter2@db/app?ssl=yes", "'ssl' is 'yes'"),
    ("postgresql://u:hunter2@db/app?sslmode=require&sslmode=disable", "'sslmode' is given more"),
    ("postgresql://u:hunter2@db/app?sslmode=require&ssl=require", "'ssl' repeats sslmode"),
    ("postgresql://u:hunter2@db/app?connect_timeout=abc", "'connect_timeout' is 'abc'"),
    ("postgresql://u:hunter2@db/app?connect_timeout=-1", "'connect_timeout' is '-1'"),
    ("postgresql://u:hunter2@db/app?connect_timeout=inf", "'connect_timeout' is 'inf'"),
    ("postgresql://u:hunter2@db/app?command_timeout=0", "'command_timeout' is '0'"),
    ("postgresql://u:hunter2@db/app?sslrootcert=/no/such/ca.pem", "'sslrootcert' names"),
    (
        "postgresql://u:hunter2@db/app?sslmode=require&sslcert=/no/such/client.pem",
        "'sslcert' names",
    ),
    (f"postgresql://u:hunter2@db/app?sslmode=require&sslkey={CLIENT_KEY}", "'sslkey' needs"),
    ("postgresql://u:hunter2@db/app?sslmode=verify-full", "'sslmode' is 'verify-full', which"),
    ("postgresql://u:hunter2@db/app?sslmode=verify-ca", "'sslmode' is 'verify-ca', which"),
    ("postgresql://u:hunter2@db/app?sslmode=require&sslrootcert=system", "'sslrootcert' is"),
    (
        f"postgresql://u:hunter2@db/app?sslmode=prefer&sslcert={CLIENT_CERT}&sslkey={CLIENT_KEY}",
        "'sslcert' needs sslmode=require",
    ),
    ("postgresql://u:hunter2@db/app?target_session_attrs=master", "'target_session_attrs'"),
    ("postgresql://u:hunter2@db/app?options=-x", "'options' holds '-x'"),
    ("postgresql://u:hunter2@db/app?options=-c", "'options' ends with -c"),
    ("postgresql://u:hunter2@db/app?options=-c%20search_path", "'options' holds 'search_path'"),
    ("postgresql://u:hunter2@db/app?options=-c%20%22a%3Db", "'options' cannot be split"),
    ("postgresql://u:hunter2@db/app?sslmdoe=require", "unknown URL parameter 'sslmdoe'"),
    ("postgresql://u@db/app?password=hunter2", "unknown URL parameter 'password'"),
    ("postgresql://u:hunter2@db/app?prepared_statement_cache_size=x", "'prepared_statement"),
    ("postgresql://u:hunter2@db:99999/app", "port '99999' is not in 1-65535"),
    ("postgresql://u:hunter2@db:0/app", "port '0' is not in 1-65535"),
    ("postgresql://u:hunter2@/app?host=db&port=70000", "port '70000'"),
    ("postgresql://u:hunter2@/app?host=a,b&port=1", "number of hosts and ports"),
    ("postgresql://u:hunter2@db:abc/app", "not a database URL"),
    ("postgres://u:hunter2@db/app?sslmode=bogus", "'sslmode'"),
    ("postgresql+asyncpg://u:hunter2@db/app?sslmode=bogus", "'sslmode'"),
]


@pytest.mark.parametrize(("url", "names"), INVALID)
def test_wrong_postgres_urls_are_refused_when_the_store_is_built(url: str, names: str) -> None:
    for build in (SQLStore, open_store):  # raises at once: nothing is awaited, no I/O
        with pytest.raises(InvalidStoreURLError) as raised:
            build(url)
        assert names in assert_one_line_without_password(raised.value)


def test_an_unreadable_certificate_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(InvalidStoreURLError, match="'sslrootcert' cannot be loaded"):
        SQLStore(f"postgresql://u:{PASSWORD}@db/app?sslmode=verify-ca&sslrootcert={junk}")


REDIS_INVALID: list[tuple[str, str]] = [
    ("redis://:hunter2@127.0.0.1:6379/abc", "database number"),
    ("redis://:hunter2@127.0.0.1:6379/0?db=abc", "'db'"),
    ("redis://:hunter2@127.0.0.1:99999/0", "Port out of range"),
    ("redis://:hunter2@127.0.0.1:0/0", "port 0"),
    ("redis://:hunter2@127.0.0.1:6379/0?socket_timeout=abc", "'socket_timeout'"),
    ("redis://:hunter2@127.0.0.1:6379/0?sslmode=require", "unknown parameter 'sslmode'"),
    ("unix:///tmp/redis.sock?password=hunter2&bogus=1", "unknown parameter 'bogus'"),
    ("http://:hunter2@127.0.0.1:6379/0", "redis://"),
]


@pytest.mark.needs_extras
@pytest.mark.parametrize(("url", "names"), REDIS_INVALID)
def test_wrong_redis_urls_are_refused_when_the_store_is_built(url: str, names: str) -> None:
    with pytest.raises(InvalidStoreURLError) as raised:
        RedisStore.from_url(url)
    assert names in assert_one_line_without_password(raised.value)


# -- against the real PostgreSQL server --------------------------------------------------------


def pg(
    postgres_url: str,
    *,
    user: str | None = None,
    password: str | None = PASSWORD,
    database: str | None = None,
    port: int | None = None,
    scheme: str = "postgresql",
    query: str = "",
) -> str:
    """The test server's URL with one part changed (the password is ignored by trust auth)."""
    base = sa.make_url(postgres_url)
    url = base.set(
        drivername=scheme,
        username=user or base.username,
        password=password,
        database=database or base.database,
        port=port or base.port,
    )
    return url.render_as_string(hide_password=False) + query


@pytest.fixture
async def opened() -> AsyncIterator[list[BaseStore]]:
    stores: list[BaseStore] = []
    yield stores
    for store in stores:
        await store.close()


async def round_trip(store: BaseStore) -> None:
    saved = await store.put(envelope("url-thread"))
    assert (await store.get("url-thread")).checkpoint_id == saved.checkpoint_id


@pytest.mark.postgres
@pytest.mark.needs_extras
@pytest.mark.parametrize(
    ("scheme", "query"),
    [
        ("postgresql", ""),
        ("postgres", ""),
        ("postgresql+asyncpg", ""),
        ("postgresql", "?sslmode=prefer"),
        ("postgresql", "?sslmode=allow"),
        ("postgresql", "?sslmode=disable"),
        ("postgresql", "?ssl=prefer"),
        ("postgresql", "?connect_timeout=5&command_timeout=30&target_session_attrs=read-write"),
        ("postgresql", "?application_name=urls&options=-c%20statement_timeout%3D5s"),
    ],
)
async def test_postgres_urls_that_work(
    postgres_url: str, postgres_schema: str, opened: list[BaseStore], scheme: str, query: str
) -> None:
    store = SQLStore(pg(postgres_url, scheme=scheme, query=query), schema=postgres_schema)
    opened.append(store)
    await round_trip(store)


@pytest.mark.postgres
@pytest.mark.needs_extras
@pytest.mark.parametrize(
    ("change", "error", "says"),
    [
        ({"database": "no_such_db"}, StoreUnavailableError, 'database "no_such_db" does not exist'),
        ({"user": "no_such_role"}, StoreUnavailableError, 'role "no_such_role" does not exist'),
        ({"port": 1}, StoreUnavailableError, "ConnectionRefusedError"),
        ({"query": "?sslmode=require"}, StoreUnavailableError, "rejected SSL upgrade"),
        ({"query": f"?sslmode=verify-ca&sslrootcert={CA}"}, StoreUnavailableError, "SSL"),
        (
            {"query": "?options=-c%20no_such_setting%3D1"},
            InvalidStoreURLError,
            'unrecognized configuration parameter "no_such_setting"',
        ),
        (
            {"query": "?options=-c%20statement_timeout%3Dsoon"},
            InvalidStoreURLError,
            'invalid value for parameter "statement_timeout"',
        ),
    ],
)
async def test_postgres_urls_that_are_refused(
    postgres_url: str,
    postgres_schema: str,
    opened: list[BaseStore],
    change: dict[str, Any],
    error: type[Exception],
    says: str,
) -> None:
    store = SQLStore(pg(postgres_url, **change), schema=postgres_schema, connect_timeout=5)
    opened.append(store)
    with pytest.raises(error) as raised:
        await store.put(envelope("url-thread"))
    message = assert_one_line_without_password(raised.value)
    assert says in message
    assert "***@" in message  # the URL is named, its password masked


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_url_settings_reach_the_server_session(
    postgres_url: str, postgres_schema: str, opened: list[BaseStore]
) -> None:
    name = f"ap-urls-{uuid.uuid4().hex[:8]}"
    query = f"?sslmode=prefer&application_name={name}&options=-c%20statement_timeout%3D7s"
    store = SQLStore(pg(postgres_url, query=query), schema=postgres_schema)
    opened.append(store)
    await round_trip(store)
    engine: Any = store.engine
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT a.application_name, current_setting('statement_timeout'), s.ssl "
                    "FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                    "WHERE a.pid = pg_backend_pid()"
                )
            )
        ).one()
    assert tuple(row) == (name, "7s", False)  # prefer fell back to plain TCP: no TLS here


def local_socket_directory(directories: str, port: int) -> str | None:
    """The first of the server's socket directories holding its socket on this machine."""
    for directory in (d.strip() for d in directories.split(",")):
        if directory and (Path(directory) / f".s.PGSQL.{port}").exists():
            return directory
    return None


@pytest.mark.postgres
@pytest.mark.needs_extras
async def test_a_unix_socket_directory_as_host(
    postgres_url: str, postgres_schema: str, opened: list[BaseStore]
) -> None:
    probe = SQLStore(postgres_url)
    opened.append(probe)
    engine: Any = probe.engine
    async with engine.connect() as conn:
        directories = (await conn.execute(sa.text("SHOW unix_socket_directories"))).scalar_one()
    port = sa.make_url(postgres_url).port or 5432
    directory = local_socket_directory(str(directories), port)
    if directory is None:
        pytest.skip("the PostgreSQL server's unix socket is not on this machine")
    base = sa.make_url(postgres_url)
    url = f"postgresql://{base.username}@/{base.database}?host={directory}&port={port}"
    store = SQLStore(url, schema=postgres_schema)
    opened.append(store)
    await round_trip(store)


# -- against the real Redis server -----------------------------------------------------------


def rd(redis_url: str, *, port: int | None = None, db: int | None = None, query: str = "") -> str:
    parts = sa.make_url(redis_url)  # a URL parser that keeps every part
    host, old_port = parts.host or "127.0.0.1", parts.port or 6379
    database = (parts.database or "0") if db is None else str(db)
    return f"redis://:{PASSWORD}@{host}:{port or old_port}/{database}{query}"


@pytest.mark.redis
@pytest.mark.needs_extras
@pytest.mark.parametrize(
    "query", ["", "?socket_timeout=5&socket_connect_timeout=5&client_name=ap-urls&protocol=2"]
)
async def test_redis_urls_that_work(
    redis_url: str, redis_prefix: str, opened: list[BaseStore], query: str
) -> None:
    url = rd(redis_url, query=query).replace(f":{PASSWORD}@", "@")
    store = RedisStore.from_url(url, prefix=redis_prefix)
    opened.append(store)
    await round_trip(store)


@pytest.mark.redis
@pytest.mark.needs_extras
async def test_redis_urls_that_are_refused(redis_url: str, opened: list[BaseStore]) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)  # pyright: ignore[reportUnknownMemberType]
    try:
        reply: Any = await client.config_get("databases")  # pyright: ignore[reportUnknownMemberType]
        databases = int(reply["databases"])
    finally:
        await client.aclose()
    for url, says in [
        (rd(redis_url, db=databases), "no database of that number"),  # one past the last
        (rd(redis_url, port=1), "Connect call failed"),
    ]:
        store = RedisStore.from_url(url, prefix=f"aptest:{uuid.uuid4().hex}")
        opened.append(store)
        with pytest.raises(StoreUnavailableError) as raised:
            await store.get("t")
        message = assert_one_line_without_password(raised.value)
        assert says in message
        assert ":***@" in message


# -- a server that never answers ---------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts TCP connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.needs_extras
async def test_a_connect_timeout_is_unavailable(silent_port: int, opened: list[BaseStore]) -> None:
    store = SQLStore(f"postgresql://u:{PASSWORD}@127.0.0.1:{silent_port}/db?connect_timeout=0.3")
    opened.append(store)
    with pytest.raises(StoreUnavailableError) as raised:
        await store.get("t")
    assert "(TimeoutError)" in assert_one_line_without_password(raised.value)


@pytest.mark.needs_extras
async def test_a_redis_timeout_is_unavailable(silent_port: int, opened: list[BaseStore]) -> None:
    store = RedisStore.from_url(f"redis://:{PASSWORD}@127.0.0.1:{silent_port}/0?socket_timeout=0.3")
    opened.append(store)
    with pytest.raises(StoreUnavailableError) as raised:
        await store.get("t")
    assert "Timeout" in assert_one_line_without_password(raised.value)


# -- the command line: exit 3, one line --------------------------------------------------------


@pytest.mark.needs_extras
@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:hunter2@db/app?sslmode=bogus",
        "postgresql://u:hunter2@db:99999/app",
        "redis://:hunter2@127.0.0.1:6379/not-a-db",
    ],
)
def test_the_command_exits_3_with_one_line(url: str) -> None:
    result = CliRunner().invoke(cli, ["ls", "--url", url], obj=CliConfig())
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert PASSWORD not in result.stderr
