"""Developer sessions: `uv run nox -s tests tests_minimal lint typecheck examples wheels bench`.

Release checks: `wheels` (build, `twine check`, install into a clean environment, run the
examples there) and `frameworks` (the adapter suites against the oldest and newest framework
release each adapter's range admits).
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests", "tests_minimal", "lint", "typecheck", "examples"]

ROOT = Path(__file__).parent
CORE = "packages/agent-persist"
PACKAGES = ("agent-persist", "autogen-persist", "openai-agents-persist")
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
    session.install(f"./{CORE}", "pytest", "pytest-asyncio", "pytest-xdist", "hypothesis")
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
    """The benchmarks behind the README's numbers (prints tables; asserts nothing).

    With the `bench` group: the contenders bench_throughput.py runs ours against.
    """
    sync(session, "--group", "bench")
    for benchmark in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        session.run("python", str(benchmark), *session.posargs)


# -- release checks ------------------------------------------------------------------------


def _wheel_problems(wheel: Path) -> list[str]:
    """What a published wheel of ours must hold that `twine check` does not look at."""
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
        license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
        licenses = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        if not licenses or archive.read(licenses[0]).decode() != license_text:
            problems.append("the repository's LICENSE is missing")
        if not any(n.endswith("/py.typed") for n in names):
            problems.append("py.typed is missing")
        for field in ("License-Expression: MIT", "Author: agent-persist developers"):
            if field not in text:
                problems.append(f"METADATA lacks {field!r}")
        for label in ("Homepage", "Repository", "Issues", "Changelog"):
            if f"Project-URL: {label}, https://" not in text:
                problems.append(f"METADATA lacks the {label} URL")
        if "see the repository README" in text:
            problems.append("the PyPI description sends readers elsewhere")
    return [f"{wheel.name}: {problem}" for problem in problems]


@nox.session
def wheels(session: nox.Session) -> None:
    """Build the three wheels, check them, install them with every extra, run the examples.

    Each extra is also installed alone into a fresh virtualenv, which must open its store.

        The session's own virtualenv is the clean environment: our three packages come from the
        built wheels only (given as files; `--find-links` so nothing of ours comes from the
        index), their dependencies from the index. The examples then run from a directory
        outside the repository, so they import the installed wheels, not the sources.
    """
    dist = Path(session.create_tmp()) / "dist"
    session.run("uv", "build", "--all-packages", "--wheel", "--out-dir", str(dist), external=True)
    built = sorted(dist.glob("*.whl"))
    expected = sorted(name.replace("-", "_") for name in PACKAGES)
    if sorted(w.name.split("-")[0] for w in built) != expected:
        session.error(f"expected one wheel each of {PACKAGES}, built {[w.name for w in built]}")
    problems = [problem for wheel in built for problem in _wheel_problems(wheel)]
    if problems:
        session.error("; ".join(problems))
    # twine runs in a throwaway environment of its own: nothing of it may reach the clean one
    session.run("uvx", "twine>=6.1", "check", "--strict", *map(str, built), external=True)

    session.install(
        "--find-links",
        str(dist),
        *(f"{wheel}[postgres,redis]" for wheel in built),
        "httpx",  # the examples' real-model path hands the OpenAI client an httpx.AsyncClient
    )
    session.run(
        "python",
        "-c",
        "import importlib.metadata as m, sys, agent_persist, autogen_persist, "
        "openai_agents_persist, asyncpg, redis\n"
        "for p in (agent_persist, autogen_persist, openai_agents_persist):\n"
        "    assert p.__file__.startswith(sys.prefix), p.__file__\n"
        f"for d in {PACKAGES!r}:\n"
        "    assert m.distribution(d).read_text('direct_url.json') is None or "
        "'.whl' in m.distribution(d).read_text('direct_url.json'), d\n"
        "    print(d, m.version(d), 'from', m.distribution(d).locate_file(''))\n"
        "plugins = {e.name for e in m.entry_points(group='agent_persist.plugins')}\n"
        "assert plugins == {'autogen', 'openai_agents'}, plugins",
    )
    session.run("agent-persist", "--help", silent=True)
    for requirement, url in EACH_EXTRA:
        _check_one_extra(session, built, requirement, url)
    outside = Path(session.create_tmp()) / "run"
    outside.mkdir(exist_ok=True)
    session.chdir(outside)
    for example in sorted((ROOT / "examples").glob("*.py")):
        session.run("python", str(example), env={"OPENAI_API_KEY": ""})


POSTGRES_URL = os.environ.get(
    "AGENT_PERSIST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AGENT_PERSIST_REDIS_URL", "redis://127.0.0.1:6379/0")
EACH_EXTRA = [
    # what a user installs alone, and the store URL that install must open
    ("agent-persist", "sqlite:///extra-check.db"),
    ("agent-persist[postgres]", POSTGRES_URL),
    ("agent-persist[redis]", REDIS_URL),
    ("agent-persist[otel]", "sqlite:///extra-check.db"),
    ("autogen-persist[postgres]", POSTGRES_URL),
    ("openai-agents-persist[redis]", REDIS_URL),
]
_ROUND_TRIP = """
import asyncio, sys, uuid
from agent_persist import Envelope, Producer, open_store

