"""Every Redis script registered on a client, for the store to run by name; one round trip each.

    scripts = Scripts(client)
    reply = await scripts.put(keys=[thread_key, index_key, lease_key], args=[...])

Each script is the Lua helpers of :mod:`._lua` plus its own body, kept with its concern:
:mod:`._checkpoints` (``PUT``, ``GET``, the listings, ``DELETE_THREAD``), :mod:`._logs`
(``APPEND``, ``READ``, ``TAIL``, ``POP``, ``CLEAR``), :mod:`._leases`, :mod:`._retention`
(``PRUNE``, ``PURGE``) and :mod:`._schema` (the layout upgrades). Keys follow :mod:`._keys`; a
thread's other keys are derived from its thread key (``KEYS[1]``) with fixed suffixes and
the hex of the log name, because the set of logs is only known inside the script.

Values cross the boundary as strings: Lua turns numbers into strings with ``%.17g``, which
keeps every integer below 2**53 exact, and times are built as digit strings for that reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._checkpoints import DELETE_THREAD, GET, LIST_CHECKPOINTS, LIST_THREADS, PUT
from ._leases import ACQUIRE_LEASE, RELEASE_LEASE, RENEW_LEASE
from ._logs import APPEND, CLEAR, POP, READ, TAIL
from ._retention import PRUNE, PURGE, PURGE_INDEX
from ._schema import MOVE_THREAD, SET_LAYOUT, UPGRADE_MIRRORS
from ._seal import REPLACE_VALUES, STORED_VALUES

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster
    from redis.commands.core import AsyncScript

__all__ = ["ALL_SCRIPTS", "Scripts"]

ALL_SCRIPTS = (
    PUT,
    APPEND,
    POP,
    CLEAR,
    READ,
    TAIL,
    GET,
    LIST_CHECKPOINTS,
    LIST_THREADS,
    PURGE,
    PURGE_INDEX,
    DELETE_THREAD,
    PRUNE,
    ACQUIRE_LEASE,
    RENEW_LEASE,
    RELEASE_LEASE,
)
"""The scripts of the ordinary operations, for ``setup()`` to load in one round trip (the
upgrade's scripts run once per store and load when used)."""


class Scripts:
    """The scripts registered on one client; redis-py loads each on first use if needed."""

    def __init__(self, client: Redis | RedisCluster) -> None:
        def load(source: str) -> AsyncScript:
            return client.register_script(source)

        self.put, self.append, self.pop = load(PUT), load(APPEND), load(POP)
        self.clear, self.read, self.tail = load(CLEAR), load(READ), load(TAIL)
        self.upgrade_mirrors, self.set_layout = load(UPGRADE_MIRRORS), load(SET_LAYOUT)
        self.move_thread, self.purge_index = load(MOVE_THREAD), load(PURGE_INDEX)
        self.get, self.list_checkpoints = load(GET), load(LIST_CHECKPOINTS)
        self.list_threads, self.purge = load(LIST_THREADS), load(PURGE)
        self.delete_thread, self.prune = load(DELETE_THREAD), load(PRUNE)
        self.acquire_lease = load(ACQUIRE_LEASE)
        self.renew_lease = load(RENEW_LEASE)
        self.release_lease = load(RELEASE_LEASE)
        self.stored_values, self.replace_values = load(STORED_VALUES), load(REPLACE_VALUES)
