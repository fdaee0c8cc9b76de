"""Team and agent factories shared by the AutoGen tests and the SIGKILL worker.

Every factory builds new agents and new model clients on every call, as a user's factory
must. Every model is a HashChatCompletionClient: a reply is a hash of the whole prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autogen_agentchat.agents import AssistantAgent, SocietyOfMindAgent
from autogen_agentchat.base import ChatAgent, Team
from autogen_agentchat.conditions import (
    MaxMessageTermination,
    TextMentionTermination,
    TimeoutTermination,
    TokenUsageTermination,
)
from autogen_agentchat.messages import BaseChatMessage
from autogen_agentchat.teams import (
    DiGraphBuilder,
    GraphFlow,
    RoundRobinGroupChat,
    SelectorGroupChat,
    Swarm,
)

from autogen_persist.testing import HashChatCompletionClient

TASK = "Plan a three-day trip to Lisbon."
AGENT_TASKS = [f"Question {i}: what is {i} plus {i * 3}?" for i in range(11)]


def _agent(name: str, **model: Any) -> AssistantAgent:
    return AssistantAgent(
        name,
        model_client=HashChatCompletionClient(name=name, **model),
        system_message=f"You are {name}.",
    )


def round_robin_max() -> Team:
    return RoundRobinGroupChat(
        [_agent("planner"), _agent("critic"), _agent("editor")],
        termination_condition=MaxMessageTermination(13),
    )


def round_robin_text_or_max() -> Team:
    # The reply mentions APPROVED once an agent's prompt holds 13 messages (turn 11 or 12).
    return RoundRobinGroupChat(
        [_agent("writer", stop_text="APPROVED", stop_after=13), _agent("reviewer")],
        termination_condition=TextMentionTermination("APPROVED") | MaxMessageTermination(40),
    )


def round_robin_tokens() -> Team:
    return RoundRobinGroupChat(
        [_agent("alpha"), _agent("beta")],
        termination_condition=TokenUsageTermination(max_total_token=300),
    )


def round_robin_and_or_timeout() -> Team:
    # AND: at least 5 messages AND "APPROVED" seen; OR a timeout that never fires here.
    return RoundRobinGroupChat(
        [_agent("writer", stop_text="APPROVED", stop_after=12), _agent("reviewer")],
        termination_condition=(
            (MaxMessageTermination(5) & TextMentionTermination("APPROVED"))
            | TimeoutTermination(3600)
        ),
    )


def round_robin_max_turns() -> Team:
    return RoundRobinGroupChat([_agent("ping"), _agent("pong")], max_turns=11)


def selector() -> Team:
    names = ["researcher", "analyst", "writer"]
    return SelectorGroupChat(
        [_agent(name) for name in names],
        model_client=HashChatCompletionClient(name="selector", choices=names),
        termination_condition=MaxMessageTermination(13),
        allow_repeated_speaker=False,
    )


def swarm() -> Team:
    names = ["triage", "billing", "support"]
    agents = [
        AssistantAgent(
            name,
            model_client=HashChatCompletionClient(name=name, tool_every=2),
            handoffs=[other for other in names if other != name],
            system_message=f"You are {name}.",
        )
        for name in names
    ]
    return Swarm(agents, termination_condition=MaxMessageTermination(13))


def graph_fan_out() -> Team:
    # root -> (b1, c1) -> j1 -> (b2, c2) -> j2 ... : 11 steps, the pairs run in parallel.
    builder = DiGraphBuilder()
    agents: list[AssistantAgent] = []
    previous = _agent("root")
    builder.add_node(previous)
    agents.append(previous)
    for level in range(1, 6):
        pair = [_agent(f"b{level}"), _agent(f"c{level}")]
        join = _agent(f"j{level}")
        for agent in [*pair, join]:
            builder.add_node(agent)
            agents.append(agent)
        for agent in pair:
            builder.add_edge(previous, agent)
            builder.add_edge(agent, join)
        previous = join
    return GraphFlow(agents, graph=builder.build())


def _always(message: BaseChatMessage) -> bool:
    return True


def _never(message: BaseChatMessage) -> bool:
    return False


def graph_cycle() -> Team:
    # start -> a -> b -> c -> a (loop, an "any" activation group) ; c -> done never taken.
    start, a, b, c, done = (_agent(n) for n in ["start", "a", "b", "c", "done"])
    builder = DiGraphBuilder()
    for agent in (start, a, b, c, done):
        builder.add_node(agent)
    builder.add_edge(start, a)
    builder.add_edge(a, b).add_edge(b, c)
    builder.add_edge(c, a, condition=_always, activation_group="loop", activation_condition="any")
    builder.add_edge(c, done, condition=_never)
    builder.set_entry_point(start)
    return GraphFlow(
        [start, a, b, c, done],
        graph=builder.build(),
        termination_condition=MaxMessageTermination(14),
    )


def society_of_mind() -> Team:
    inner = RoundRobinGroupChat(
        [_agent("drafter"), _agent("checker")], termination_condition=MaxMessageTermination(3)
    )
    mind = SocietyOfMindAgent(
        "mind", team=inner, model_client=HashChatCompletionClient(name="mind")
    )
    return RoundRobinGroupChat(
        [mind, _agent("user_proxy")], termination_condition=MaxMessageTermination(12)
    )


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def lookup(key: str) -> str:
    """Look a key up."""
    return f"value-of-{key}"


def tool_agent() -> ChatAgent:
    return AssistantAgent(
        "assistant",
        model_client=HashChatCompletionClient(name="assistant", tool_every=2),
        tools=[add, lookup],
        system_message="You answer with tools.",
        reflect_on_tool_use=True,
    )


TEAMS: dict[str, Callable[[], Team]] = {
    "round_robin_max": round_robin_max,
    "round_robin_text_or_max": round_robin_text_or_max,
    "round_robin_tokens": round_robin_tokens,
    "round_robin_and_or_timeout": round_robin_and_or_timeout,
    "round_robin_max_turns": round_robin_max_turns,
    "selector": selector,
    "swarm": swarm,
    "graph_fan_out": graph_fan_out,
    "graph_cycle": graph_cycle,
    "society_of_mind": society_of_mind,
}