async def main(url: str) -> None:
    async with open_store(url, namespace="extra-check-" + uuid.uuid4().hex) as store:
        thread = uuid.uuid4().hex
        envelope = Envelope.create(kind="check", schema_version=1, thread_id=thread,
                                   payload={"ok": True}, producer=Producer(package="check"))
        await store.put(envelope, appends={"log": [1, 2]})
        assert (await store.get(thread)).payload == {"ok": True}
        assert await store.read_log(thread, "log") == [1, 2]
        await store.delete_thread(thread)

asyncio.run(main(sys.argv[1]))
"""


def _check_one_extra(session: nox.Session, built: list[Path], requirement: str, url: str) -> None:
    """``requirement`` alone, from the wheels, in a fresh virtualenv: it opens ``url``."""
    name, _, extra = requirement.partition("[")
    venv = Path(session.create_tmp()) / f"only-{name}-{extra.rstrip(']') or 'core'}"
    session.run("uv", "venv", "--quiet", "--clear", str(venv), external=True)
    python = str(venv / "bin" / "python")
    wheel = next(w for w in built if w.name.startswith(name.replace("-", "_") + "-"))
    session.run(
        "uv", "pip", "install", "--quiet", "--python", python, "--find-links", str(wheel.parent),
        f"{wheel}[{extra}" if extra else str(wheel), external=True,
    )  # fmt: skip
    session.run(python, "-c", _ROUND_TRIP, url, external=True)
    module = name.replace("-", "_")
    session.run(python, "-c", f"import {module}; print({module}.__version__)", external=True)
    session.run(str(venv / "bin" / "agent-persist"), "--help", external=True, silent=True)


FRAMEWORKS = {
    # adapter suite: (its package, the framework, the packages released in lockstep with it)
    "tests/autogen": ("autogen-persist", "autogen-agentchat", ("autogen-core", "autogen-ext")),
    "tests/openai_agents": ("openai-agents-persist", "openai-agents", ()),
}
_EXTRAS = {"autogen-ext": "[openai]", "openai-agents": "[encrypt]"}


def _framework_range(package: str, framework: str) -> str:
    """The specifier of ``framework`` in the package's pyproject.toml, e.g. ``>=0.7,<0.8``."""
    text = (ROOT / "packages" / package / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(rf'"{re.escape(framework)}(\[[^\]]*\])?\s*([<>=!~][^";]*)"', text)
    if match is None:
        raise ValueError(f"{package} does not depend on {framework}")
    return match.group(2).strip()


def _resolve(session: nox.Session, requirement: str, resolution: str) -> str:
    """The version of ``requirement`` that uv picks with ``--resolution``, from the index."""
    wanted = Path(session.create_tmp()) / "framework.in"
    wanted.write_text(requirement + "\n", encoding="utf-8")
    out = session.run(
        "uv", "pip", "compile", str(wanted), "--no-deps", "--no-header", "--no-annotate",
        "--resolution", resolution, "--quiet", external=True, silent=True,
    )  # fmt: skip
    pins = [line for line in str(out).splitlines() if "==" in line]
    return pins[0].split("==", 1)[1].strip()


def _locked(name: str) -> str:
    lock = (ROOT / "uv.lock").read_text(encoding="utf-8")
    match = re.search(rf'\nname = "{re.escape(name)}"\nversion = "([^"]+)"', lock)
    if match is None:
        raise ValueError(f"{name} is not in uv.lock")
    return match.group(1)


@nox.session
@nox.parametrize("bound", ["oldest", "newest"])
def frameworks(session: nox.Session, bound: str) -> None:
    """Each adapter suite against the oldest or newest framework release its range admits.

    So the ranges in the pyproject files are the versions tested. The newest release is
    what the main test run already tests when uv.lock holds it: then it is skipped here
    (`-- --force` runs it anyway). Extra arguments go to pytest.
    """
    posargs = [a for a in session.posargs if a != "--force"]
    force = "--force" in session.posargs
    sync(session)
    resolution = "lowest-direct" if bound == "oldest" else "highest"
    for suite, (package, framework, companions) in FRAMEWORKS.items():
        spec = _framework_range(package, framework)
        version = _resolve(session, f"{framework}{spec}", resolution)
        if bound == "newest" and version == _locked(framework) and not force:
            session.log(
                f"{framework} {version} (newest of {spec}) is in uv.lock: tested by `tests`"
            )
            continue
        session.log(f"{suite}: {framework} {version} ({bound} of {spec})")
        pins = [f"{name}{_EXTRAS.get(name, '')}=={version}" for name in (framework, *companions)]
        session.run_install("uv", "pip", "install", "--python", session.virtualenv.location, *pins)
        # The every-k crash sweeps test our logic, not the framework's: the main run has them.
        session.run("pytest", suite, "-p", "no:cacheprovider", "-q", "-m", "not sweep", *posargs)
        sync(session)  # back to the lock for the next suite
