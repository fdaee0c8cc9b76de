"""The faults table: every store's tally, printed at the end of the session (``-s``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fault_matrix import Tally, table


@pytest.fixture(scope="session")
def tallies() -> Iterator[list[Tally]]:
    """Where each store's fault test leaves its tally; the table is printed at the end."""
    found: list[Tally] = []
    yield found
    if found:
        print("\n\nfault injection (tests/faults):\n" + table(found))
