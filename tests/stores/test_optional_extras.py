"""Optional dependencies fail with the exact install command; bad URLs fail clearly.

These run in the minimal session too, where the extras are really absent; here they are
hidden by putting ``None`` in ``sys.modules``, which makes their import fail the same way.
"""

from __future__ import annotations

import importlib
import sys

import pytest

from agent_persist import open_store
from agent_persist.errors import InvalidStoreURLError, MissingDependencyError


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in modules):
            monkeypatch.delitem(sys.modules, name)
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_redis_store_without_redis_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "agent_persist.stores.redis", raising=False)
    hide(monkeypatch, "redis")
    with pytest.raises(MissingDependencyError, match=r'pip install "agent-persist\[redis\]"'):
        importlib.import_module("agent_persist.stores.redis")
    with pytest.raises(ImportError, match=r'pip install "agent-persist\[redis\]"'):
        open_store("redis://127.0.0.1:6379/0")


def test_postgres_store_without_asyncpg_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hide(monkeypatch, "asyncpg")
    for url in ("postgresql://postgres@127.0.0.1/test", "postgresql+asyncpg://u@h/db"):
        with pytest.raises(
            MissingDependencyError, match=r'pip install "agent-persist\[postgres\]"'
        ):
            open_store(url)


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/db", "ftp://x", "agents.db", "", "postgresql+psycopg2://u@h/db"],
)
def test_unknown_url_schemes_are_refused(url: str) -> None:
    with pytest.raises(InvalidStoreURLError):
        open_store(url)


def test_memory_urls_share_data_by_name() -> None:
    assert open_store("memory://a")._threads is open_store("memory://a")._threads  # type: ignore[attr-defined]
    assert open_store("memory://")._threads is not open_store("memory://")._threads  # type: ignore[attr-defined]


def test_encryption_without_cryptography_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(sys.modules):
        if name.startswith("agent_persist.crypto"):
            monkeypatch.delitem(sys.modules, name)
    hide(monkeypatch, "cryptography")
    with pytest.raises(MissingDependencyError, match=r'pip install "agent-persist\[crypto\]"'):
        importlib.import_module("agent_persist.crypto")
