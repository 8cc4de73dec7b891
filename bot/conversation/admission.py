"""What a survey request must pass before anything is stored, for every trigger alike.

Staff commands (Telegram, Slack), customer deep links, ``surveybot send``, the HTTP API and the
console all reach :meth:`Dispatcher.request`, which asks this module three questions:

- Is the context acceptable? (:func:`context_problem`: at most ``MAX_CONTEXT_KEYS`` keys of
  1–``MAX_KEY_LENGTH`` characters, values of at most ``MAX_VALUE_LENGTH`` characters.)
- Does an idempotency key already used belong to this very request? (:func:`same_request`:
  a key is bound to flow, platform, user and context; any other use is a conflict.)
- Is the customer inside the flow's throttle window? (:func:`throttle_window`,
  :func:`throttle_reason`.)

The checks are pure functions; :func:`thank_again` is the one reply a refused request makes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.chat import Address, DeliveryError, Prompt
from bot.conversation.runtime import Runtime
from bot.survey.engine import locale_for
from bot.survey.flow import Flow
from bot.survey.texts import text_for
from storage.base import SessionRecord

log = logging.getLogger(__name__)

MAX_CONTEXT_KEYS = 50
MAX_KEY_LENGTH = 64
MAX_VALUE_LENGTH = 1000
# triggered_by of a survey the customer asked for themselves (Telegram /start, console /start)
CUSTOMER_STARTED_SUFFIX = ":start"


class TriggerResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Literal["sent", "scheduled", "throttled", "failed"]
    session_id: str | None = None
    reason: str | None = None
    created: bool = True  # False when an idempotency key returned an earlier session


class InvalidContext(ValueError):
    """A context over the limits (see :func:`context_problem`)."""


class IdempotencyConflict(Exception):
    """An idempotency key reused for a different flow, customer or context."""

    def __init__(self, key: str, earlier: SessionRecord, *, same_customer: bool) -> None:
        what = "with another context" if same_customer else "for another request"
        super().__init__(
            f"idempotency key {key!r} was already used {what}: survey {earlier.id} of "
            f"{earlier.flow_id} to {earlier.platform}:{earlier.user_id}"
        )
        self.key = key
        self.earlier = earlier


def context_problem(context: Mapping[str, str] | None) -> str | None:
    """Why ``context`` cannot be stored, or None when it can."""
    items = dict(context or {})
    if len(items) > MAX_CONTEXT_KEYS:
        return f"context has {len(items)} keys; at most {MAX_CONTEXT_KEYS} are allowed"
    for key, value in items.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
            return f"context key {str(key)[:80]!r} must be 1 to {MAX_KEY_LENGTH} characters"
        if not isinstance(value, str):
            return f"context value of {key!r} must be text"
        if len(value) > MAX_VALUE_LENGTH:
            return (
                f"context value of {key!r} has {len(value)} characters; at most "
                f"{MAX_VALUE_LENGTH} are allowed"
            )
    return None


def _same_addressee(earlier: SessionRecord, flow_id: str, platform: str, user_id: str) -> bool:
    return (earlier.flow_id, earlier.platform, earlier.user_id) == (flow_id, platform, user_id)


def same_request(
    earlier: SessionRecord, flow_id: str, address: Address, context: Mapping[str, str] | None
) -> bool:
    """The session an idempotency key names was made by this request (same flow, platform,
    user and context): replaying it is safe. Anything else must be refused."""
    return _same_addressee(
        earlier, flow_id, address.platform, address.user_id
    ) and earlier.context == dict(context or {})


def throttle_window(flow: Flow, default: timedelta, per_flow: Mapping[str, timedelta]) -> timedelta:
    """The flow's window: ``surveys.throttle_per_flow`` in config.yaml, else the flow's own
    ``throttle:``, else ``surveys.throttle``. Zero turns the throttle off."""
    if flow.id in per_flow:
        return per_flow[flow.id]
    if flow.throttle is not None:
        return flow.throttle
    return default


def is_customer_started(triggered_by: str) -> bool:
    return triggered_by.endswith(CUSTOMER_STARTED_SUFFIX)


def human_duration(value: timedelta) -> str:
    """``30 days``, ``1 day 2 hours``, ``90 minutes`` -> words, no ``0:00:00``."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "0 seconds"
    parts = []
    for name, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if name == "week" and seconds % size:  # 10 days reads better than 1 week 3 days
            continue
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'s' if count != 1 else ''}")
    if seconds:
        parts.append(f"{seconds} second{'s' if seconds != 1 else ''}")
    return " ".join(parts)


def throttle_reason(
    address: Address, flow_id: str, last: datetime, now: datetime, window: timedelta
) -> str:
    """Why a request is throttled, with the right tense for a survey still to be sent."""
    who = f"{address.platform}:{address.user_id}"
    moment = last.replace(microsecond=0).isoformat()
    if last > now:
        said = f"{who} already has {flow_id!r} scheduled for {moment}"
    else:
        said = f"{who} was asked {flow_id!r} at {moment}"
    return f"{said}, within the throttle window of {human_duration(window)}"


def replay(
    session: SessionRecord,
    key: str | None,
    flow_id: str,
    address: Address,
    context: Mapping[str, str] | None,
) -> TriggerResult:
    """The earlier session of an idempotency key, if this request is the one that made it;
    raises IdempotencyConflict otherwise."""
    if key is not None and not same_request(session, flow_id, address, context):
        same_customer = (session.platform, session.user_id) == (address.platform, address.user_id)
        raise IdempotencyConflict(key, session, same_customer=same_customer)
    return TriggerResult(status=_status_of(session.status), session_id=session.id, created=False)


def _status_of(status: str) -> Literal["sent", "scheduled", "throttled", "failed"]:
    if status == "scheduled":
        return "scheduled"
    if status == "failed":
        return "failed"
    return "sent"


async def thank_again(
    runtime: Runtime, flow_id: str, address: Address, locale: str | None, key: str | None
) -> None:
    """A customer who asks for a survey they answered recently is thanked instead (once per
    request: a redelivered command is not thanked twice), in their language."""
    adapter = runtime.adapters.get(address.platform)
    if adapter is None:
        return
    flow = runtime.flow(flow_id)
    if locale is None:
        locale = await adapter.locale_of(address)
    lang = locale_for(flow, locale)
    text = text_for("already_told", lang, flow)
    if key and runtime.sender is not None:  # owed with the claim: sent after a crash too
        await runtime.owe_notice(address, text, lang, f"thanked:{key}")
        return
    if key and not await runtime.storage.claim_event(f"thanked:{key}", runtime.clock()):
        return
    try:
        await adapter.send(address, Prompt(kind="notice", session_id="", text=text, locale=lang))
    except DeliveryError as exc:
        log.warning("could not thank %s:%s again: %s", address.platform, address.user_id, exc)
