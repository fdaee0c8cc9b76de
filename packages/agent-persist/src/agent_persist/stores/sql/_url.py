"""PostgreSQL URLs as hosting consoles print them: libpq parameters become asyncpg arguments.

    url, connect_args = asyncpg_arguments(make_url("postgresql://u@db/app?sslmode=require"),
                                          timeout=10.0)
    # url: postgresql://u@db/app, connect_args: {"timeout": 10.0, "ssl": <SSLContext>}

SQLAlchemy's asyncpg dialect hands every query parameter of the URL to ``asyncpg.connect`` as
a keyword, and asyncpg knows none of libpq's names: ``?sslmode=require`` would fail at the
first connection with ``TypeError: connect() got an unexpected keyword argument``. So the
libpq parameters are taken off the URL here, checked, and turned into connect arguments
asyncpg takes (SQLAlchemy passes ``connect_args`` through unchanged):

=========================  ===================================================================
``sslmode`` (or ``ssl``)   ``ssl=``: ``disable``, ``allow``, ``prefer`` as asyncpg's own modes
                           (``allow``/``prefer`` fall back to plain TCP); ``require``,
                           ``verify-ca``, ``verify-full`` as an ``SSLContext`` (below).
``sslrootcert``            CA file the server certificate must chain to; ``system``: the
                           system's CAs (with ``verify-full`` only, as libpq).
``sslcert``, ``sslkey``    client certificate and key (an unencrypted key).
``connect_timeout``        ``timeout=`` seconds (``0``: wait forever); overrides the store's
                           ``connect_timeout`` option.
``application_name``       ``server_settings["application_name"]``.
``options``                ``-c name=value`` (or ``--name=value``) pairs, shell-quoted, into
                           ``server_settings``.
``target_session_attrs``   ``target_session_attrs=`` (``any``, ``primary``, ``standby``,
                           ``prefer-standby``, ``read-write``, ``read-only``).
``command_timeout``        asyncpg's statement timeout in seconds.
``statement_cache_size``   asyncpg's statement cache (default 100 per connection). ``0`` is
                           for a pooler in transaction mode (PgBouncer before 1.21, or with
                           ``max_prepared_statements = 0``): no statement is cached by asyncpg
                           or SQLAlchemy, each gets a unique name, and every statement runs
                           inside a transaction, so none outlives its server connection.
=========================  ===================================================================

``host`` (a name, a list ``a,b``, or a unix-socket directory such as ``/var/run/postgresql``),
``port`` and SQLAlchemy's ``prepared_statement_cache_size`` stay on the URL: the dialect reads
them itself. Any other parameter, a parameter given twice, or a value that is wrong (an
unknown ``sslmode``, a timeout that is not a number, a certificate file that does not exist,
a port outside 1-65535) is an :class:`~agent_persist.errors.InvalidStoreURLError` naming the
parameter, raised before any connection is tried.

TLS follows libpq: ``require`` encrypts without checking the server's certificate unless
``sslrootcert`` is given (then it checks the chain, like ``verify-ca``); ``verify-ca`` checks
the chain; ``verify-full`` also checks the host name. Unlike libpq, the default files under
``~/.postgresql`` are not read: name the files in the URL.
"""

from __future__ import annotations

import math
import os
import shlex
import ssl
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from ...errors import InvalidStoreURLError

__all__ = ["UNDERSTOOD", "asyncpg_arguments", "behind_pooler"]

_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_OPTIONAL_TLS = ("disable", "allow", "prefer")
_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
_TRANSLATED = (
    "sslmode",
    "ssl",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
    "command_timeout",
    "statement_cache_size",
)
_KEPT = ("host", "port", "prepared_statement_cache_size")
"""Left on the URL: SQLAlchemy's asyncpg dialect reads them (multi-host lists included)."""
UNDERSTOOD = frozenset(_TRANSLATED + _KEPT)
"""Every query parameter a PostgreSQL store URL may carry."""


