"""``python -m agent_persist.cli``: the same command where the script is not on ``PATH``.

python -m agent_persist.cli migrate --url sqlite:///agents.db --dry-run
"""

from . import main

main()
