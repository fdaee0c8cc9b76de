"""Every ```python block of the READMEs runs, so a README never shows code that does not work.

A block is a fragment: it may use names a reader already has (a model client, an agent, a
store holding a thread) and ``await`` at top level. The line just before its fence names
the harness that provides those names::

    <!-- readme-test: setup=openai_agent -->
    ```python
    ...
    ```

``SETUPS`` below holds each harness: Python run first in the block's namespace, with
deterministic model doubles standing in for the real models (AutoGen:
``HashChatCompletionClient``; the Agents SDK: ``ScriptedModel``). A block with no comment
runs with nothing given. Each block runs in its own interpreter (blocks register
migrations in the process-wide registry), in an empty directory (``sqlite:///agents.db``
lands there), offline (``OPENAI_API_KEY`` removed) and with deprecation warnings as errors,
so a README that still shows a deprecated name fails. Bash blocks are not run.

Pyright also checks every block (standard mode): ``DECLARATIONS`` gives each setup's names
their types, and the block is checked as the body of an ``async def``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]

_AUTOGEN_MODEL = """
from autogen_persist.testing import HashChatCompletionClient

model_client = HashChatCompletionClient()  # stands for OpenAIChatCompletionClient(model=...)
"""

_AUTOGEN_ESSAY = (
    _AUTOGEN_MODEL
    + """
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat

from autogen_persist import durable


@durable(store="sqlite:///agents.db")
def _first_team() -> RoundRobinGroupChat:
    writer = AssistantAgent("writer", model_client=model_client, system_message="Write.")
    critic = AssistantAgent("critic", model_client=model_client, system_message="Critique.")
    return RoundRobinGroupChat([writer, critic], termination_condition=MaxMessageTermination(9))


await _first_team(thread_id="essay-1").run(task="Write an essay.")
del AssistantAgent, MaxMessageTermination, RoundRobinGroupChat, durable
"""
)

_OPENAI_AGENT = """
from agents import Agent, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message

set_tracing_disabled(True)
agent = Agent(
    name="assistant",
    instructions="Answer in one sentence.",
    model=ScriptedModel([[assistant_message(f"Answer {n}.")] for n in range(10)]),
)
"""

_OPENAI_APPROVAL = """
from agents import set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

set_tracing_disabled(True)
model = ScriptedModel(
    [
        [function_call("delete_file", {"path": "old.log"}, call_id="c1")],
        [assistant_message("old.log is deleted.")],
    ]
)
"""

_CORE_TURNS = """
question = {"role": "user", "content": "What is a checkpoint?"}
answer = {"role": "assistant", "content": "A saved state."}
question2 = {"role": "user", "content": "And a thread?"}
answer2 = {"role": "assistant", "content": "A history of checkpoints."}
"""

_CORE_STORE_V1 = """
from agent_persist import Envelope, Producer, open_store

store = await open_store("sqlite:///agents.db").__aenter__()
await store.put(
    Envelope.create(
        kind="my.chat",
        schema_version=1,
        thread_id="t-1",
        payload={"turn": 1, "budget": 100},
        producer=Producer(package="my-app"),
    )
)
"""

SETUPS: dict[str, str] = {
    "none": "",
    # `model_client`: AutoGen's model client, a deterministic double.
    "autogen_model": _AUTOGEN_MODEL,
    # `model_client` and thread "essay-1" in sqlite:///agents.db, run by a writer and a critic.
    "autogen_essay": _AUTOGEN_ESSAY,
    # `agent`: an Agents SDK agent whose model answers from a script.
    "openai_agent": _OPENAI_AGENT,
    # `model`: an Agents SDK model that calls `delete_file` on old.log, then answers.
    "openai_approval": _OPENAI_APPROVAL,
    # `question`, `answer`, `question2`, `answer2`: the messages of two turns.
    "core_turns": _CORE_TURNS,
    # `store`: an open SQLite store holding thread "t-1" of kind "my.chat" at version 1.
    "core_store_v1": _CORE_STORE_V1,
}

# What each setup gives a block, as pyright should see it.
DECLARATIONS: dict[str, str] = {
    "none": "",
    "autogen_model": "from autogen_core.models import ChatCompletionClient\n"
    "model_client: ChatCompletionClient\n",
    "autogen_essay": "from autogen_core.models import ChatCompletionClient\n"
    "model_client: ChatCompletionClient\n",
    "openai_agent": "from typing import Any\nfrom agents import Agent\nagent: Agent[Any]\n",
    "openai_approval": "from agents import Model\nmodel: Model\n",
    "core_turns": "question: dict[str, str]\nanswer: dict[str, str]\n"
    "question2: dict[str, str]\nanswer2: dict[str, str]\n",
    "core_store_v1": "from agent_persist import BaseStore\nstore: BaseStore\n",
}

# Runs in the child: the setup, then the block compiled with its README line numbers, each
# allowed to `await` at top level.
_RUNNER = """
import ast, asyncio, sys, types

