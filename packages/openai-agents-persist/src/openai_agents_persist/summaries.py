"""The running summary of :class:`~openai_agents_persist.policies.SummaryPlusRecent`, stored.

    record = await session.latest_summary()   # SummaryRecord(through=40, text="...", last=...)

Each summary is one item of the session's ``summaries`` log: ``{"through": n, "text": ...,
"last": ...}``, the summary of the stored history before position ``n`` (a leading
system/developer item excepted: the policies always send it as it is). ``last`` fingerprints
the item at ``n - 1``, so a summary whose items changed since (the session was cleared and grew
again, items were popped into the summarised part) is recognised and not reused. The log keeps
every summary written (a small record per window shift); the newest is the one in use. It lives
in the session's thread, so it survives restarts and goes where the thread goes (``fork``,
``export``, ``delete_thread``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, cast

from agent_persist import canonical_json

__all__ = ["SUMMARIES_LOG", "SummaryRecord", "item_fingerprint"]

SUMMARIES_LOG = "summaries"
"""The log of a session's running summaries (the newest is the one in use)."""


def item_fingerprint(item: Any) -> str:
    """A short hash of an item's canonical JSON: which item a summary ended with."""
    return hashlib.sha256(canonical_json(item)).hexdigest()[:32]


@dataclass(frozen=True)
class SummaryRecord:
    """A running summary: ``text`` covers the history before position ``through``.

    Attributes:
        through: The position in the session's history (its ``get_items()`` list) where the
            summary ends: it covers the items before it, the model sees the items from it.
        text: The summary.
        last: :func:`item_fingerprint` of the item at ``through - 1``.
    """

    through: int
    text: str
    last: str

    def to_json(self) -> dict[str, Any]:
        """The record as stored in the ``summaries`` log."""
        return {"through": self.through, "text": self.text, "last": self.last}

    @classmethod
    def from_json(cls, value: Any) -> SummaryRecord | None:
        """The record stored as ``value``, or ``None`` if it is not one (it is not reused)."""
        if not isinstance(value, dict):
            return None
        fields = cast("dict[str, Any]", value)
        through, text, last = fields.get("through"), fields.get("text"), fields.get("last")
        if type(through) is not int or through < 1:
            return None
        if not isinstance(text, str) or not isinstance(last, str):
            return None
        return cls(through=through, text=text, last=last)

    def covers(self, items: list[Any]) -> bool:
        """Whether this summary was made from ``items`` (its last item is still in place)."""
        return self.through <= len(items) and item_fingerprint(items[self.through - 1]) == self.last
