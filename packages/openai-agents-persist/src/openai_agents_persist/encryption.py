"""The SDK's ``EncryptedSession`` over a :class:`StoreSession`, with pops a wrong key cannot drain.

    session = EncryptedStoreSession(
        "user-1", StoreSession("user-1", store=store), encryption_key=key, ttl=600
    )
    await Runner.run(agent, "Hello", session=session)

Why it exists: ``EncryptedSession.pop_item`` authenticates an item before removing it only
when the session under it is the SDK's own ``SQLiteSession`` (it then runs the check inside
the SQLite transaction that deletes the row). Over any other session it pops, fails to
decrypt, drops the item and pops the next one, so a single ``pop_item`` with a wrong key
deletes the whole conversation (measured: 5 items of 5; over ``SQLiteSession`` it raises
``InvalidToken`` and keeps them). This subclass gives :class:`StoreSession` the SQLite
behaviour through :meth:`StoreSession.pop_item_checked`: an item that does not authenticate
raises ``InvalidToken`` (:class:`UnauthenticatedItemError`) and stays; an authentic item
whose TTL ran out is dropped and the next one tried; everything else is the SDK's class.
Needs the SDK's ``encrypt`` extra: ``pip install "openai-agents[encrypt]"``.
"""

from __future__ import annotations

from typing import Any, cast

from agents import RunContextWrapper, TResponseInputItem
from agents.extensions.memory import EncryptedSession
from cryptography.fernet import InvalidToken

from agent_persist.errors import AgentPersistError

from .items import is_encrypted_envelope
from .session import StoreSession

__all__ = ["EncryptedStoreSession", "UnauthenticatedItemError"]


class UnauthenticatedItemError(AgentPersistError, InvalidToken):
    """The newest item does not authenticate with the session's key; it was not removed.

    An ``InvalidToken`` too, as the SDK's ``EncryptedSession`` raises over ``SQLiteSession``:
    a wrong key, or an item changed outside the session.
    """


class EncryptedStoreSession(EncryptedSession):
    """``EncryptedSession`` whose ``pop_item`` authenticates before it removes, on any store.

    Args:
        session_id: The conversation; also the salt of the per-session key.
        underlying_session: The :class:`StoreSession` that stores the encrypted items.
        encryption_key: As for ``EncryptedSession``: a Fernet key or a high-entropy secret.
        ttl: Seconds an item stays readable; older ones are skipped (and dropped by pops).
        max_scan_items: As for ``EncryptedSession``: a bound on the items one read unwraps.
    """

    def __init__(
        self,
        session_id: str,
        underlying_session: StoreSession,
        encryption_key: str,
        ttl: int = 600,
        max_scan_items: int | None = None,
    ) -> None:
        if not isinstance(underlying_session, StoreSession):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(
                "underlying_session must be a StoreSession (wrap other sessions with the SDK's "
                f"EncryptedSession), got {type(underlying_session).__name__}"
            )
        super().__init__(
            session_id,
            cast("Any", underlying_session),
            encryption_key,
            ttl=ttl,
            max_scan_items=max_scan_items,
        )
        self._store_session = underlying_session

    async def pop_item(
        self, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> TResponseInputItem | None:
        """Remove and return the newest readable item, as over the SDK's ``SQLiteSession``.

        Items that are not encrypted envelopes and authentic items past their TTL are
        removed and skipped; the first item that does not authenticate stops the pop.

        Raises:
            UnauthenticatedItemError: The newest item does not authenticate with this key;
                nothing was removed by this call.
        """
        while True:
            stored = await self._store_session.pop_item_checked(self._authenticate, wrapper=wrapper)
            if not stored:
                return None
            item = self._unwrap(stored)
            if item is not None:
                return item

    def _authenticate(self, item: Any) -> None:
        """Check the token's signature, not its age, so expired items still drain."""
        if not is_encrypted_envelope(item):
            return
        payload = cast("dict[str, Any]", item)["payload"]
        try:
            if not isinstance(payload, str):
                raise InvalidToken
            self.cipher.extract_timestamp(payload.encode("utf-8"))
        except InvalidToken as exc:
            raise UnauthenticatedItemError(
                f"session {self.session_id!r}: the newest item does not authenticate with "
                "this encryption key (a wrong key, or an item changed outside the session); "
                "nothing was removed"
            ) from exc
