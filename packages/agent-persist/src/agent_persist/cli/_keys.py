"""``--keys-env`` and ``--key-store``: open an encrypted store with the key ring of the environment.

``show``, ``diff`` and ``verify`` take them to open sealed data; without them, sealed data
is reported as such ("sealed by an encrypted store"). ``rekey`` and ``seal`` always use a
key ring; ``export`` takes them only with ``--decrypt`` (exports stay sealed otherwise), and
``import`` to open sealed exports and seal what it writes.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import click

from ._app import EXIT_USAGE, StoreOptions, fail

__all__ = ["DEFAULT_PREFIX", "key_options", "with_keys"]

DEFAULT_PREFIX = "AGENT_PERSIST_"


def with_keys(
    options: StoreOptions, prefix: str, key_store: str | None
) -> tuple[StoreOptions, str]:
    """``options`` opening the store with the environment's key ring; and the primary key id."""
    from ..crypto import Encryption, KeyRing

    try:
        ring = KeyRing.from_env(prefix)
    except ValueError as exc:
        raise fail(f"key ring: {exc}", EXIT_USAGE) from exc
    extra: dict[str, Any] = {
        **options.config.store_options,
        "encryption": Encryption(ring, key_store=key_store),
    }
    config = dataclasses.replace(options.config, store_options=extra)
    return dataclasses.replace(options, config=config), ring.primary_key_id


def key_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator (below ``@store_options``): add ``--keys-env`` and ``--key-store``."""

    @click.option(
        "--keys-env",
        "keys_prefix",
        default=None,
        help="Open sealed data with the key ring of the environment: PREFIXKEY_<ID> (base64), "
        f"PREFIXPRIMARY_KEY; e.g. --keys-env {DEFAULT_PREFIX}",
    )
    @click.option(
        "--key-store",
        default=None,
        help="URL of the key store, if not the store's own (namespace <namespace>.keys).",
    )
    @functools.wraps(command)
    def wrapper(
        options: StoreOptions, keys_prefix: str | None, key_store: str | None, **kwargs: Any
    ) -> Any:
        if keys_prefix is not None:
            options, _ = with_keys(options, keys_prefix, key_store)
        elif key_store is not None:
            raise click.UsageError("--key-store needs --keys-env")
        return command(options=options, **kwargs)

    return wrapper
