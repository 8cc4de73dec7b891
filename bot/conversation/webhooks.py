"""Signed outgoing webhooks: the ``webhooks:`` config section, the events, the signature.

An endpoint subscribes to event types; each event it subscribes to becomes one outbox row in
the ``webhook`` lane, committed in the same transaction as the answer that caused it
(:meth:`WebhookEvents.owed`), and :mod:`bot.conversation.webhook_delivery` posts it. The row's
address is the customer's (so ``surveybot erase`` removes it) with ``chat_id``
``webhook:<event id>:<endpoint>``: every delivery is its own outbox "chat", so one failing
event never holds up another.

Body (JSON): ``{"id": "evt_...", "type": "answer.recorded", "created": <unix seconds>,
"data": {...}}``. Header ``Surveybot-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 over ``f"{t}.{body}"`` with the endpoint's secret, read from
``SURVEYBOT_WEBHOOK_SECRET_<NAME>`` (the same scheme as Stripe's ``Stripe-Signature``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.chat import Address
from bot.survey.engine import Answer, Step
from bot.survey.flow import Duration
from storage.base import Followup, OutboxMessage, SessionRecord

EventType = Literal["answer.recorded", "survey.completed", "survey.expired", "followup.updated"]
EVENT_TYPES: tuple[str, ...] = (
    "answer.recorded", "survey.completed", "survey.expired", "followup.updated"
)  # fmt: skip
HEADER = "Surveybot-Signature"
KIND = "webhook"


def secret_variable(name: str) -> str:
    return f"SURVEYBOT_WEBHOOK_SECRET_{name.upper()}"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Section):
    url: str
    events: list[EventType] = Field(min_length=1)
    flows: list[str] | None = None  # only these flows' events (default: every flow)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL with a host")
        return url


class WebhooksConfig(_Section):
    """``webhooks:`` in config.yaml. ``retry_for``: how long a failing delivery is retried
    (exponential backoff from ``first_retry`` up to ``max_wait``) before it is dead-lettered."""

    endpoints: dict[str, Endpoint] = Field(default_factory=dict)
    retry_for: Duration = timedelta(days=1)
    first_retry: Duration = timedelta(seconds=10)
    max_wait: Duration = timedelta(hours=1)
    timeout: Duration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _secrets(self) -> WebhooksConfig:
        for name in self.endpoints:
            if not name.replace("_", "").isalnum() or not name.isascii() or len(name) > 24:
                raise ValueError(f"endpoint name {name!r}: use up to 24 letters, digits, _")
            if not os.environ.get(secret_variable(name)):
                raise ValueError(
                    f"endpoints.{name}: no secret: set {secret_variable(name)} in the environment"
                )
        return self

    def secret(self, name: str) -> bytes:
        return os.environ.get(secret_variable(name), "").encode()

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed delivery: doubling, capped."""
        wait: timedelta = self.first_retry * (2 ** min(max(attempts - 1, 0), 30))
        return min(wait, self.max_wait)


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Surveybot-Signature`` header value."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse old timestamps."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    fresh = abs(now - timestamp) <= tolerance
    return fresh and hmac.compare_digest(expected, fields.get("v1", ""))


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


class WebhookEvents:
    """Which outbox rows a committed change owes the configured endpoints (pure: no I/O)."""

    def __init__(self, config: WebhooksConfig) -> None:
        self.config = config

    def owed(
        self,
        session: SessionRecord,
        now: datetime,
        *,
        answer: Answer | None = None,
        status: str | None = None,
    ) -> list[OutboxMessage]:
        """Rows for an answer just committed and/or the session's new status."""
        base = _session_data(session)
        events: list[tuple[str, dict[str, object]]] = []
        if answer is not None:
            events.append(("answer.recorded", base | {"answer": _answer_data(answer)}))
        if status in ("completed", "expired"):
            events.append((f"survey.{status}", base))
        return [
            row for kind, data in events
            for row in self._rows(kind, data, session.address, session.flow_id, session.id, now)
        ]  # fmt: skip

    def followup_updated(
        self, followup: Followup, change: str, now: datetime
    ) -> list[OutboxMessage]:
        """Rows for a follow-up change (``owned``, ``resolved``, ``noted``), to commit with it;
        ``followup`` as it is after the change."""
        data = {
            "change": change,
            "followup": followup.model_dump(mode="json", exclude={"change_id"}),
        }
        customer = Address(platform=followup.platform, user_id=followup.user_id)
        return self._rows("followup.updated", data, customer, followup.flow_id,
                          followup.session_id, now)  # fmt: skip

    def _rows(
        self,
        kind: str,
        data: Mapping[str, object],
        customer: Address,
        flow_id: str,
        session_id: str,
        now: datetime,
    ) -> list[OutboxMessage]:
        event_id = new_event_id()
        event = {"id": event_id, "type": kind, "created": int(now.timestamp()), "data": data}
        rows = []
        for name, endpoint in self.config.endpoints.items():
            if kind not in endpoint.events:
                continue
            if endpoint.flows is not None and flow_id not in endpoint.flows:
                continue
            address = customer.model_copy(
                update={"chat_id": f"webhook:{event_id}:{name}", "user_name": None}
            )
            body = json.dumps({"endpoint": name, "event": event}, ensure_ascii=False)
            rows.append(OutboxMessage(address=address, kind=KIND, body=body, created_at=now,
                                      lane="webhook", session_id=session_id))  # fmt: skip
        return rows


def _session_data(session: SessionRecord) -> dict[str, object]:
    return {
        "session_id": session.id, "flow_id": session.flow_id,
        "flow_version": session.flow_version, "platform": session.platform,
        "user_id": session.user_id, "chat_id": session.chat_id, "locale": session.locale,
        "context": dict(session.context), "triggered_by": session.triggered_by,
    }  # fmt: skip


def _answer_data(answer: Answer) -> dict[str, object]:
    return answer.model_dump(mode="json")


def webhook_rows(
    events: WebhookEvents | None, session: SessionRecord, step: Step, now: datetime
) -> list[OutboxMessage]:
    """The rows an answer (``step``) owes, for the runtime to commit with it."""
    if events is None or step.answer is None:
        return []
    status = "completed" if step.outcome == "done" else None
    return events.owed(session, now, answer=step.answer, status=status)