def asyncpg_arguments(url: sa.URL, *, timeout: float) -> tuple[sa.URL, dict[str, Any]]:
    """The URL without the libpq parameters, and the asyncpg connect arguments they mean.

    Args:
        url: A ``postgresql+asyncpg`` URL, query parameters as the user wrote them.
        timeout: The store's connect timeout; a ``connect_timeout`` parameter overrides it.

    Raises:
        InvalidStoreURLError: An unknown parameter, or a value that cannot work.
    """
    shown = url.set(query={}).render_as_string(hide_password=True)
    unknown = sorted(set(url.query) - UNDERSTOOD)
    if unknown:
        raise InvalidStoreURLError(
            f"{shown}: unknown URL parameter {unknown[0]!r}; a PostgreSQL store URL takes "
            f"{', '.join(sorted(UNDERSTOOD))}"
        )
    params = _Params(shown, url.query)
    _check_addresses(params, url)
    args: dict[str, Any] = {"timeout": timeout}
    connect_timeout = params.seconds("connect_timeout", zero_means_none=True)
    if "connect_timeout" in url.query:
        args["timeout"] = connect_timeout
    command_timeout = params.seconds("command_timeout", zero_means_none=False)
    if command_timeout is not None:
        args["command_timeout"] = command_timeout
    tls = _ssl_argument(params)
    if tls is not None:
        args["ssl"] = tls
    settings = _server_settings(params)
    if settings:
        args["server_settings"] = settings
    args.update(_statement_cache(params))
    attrs = params.one_of("target_session_attrs", _SESSION_ATTRS)
    if attrs is not None:
        args["target_session_attrs"] = attrs
    kept = {name: value for name, value in url.query.items() if name in _KEPT}
    return url.set(query=kept), args


class _Params:
    """The query parameters of one URL, read one at a time with errors naming them."""

    def __init__(self, shown: str, query: Mapping[str, str | Sequence[str]]) -> None:
        self.shown = shown
        self._query = query

    def invalid(self, name: str, problem: str) -> InvalidStoreURLError:
        return InvalidStoreURLError(f"{self.shown}: URL parameter {name!r} {problem}")

    def text(self, name: str) -> str | None:
        value = self._query.get(name)
        if value is None or isinstance(value, str):
            return value
        raise self.invalid(name, "is given more than once")

    def one_of(self, name: str, allowed: Sequence[str]) -> str | None:
        value = self.text(name)
        if value is not None and value not in allowed:
            raise self.invalid(name, f"is {value!r}; use one of {', '.join(allowed)}")
        return value

    def seconds(self, name: str, *, zero_means_none: bool) -> float | None:
        """A number of seconds; ``0`` means no limit where libpq says so, else it is refused."""
        value = self.text(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0 or (number == 0 and not zero_means_none):
            floor = "0 or more" if zero_means_none else "more than 0"
            raise self.invalid(name, f"is {value!r}; give a number of seconds, {floor}")
        return None if number == 0 else number

    def file(self, name: str) -> str | None:
        path = self.text(name)
        if path is not None and not os.path.isfile(path):
            raise self.invalid(name, f"names {path!r}, which is not a readable file")
        return path


def behind_pooler(url: sa.URL) -> bool:
    """Whether the URL says ``statement_cache_size=0``: a pooler in transaction mode."""
    return url.query.get("statement_cache_size") == "0"


def _unique_statement_name() -> str:
    """A prepared statement name no other client of a shared server connection uses."""
    return f"__agent_persist_{uuid.uuid4().hex}__"


def _statement_cache(params: _Params) -> dict[str, Any]:
    """Asyncpg's ``statement_cache_size``; ``0`` turns every statement cache off.

    asyncpg names its prepared statements ``__asyncpg_stmt_1__`` and up on each connection,
    so two clients of one pooled server connection would collide: with the cache off, each
    statement gets a unique name and SQLAlchemy's own cache is off too.
    """
    value = params.text("statement_cache_size")
    if value is None:
        return {}
    if not value.isdigit():
        raise params.invalid("statement_cache_size", f"is {value!r}; give 0 or more")
    size = int(value)
    if size:
        return {"statement_cache_size": size}
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _unique_statement_name,
    }


