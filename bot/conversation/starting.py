"""Beginning a survey: the session stored, its first question sent.

:class:`Starting` is the half of :class:`bot.conversation.runtime.Runtime` that begins
surveys (``create_session``, ``deliver``, ``start_survey``); the runtime proper handles what
customers send back. Split out so each stays small; it uses only the runtime's flows, storage,
adapters, clock and session locks.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot import metrics
from bot.chat import Adapter, Address, DeliveryError, Prompt
from bot.survey.engine import begin
from bot.survey.prompts import question_prompt
from bot.survey.texts import text_for
from storage.base import SessionRecord, Storage

if TYPE_CHECKING:
    from bot.survey.flow import Flow

Addressee = tuple[str, str, str | None]


def new_session_id() -> str:
    """12 URL-safe characters (72 random bits): short enough for callback_data, unguessable."""
    return secrets.token_urlsafe(9)


class Starting:
    """Mixed into :class:`~bot.conversation.runtime.Runtime`, which provides these."""

    storage: Storage
    adapters: dict[str, Adapter]
    clock: Callable[[], datetime]
    default_expiry: timedelta
    _delivering: dict[Addressee, asyncio.Event]

    if TYPE_CHECKING:

        def flow(self, flow_id: str) -> Flow: ...

        async def flow_for(self, session: SessionRecord) -> Flow: ...

        def _adapter(self, platform: str) -> Adapter: ...

        def exclusive(self, session_id: str) -> AbstractAsyncContextManager[None]: ...

    async def create_session(
        self,
        flow_id: str,
        address: Address,
        context: Mapping[str, str] | None = None,
        *,
        triggered_by: str = "unknown",
        locale: str | None = None,
        idempotency_key: str | None = None,
        send_at: datetime | None = None,
    ) -> tuple[SessionRecord, bool]:
        """Store a new session (status ``scheduled``); ``(session, created)``. With an
        idempotency key already used, the existing session comes back with created=False."""
        flow = self.flow(flow_id)
        await self.storage.save_flow_version(flow.id, flow.version, flow.to_json())
        if locale is None and address.platform in self.adapters:
            locale = await self.adapters[address.platform].locale_of(address)
        step = begin(flow, locale, dict(context or {}))
        now = self.clock()
        record = SessionRecord(
            id=new_session_id(),
            flow_id=flow.id,
            flow_version=flow.version,
            platform=address.platform,
            user_id=address.user_id,
            chat_id=address.chat_id,
            user_name=address.user_name,
            thread_id=address.thread_id,
            locale=step.state.locale,
            context=step.state.context,
            triggered_by=triggered_by,
            status="scheduled",
            state=step.state,
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
            send_at=send_at,
            expires_at=max(now, send_at or now) + (flow.expires_after or self.default_expiry),
        )
        stored = await self.storage.create_session(record)
        return stored, stored.id == record.id

    async def deliver(self, session: SessionRecord, *, reminder: bool = False) -> SessionRecord:
        """Send the session's current question; mark it active. Raises DeliveryError."""
        adapter = self._adapter(session.platform)
        flow = await self.flow_for(session)
        if session.state.current is None:
            raise ValueError(f"session {session.id} has no question to ask")
        prompt = question_prompt(
            flow,
            session.state,
            session.id,
            mention=session.user_name if session.chat_id else None,
            kind="reminder" if reminder else "question",
        )
        if reminder:
            prompt = prompt.model_copy(
                update={"hint": text_for("reminder", session.state.locale, flow)}
            )
        first = session.status == "scheduled"
        addressee = (session.platform, session.user_id, session.chat_id)
        if not first:
            return await self._send(adapter, session, prompt, reminder)
        # Until the session is marked active, a reply that races the first question waits.
        waiting = self._delivering.setdefault(addressee, asyncio.Event())
        try:
            return await self._send(adapter, session, prompt, reminder)
        finally:
            waiting.set()
            if self._delivering.get(addressee) is waiting:
                del self._delivering[addressee]

    async def _send(
        self, adapter: Adapter, session: SessionRecord, prompt: Prompt, reminder: bool
    ) -> SessionRecord:
        try:
            sent = await adapter.send(session.address, prompt)
        except DeliveryError as exc:
            metrics.SEND_FAILURES.labels(
                session.platform, "permanent" if exc.permanent else "temporary"
            ).inc()
            raise
        now = self.clock()
        changes: dict[str, object] = {
            "prompted": session.state.current,
            "prompt_message_id": sent.message_id,
        }
        if session.status == "scheduled":
            changes |= {"status": "active", "sent_at": now}
            metrics.SENT.labels(session.platform, session.flow_id).inc()
        if reminder:
            changes["reminded"] = True
        result = await self.storage.update_session(session.id, session.version, **changes)
        if not result.ok:  # another worker moved the session meanwhile: read what it wrote
            fresh = await self.storage.get_session(session.id)
            assert fresh is not None
            return fresh
        return session.model_copy(update={**changes, "version": result.version})

    async def start_survey(
        self,
        flow_id: str,
        address: Address,
        context: Mapping[str, str] | None = None,
        *,
        triggered_by: str = "unknown",
        locale: str | None = None,
        idempotency_key: str | None = None,
    ) -> SessionRecord:
        """Create and send now. The same idempotency key never sends twice."""
        session, created = await self.create_session(
            flow_id, address, context, triggered_by=triggered_by, locale=locale,
            idempotency_key=idempotency_key,
        )  # fmt: skip
        if not created or session.status != "scheduled":
            return session
        async with self.exclusive(session.id):
            return await self.deliver(session)
