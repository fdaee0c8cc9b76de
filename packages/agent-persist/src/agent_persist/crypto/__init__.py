"""Encryption at rest: per-thread data keys, AES-256-GCM, crypto-shredding and rotation.

Needs the ``crypto`` extra (``pip install "agent-persist[crypto]"``)::

    from agent_persist.crypto import Encryption, KeyRing

    ring = KeyRing.from_env()            # AGENT_PERSIST_KEY_<ID>=base64, ..._PRIMARY_KEY=<ID>
    async with open_store(url, encryption=Encryption(ring)) as store:
        ...                               # payloads and log items sealed, per thread

Each thread gets a random data key, wrapped by the ring's primary key and kept in a key
store apart from the data; ``delete_thread`` destroys it (crypto-shredding) and
:func:`rekey` re-wraps every data key under a new primary; :func:`seal` seals what an
existing store still holds in clear. The keys belong to the store
opened with them: two stores with different rings in one process each read their own data.
"""

from __future__ import annotations

from ._encryption import Encryption
from ._keyring import KeyManagementService, KeyRing
from ._rekey import RekeyReport, rekey
from ._seal import SealReport, seal

__all__ = [
    "Encryption",
    "KeyManagementService",
    "KeyRing",
    "RekeyReport",
    "SealReport",
    "rekey",
    "seal",
]