def _check_addresses(params: _Params, url: sa.URL) -> None:
    """Every port in range, and SQLAlchemy's dialect able to read the host and port lists."""
    ports: list[str] = [str(url.port)] if url.port is not None else []
    for name in ("host", "port"):
        value = url.query.get(name)
        for item in [value] if isinstance(value, str) else list(value or ()):
            for token in item.split(","):
                if name == "port":
                    ports.append(token)
                elif not token.startswith("/") and ":" in token:
                    ports.append(token.rpartition(":")[2])
    for port in ports:
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise InvalidStoreURLError(f"{params.shown}: port {port!r} is not in 1-65535")
    cache_size = params.text("prepared_statement_cache_size")
    if cache_size is not None and not cache_size.isdigit():
        raise params.invalid("prepared_statement_cache_size", f"is {cache_size!r}; give 0 or more")
    from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

    try:  # pure parsing: asyncpg itself is not needed (nor imported) for this
        PGDialect_asyncpg().create_connect_args(url)
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise InvalidStoreURLError(f"{params.shown}: host or port parameters: {exc}") from exc


def _ssl_argument(params: _Params) -> str | ssl.SSLContext | None:
    """The ``ssl=`` argument: a mode name asyncpg handles itself, or a context built here."""
    if params.text("sslmode") is not None and params.text("ssl") is not None:
        raise params.invalid("ssl", "repeats sslmode; give one of them")
    name = "sslmode" if params.text("sslmode") is not None else "ssl"
    mode = params.one_of(name, _SSL_MODES)
    root = params.text("sslrootcert")
    if root == "system":
        if mode not in (None, "verify-full"):
            raise params.invalid("sslrootcert", "is 'system', which needs sslmode=verify-full")
        mode = "verify-full"
    elif root is not None:
        root = params.file("sslrootcert")
    cert, key = params.file("sslcert"), params.file("sslkey")
    if key is not None and cert is None:
        raise params.invalid("sslkey", "needs sslcert, the certificate that goes with the key")
    if mode is None and cert is None:
        return None  # asyncpg's default: prefer TLS on TCP (or PGSSLMODE)
    if mode is None or mode in _OPTIONAL_TLS:
        if cert is not None:
            raise params.invalid(
                "sslcert",
                "needs sslmode=require, verify-ca or verify-full (asyncpg offers a "
                "client certificate only on a connection that must use TLS)",
            )
        return mode
    if mode != "require" and root is None:
        raise params.invalid(
            name, f"is {mode!r}, which needs sslrootcert=<CA file> (or sslrootcert=system)"
        )
    return _ssl_context(params, mode, root, cert, key)


def _ssl_context(
    params: _Params, mode: str, root: str | None, cert: str | None, key: str | None
) -> ssl.SSLContext:
    """A TLS context checking what libpq's ``mode`` checks, with the given files loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ssl.HAS_ALPN:
        context.set_alpn_protocols(["postgresql"])
    context.check_hostname = mode == "verify-full"
    context.verify_mode = ssl.CERT_NONE if root is None else ssl.CERT_REQUIRED
    try:
        if root == "system":
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        elif root is not None:
            context.load_verify_locations(cafile=root)
    except (ssl.SSLError, OSError) as exc:
        raise params.invalid("sslrootcert", f"cannot be loaded: {exc}") from exc
    if cert is not None:
        try:
            context.load_cert_chain(cert, keyfile=key, password=lambda: "")
        except (ssl.SSLError, OSError) as exc:
            which = "sslkey" if key is not None else "sslcert"
            raise params.invalid(which, f"cannot be loaded with sslcert: {exc}") from exc
    return context


def _server_settings(params: _Params) -> dict[str, str]:
    """``options`` (``-c name=value`` pairs) then ``application_name``, as startup settings."""
    settings: dict[str, str] = {}
    options = params.text("options")
    if options is not None:
        try:
            words = shlex.split(options)
        except ValueError as exc:
            raise params.invalid("options", f"cannot be split into words: {exc}") from exc
        pending_c = False
        for word in words:
            if pending_c:
                setting, pending_c = word, False
            elif word == "-c":
                pending_c = True
                continue
            elif word.startswith("--") or word.startswith("-c"):
                setting = word[2:]
            else:
                raise params.invalid("options", f"holds {word!r}; write -c name=value")
            name, equals, value = setting.partition("=")
            if not name or not equals:
                raise params.invalid("options", f"holds {setting!r}; write -c name=value")
            settings[name.replace("-", "_")] = value
        if pending_c:
            raise params.invalid("options", "ends with -c and no name=value after it")
    application_name = params.text("application_name")
    if application_name is not None:
        settings["application_name"] = application_name
    return settings
