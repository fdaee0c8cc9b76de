"""Store URLs as messages show them: as the user typed them, with the password hidden.

    >>> hide_password("postgresql://u:secret@db:5432/agents")
    'postgresql://u:***@db:5432/agents'

Works for any scheme (``redis://:pw@host``, ``postgresql+asyncpg://...``) without SQLAlchemy,
so the core alone masks a Redis URL too. The user information is read as SQLAlchemy reads
it: everything before the last ``@`` of the part before ``?``, so a password may hold
``/``, ``:`` or ``@``.
"""

from __future__ import annotations

from urllib.parse import unquote

__all__ = ["MASK", "hide_password", "url_password", "without_password"]

MASK = "***"


def _userinfo(url: str) -> tuple[int, int] | None:
    """The span of the password in ``url``, or ``None`` when it has none."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    query = url.find("?", start)
    authority = url[start : query if query >= 0 else len(url)]
    at = authority.rfind("@")
    if at < 0:
        return None
    colon = authority.find(":", 0, at)
    if colon < 0 or "/" in authority[:colon]:  # no password, or a path (sqlite:///a:b@c)
        return None
    return start + colon + 1, start + at


def url_password(url: str) -> str | None:
    """The password of ``url`` (as written, percent-escapes kept), or ``None``."""
    span = _userinfo(url)
    if span is None or span[0] == span[1]:
        return None
    return url[span[0] : span[1]]


def hide_password(url: str) -> str:
    """``url`` with its password replaced by ``***`` (unchanged when it has none)."""
    span = _userinfo(url)
    if span is None or span[0] == span[1]:
        return url
    return url[: span[0]] + MASK + url[span[1] :]


def without_password(message: str, url: str) -> str:
    """``message`` with the password of ``url`` masked wherever it appears.

    A driver may quote the URL, or the password percent-decoded: both are masked.
    """
    password = url_password(url)
    if password:
        for secret in sorted({password, unquote(password)}, key=len, reverse=True):
            message = message.replace(secret, MASK)
    return message
