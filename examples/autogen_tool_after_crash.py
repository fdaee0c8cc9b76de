"""A worker dies inside a tool with a side effect; the next one neither repeats nor loses it.

Run it with `uv run examples/autogen_tool_after_crash.py`: no API key, no server. Worker A
(a separate process) runs a durable AutoGen agent whose tool sends an invoice (here: appends
a line to a file, with the call's idempotency key) and is killed with SIGKILL inside the
tool, right after the invoice went out. Worker B starts at once. The call journal knows
the tool was started and never finished, so with the default policy B raises
``ToolOutcomeUnknownError`` instead of sending the invoice again. The "operator" looks the
key up in the billing file, records the outcome with ``resolve_tool_call``, and B finishes
the run: the model call made before the crash is replayed from the journal, not paid again,
and exactly one invoice was sent.

Set AGENT_PERSIST_URL to try another store, e.g. redis://127.0.0.1:6379/0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from autogen_agentchat.agents import AssistantAgent

from agent_persist.errors import ToolOutcomeUnknownError
from agent_persist.journal import idempotency_key
from autogen_persist import DurableAgent
from autogen_persist.testing import HashChatCompletionClient

TASK = "Invoice ACME for the October work."
BILLING = Path(os.environ.get("BILLING_FILE", Path(tempfile.gettempdir()) / "billing.txt"))


def send_invoice(customer: str) -> str:
    """Send the customer's invoice."""
    key = idempotency_key()
    with BILLING.open("a", encoding="utf-8") as billing:  # the side effect
        billing.write(f"{key} invoice for {customer}\n")
    if os.environ.get("CRASH_INSIDE_TOOL"):
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies before the tool returns
    return f"invoice sent to {customer}"


def build_agent() -> AssistantAgent:
    return AssistantAgent(
        "billing",
        model_client=HashChatCompletionClient(name="billing", tool_every=1),
        tools=[send_invoice],
        system_message="You send invoices.",
        reflect_on_tool_use=True,
    )


async def worker(url: str) -> None:
    agent = DurableAgent(build_agent, store=url, thread_id="invoice-acme")
    try:
        result = await agent.run(task=TASK)
    except ToolOutcomeUnknownError as unknown:
        print(f"worker B: {unknown.tool}({unknown.arguments}) may have run; checking billing")
        billing = await asyncio.to_thread(BILLING.read_text)
        sent = unknown.idempotency_key in billing
        outcome = f"invoice sent to {unknown.arguments['customer']}" if sent else "not sent"
        await agent.resolve_tool_call(unknown.idempotency_key, outcome)
        result = await agent.run(task=TASK)
    print(f"worker B: {result.messages[-1].to_text()}")


def main() -> None:
    if len(sys.argv) > 1:  # the worker process
        asyncio.run(worker(sys.argv[1]))
        return
    folder = tempfile.mkdtemp()
    url = os.environ.get("AGENT_PERSIST_URL", f"sqlite:///{folder}/agents.db")
    os.environ["BILLING_FILE"] = str(Path(folder) / "billing.txt")
    crashing = {**os.environ, "CRASH_INSIDE_TOOL": "1"}
    worker_a = subprocess.run([sys.executable, __file__, url], env=crashing, check=False)  # noqa: S603 - this script
    if worker_a.returncode != -signal.SIGKILL:
        raise SystemExit(f"worker A should have been killed, got {worker_a.returncode}")
    print("worker A: killed by SIGKILL inside the tool, after the invoice went out")
    subprocess.run([sys.executable, __file__, url], check=True)  # noqa: S603 - worker B
    invoices = Path(os.environ["BILLING_FILE"]).read_text().splitlines()
    print(f"invoices sent: {len(invoices)}")
    if len(invoices) != 1:
        raise SystemExit("the invoice was not sent exactly once")


if __name__ == "__main__":
    main()
