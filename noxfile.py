"""Developer sessions: `uv run nox -s tests tests_minimal lint typecheck examples bench`."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests", "tests_minimal", "lint", "typecheck", "examples"]

ROOT = Path(__file__).parent
CORE = "packages/agent-persist"
MINIMAL_TESTS = [
    "tests/core",  # with test_telemetry_absent.py: the core never imports opentelemetry
    "tests/stores/test_memory.py",
    "tests/stores/test_sqlite.py",
    "tests/stores/test_optional_extras.py",
]


def sync(session: nox.Session, *args: str) -> None:
    """Install the workspace exactly as the lock file says, into the session's venv."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite, with every extra, against the real PostgreSQL and Redis."""
    sync(session)
    session.run("pytest", *session.posargs)


@nox.session
def tests_minimal(session: nox.Session) -> None:
    """The core alone, no extras: SQLite works and every extra fails with its install command."""
    session.install(f"./{CORE}", "pytest", "pytest-asyncio", "hypothesis")
    session.run(
        "python",
        "-c",
        "import importlib.util as u; assert not u.find_spec('redis'); "
        "assert not u.find_spec('asyncpg'); assert not u.find_spec('opentelemetry')",
    )
    session.run("pytest", *MINIMAL_TESTS, *session.posargs)
    session.run("pytest", "tests/cli", "-m", "not needs_extras", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: the rules listed in pyproject.toml, and formatting."""
    sync(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Pyright in strict mode on every package's src/."""
    sync(session)
    session.run("pyright")


@nox.session
def examples(session: nox.Session) -> None:
    """Every example, offline, as a user would run it."""
    sync(session)
    for example in sorted((ROOT / "examples").glob("*.py")):
        session.run("python", str(example))


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks behind the README's numbers (prints tables; asserts nothing)."""
    sync(session)
    for benchmark in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        session.run("python", str(benchmark), *session.posargs)
