"""autogen-persist: durable AutoGen teams and agents on agent-persist stores.

    from autogen_persist import durable

    @durable(store="sqlite:///agents.db")
    def build_team() -> RoundRobinGroupChat:
        return RoundRobinGroupChat([writer, critic], termination_condition=MaxMessageTermination(9))

    team = build_team(thread_id="essay-1")
    result = await team.run(task="Write an essay.")   # run it again after a crash: it resumes

Also: :func:`save_agent` / :func:`load_agent` (and the team twins) for checkpoints taken by
hand, :mod:`autogen_persist.migrations` to carry a thread across a changed team (a renamed
or added participant, new few-shot messages...), and the ``agent_persist.plugins`` entry
point that lets the core adopt and migrate raw ``save_state()`` files.
"""

from importlib.metadata import version as _version

from . import migrations
from ._durable import ThreadStatus
from ._plugin import KIND_AGENT, KIND_TEAM
from ._termination import register_termination_state
from .agent import DurableAgent
from .decorator import durable, make_durable
from .snapshots import load_agent, load_team, save_agent, save_team
from .team import DurableTeam

__version__ = _version("autogen-persist")

__all__ = [
    "KIND_AGENT",
    "KIND_TEAM",
    "DurableAgent",
    "DurableTeam",
    "ThreadStatus",
    "__version__",
    "durable",
    "load_agent",
    "load_team",
    "make_durable",
    "migrations",
    "register_termination_state",
    "save_agent",
    "save_team",
]
