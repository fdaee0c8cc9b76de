"""Test helpers for stores: the conformance suite every store, ours or yours, must pass.

    from agent_persist.testing import StoreConformance

    class TestMyStore(StoreConformance):
        ...   # define the store_factory and tamper fixtures

Importing this package needs pytest.
"""

from .conformance import HOSTILE_IDS, StoreConformance, StoreFactory, Tamper

__all__ = ["HOSTILE_IDS", "StoreConformance", "StoreFactory", "Tamper"]