async def main():
    namespace = {"__name__": "__readme__"}
    setup, block, first_line, name = sys.argv[1:]
    for path, line, filename in ((setup, 1, "<readme-test setup>"), (block, int(first_line), name)):
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), filename=filename)
        ast.increment_lineno(tree, line - 1)
        code = compile(tree, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = types.FunctionType(code, namespace)()
        if asyncio.iscoroutine(result):
            await result

asyncio.run(main())
"""

_SETUP_COMMENT = re.compile(r"<!--\s*readme-test:\s*setup=(\w+)\s*-->")


@dataclass(frozen=True)
class Block:
    """One ```python block: where it is, its harness and its code."""

    readme: Path
    line: int  # the README line of the block's first code line
    setup: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.readme.relative_to(ROOT)}:{self.line}"


def python_blocks(readme: Path) -> list[Block]:
    """The ```python blocks of one README, each with the setup its comment names."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            comment = _SETUP_COMMENT.fullmatch(lines[index - 1].strip()) if index else None
            end = lines.index("```", index + 1)
            blocks.append(
                Block(
                    readme=readme,
                    line=index + 2,
                    setup=comment.group(1) if comment else "none",
                    code="\n".join(lines[index + 1 : end]) + "\n",
                )
            )
            index = end
        index += 1
    return blocks


BLOCKS = [block for readme in READMES for block in python_blocks(readme)]


def test_every_readme_has_runnable_code() -> None:
    assert {block.readme for block in BLOCKS} == set(READMES)
    unknown = [(block.name, block.setup) for block in BLOCKS if block.setup not in SETUPS]
    assert unknown == []


def test_no_setup_comment_is_misplaced() -> None:
    """A setup comment not right before a python fence would silently set up nothing."""
    for readme in READMES:
        lines = readme.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            if _SETUP_COMMENT.fullmatch(line.strip()):
                assert lines[index + 1 : index + 2] == ["```python"], f"{readme}:{index + 1}"


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_readme_block_runs(block: Block, tmp_path: Path) -> None:
    setup = tmp_path / "setup.py"
    setup.write_text(SETUPS[block.setup], encoding="utf-8")
    code = tmp_path / "block.py"
    code.write_text(block.code, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "OPENAI_API_KEY"}
    completed = subprocess.run(  # noqa: S603 - our own interpreter on our own README
        [
            sys.executable,
            "-W",
            "error::DeprecationWarning",
            "-c",
            _RUNNER,
            str(setup),
            str(code),
            str(block.line),
            block.name,
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]


def test_setups_are_declared() -> None:
    assert set(DECLARATIONS) == set(SETUPS)


def test_readme_blocks_type_check(tmp_path: Path) -> None:
    """A block that runs can still teach a type error (a hook that forgets None)."""
    where: dict[str, tuple[Block, int]] = {}  # file -> its block, the file line of its line 1
    for index, block in enumerate(BLOCKS):
        body = "".join(f"    {line}\n" if line else "\n" for line in block.code.splitlines())
        head = f"{DECLARATIONS[block.setup]}\n\nasync def _block() -> None:\n"
        path = tmp_path / f"block_{index}.py"
        path.write_text(head + body, encoding="utf-8")
        where[str(path)] = (block, head.count("\n"))
    (tmp_path / "pyrightconfig.json").write_text(
        '{"typeCheckingMode": "standard", "reportUnusedCoroutine": "error",'
        ' "pythonVersion": "3.10"}',
        encoding="utf-8",
    )
    completed = subprocess.run(
        [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    diagnostics = json.loads(completed.stdout)["generalDiagnostics"]
    errors = [
        f"{_readme_line(where, d['file'], d['range']['start']['line'])}: {d['message']}"
        for d in diagnostics
        if d["severity"] == "error"
    ]
    assert errors == []
    assert len(where) == len(BLOCKS)


def _readme_line(where: dict[str, tuple[Block, int]], file: str, line: int) -> str:
    """``README.md:LINE`` for pyright's 0-based line in a generated file."""
    if file not in where:
        return file
    block, offset = where[file]
    return f"{block.readme.relative_to(ROOT)}:{block.line + line - offset}"
