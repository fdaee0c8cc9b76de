"""The examples run offline as CI runs them, and their real-model path runs against respx.

With OPENAI_API_KEY set the examples build the SDK's real ``OpenAIResponsesModel`` over an
``httpx.AsyncClient`` (FINDINGS section 2), so respx sees and answers every request.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import respx

EXAMPLES = Path(__file__).parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def response(*output: dict[str, Any]) -> httpx.Response:
    body = {
        "id": "resp_1",
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "model": "gpt-4.1-mini",
        "output": list(output),
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 7,
            "output_tokens": 3,
            "total_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }
    return httpx.Response(200, json=body)


def message(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_1",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


@pytest.mark.parametrize(
    "name", ["openai_agents_quickstart", "openai_agents_approval_after_restart"]
)
def test_examples_run_offline(name: str) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(  # noqa: S603 - our own example file
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "Traceback" not in done.stderr


async def test_quickstart_with_the_real_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-dummy")
    example = load("openai_agents_quickstart")
    with respx.mock(base_url="https://api.openai.com/v1") as api:
        route = api.post("/responses")
        route.side_effect = [response(message("First.")), response(message("Second."))]
        items = await example.main(f"sqlite:///{tmp_path / 'a.db'}")
    assert route.call_count == 2
    second = json.loads(route.calls[1].request.content)
    assert second["input"][0]["content"] == "What is a session?"
    assert items[-1]["content"][0]["text"] == "Second."


async def test_approval_with_the_real_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-dummy")
    example = load("openai_agents_approval_after_restart")
    url = f"sqlite:///{tmp_path / 'a.db'}"
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "delete_file",
        "arguments": '{"path": "old.log"}',
        "status": "completed",
    }
    with respx.mock(base_url="https://api.openai.com/v1") as api:
        route = api.post("/responses")
        route.side_effect = [response(call), response(message("Deleted."))]
        assert await example.step(url, "ask") == "waiting for approval of ['delete_file']"
        assert await example.step(url, "approve") == "done: Deleted."
    sent = json.loads(route.calls[1].request.content)["input"]
    outputs = [i["output"] for i in sent if i.get("type") == "function_call_output"]
    assert outputs == ["deleted old.log"]
