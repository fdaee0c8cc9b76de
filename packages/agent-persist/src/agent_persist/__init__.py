"""agent-persist: durable, versioned, migratable state for AI agents.

from agent_persist import Envelope, Producer, open_store

async with open_store("sqlite:///agents.db") as store:
    saved = await store.put(Envelope.create(kind="my.agent", schema_version=1,
                                            thread_id="t-1", payload=state,
                                            producer=Producer(package="my-app")))
"""

from importlib.metadata import version as _version

from ._json import JSON, canonical_json, fingerprint, json_diff
from .codecs import Codec, PayloadCodec, ZlibCodec, register_codec
from .drift import Change, DriftPolicy, config_appends
from .envelope import Envelope, Producer, Status, new_checkpoint_id
from .maintenance import (
    DryRunEntry,
    DryRunReport,
    HeadOutcome,
    MigrationReport,
    dry_run,
    migrate_store,
    saved_config,
)
from .migrations import FingerprintChange, Registry, default_registry, register
from .stores import BaseStore, CheckpointStore, Lease, MemoryStore, ThreadInfo, open_store
from .versions import ENVELOPE_FORMAT_VERSION, FORMAT_VERSIONS

__version__ = _version("agent-persist")

__all__ = [
    "ENVELOPE_FORMAT_VERSION",
    "FORMAT_VERSIONS",
    "JSON",
    "BaseStore",
    "Change",
    "CheckpointStore",
    "Codec",
    "DriftPolicy",
    "DryRunEntry",
    "DryRunReport",
    "Envelope",
    "FingerprintChange",
    "HeadOutcome",
    "Lease",
    "MemoryStore",
    "MigrationReport",
    "PayloadCodec",
    "Producer",
    "Registry",
    "Status",
    "ThreadInfo",
    "ZlibCodec",
    "__version__",
    "canonical_json",
    "config_appends",
    "default_registry",
    "dry_run",
    "fingerprint",
    "json_diff",
    "migrate_store",
    "new_checkpoint_id",
    "open_store",
    "register",
    "register_codec",
    "saved_config",
]
