"""What staff and links ask for, decided once for every platform.

- :func:`split_words` and :func:`parse_arguments`: the arguments of ``/survey`` (Telegram and
  Slack) and of ``--ctx`` (the CLI): positional words and ``key=value`` context, one rule for
  what a context item is.
- :func:`staff_reply`: what staff read after a trigger (sent, queued, throttled, failed), in
  their language, from the shared strings of :mod:`bot.survey.texts`.
- :func:`start_from_link`: ``/start <flow id | invite token>`` (a deep link): a redelivered
  start, a flow id, a one-use invite, or neither.

Platforms only pull the text and the people out of their payloads and show the answer.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from bot.chat import Address
from bot.conversation.dispatch import Dispatcher, TriggerResult
from bot.conversation.runtime import UnknownFlow
from bot.survey.flow import ID_PATTERN
from bot.survey.texts import outside_text

_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


class BadArguments(ValueError):
    """Arguments that cannot be read: ``item`` is the offending part, ``why`` says what is
    wrong with it ("quotes": unbalanced quotes; "context": a key=value without a key)."""

    def __init__(self, item: str, why: Literal["quotes", "context"]) -> None:
        shown = item if len(item) <= 80 else item[:79] + "…"  # replies never echo a 20 KB line
        super().__init__(f"{why}: {shown}")
        self.item = shown
        self.why = why


@dataclass(frozen=True)
class Arguments:
    words: tuple[str, ...] = ()  # positional: flow id, the customer (as the platform names them)
    context: Mapping[str, str] = field(default_factory=dict)


def split_words(text: str) -> list[str]:
    """Shell-like words; quotes group words, typographic quotes (which phones type) count as
    plain ones. Raises BadArguments("quotes") for unbalanced quotes."""
    line = text.translate(_SMART_QUOTES).strip()
    try:
        return shlex.split(line)
    except ValueError:
        raise BadArguments(line, "quotes") from None


def parse_arguments(items: Iterable[str]) -> Arguments:
    """Words and ``key=value`` context: an item with "=" is context (the value may contain
    "=" too), and needs a key. How many keys and how long they may be is the dispatcher's
    decision for every trigger alike (:func:`bot.conversation.admission.context_problem`)."""
    words: list[str] = []
    context: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            words.append(item)
            continue
        key = key.strip()
        if not key:
            raise BadArguments(item, "context")
        context[key] = value
    return Arguments(tuple(words), context)


_REPLY_KEYS = {
    "sent": "staff_sent",
    "scheduled": "staff_queued",
    "throttled": "staff_throttled",
    "failed": "staff_failed",
}


def staff_reply(result: TriggerResult, flow_id: str, who: str, language: str | None) -> str:
    """What staff read after asking for a survey, in their ``language`` (a platform's code such
    as "el-GR"; English when unknown): ``who`` is the customer as the platform shows them."""
    params = {"flow": flow_id, "who": who, "reason": result.reason or ""}
    return outside_text(_REPLY_KEYS[result.status], language, params)


def not_staff(platform: Literal["telegram", "slack"], user_id: str, language: str | None) -> str:
    """The refusal for someone not listed under ``staff.<platform>``, naming the ID to add."""
    shown = {"telegram": "Telegram", "slack": "Slack"}[platform]
    return outside_text("not_staff", language, {"platform": shown, "id": user_id, "key": platform})


def unknown_flow(flow_id: str, flows: Iterable[str], language: str | None) -> str:
    """There is no flow ``flow_id``; the ones there are, in the reader's ``language``."""
    listed = ", ".join(sorted(flows)) or "—"
    return outside_text("unknown_flow", language, {"flow": flow_id, "flows": listed})


# ---- /start <flow id | invite token> ------------------------------------------------------
StartOutcome = Literal["started", "repeated", "unknown_flow", "invalid_link"]


@dataclass(frozen=True)
class Started:
    outcome: StartOutcome
    flow_id: str | None = None
    result: TriggerResult | None = None


async def start_from_link(
    dispatcher: Dispatcher,
    arg: str,
    address: Address,
    *,
    triggered_by: str,
    locale: str | None,
    idempotency_key: str,
) -> Started:
    """Start what a deep link names: a loaded flow by its id, or the flow of a one-use invite
    token (consumed). A redelivered start (its idempotency key has a session) is "repeated"
    and changes nothing; a removed flow or an unknown id is "unknown_flow"; anything else is
    "invalid_link" (a used or made-up token)."""
    storage = dispatcher.storage
    if await storage.session_by_key(idempotency_key) is not None:
        return Started("repeated")
    context: dict[str, str] = {}
    if arg in dispatcher.runtime.registry.ids():
        flow_id = arg
    else:
        invite = await storage.consume_invite(arg, dispatcher.clock())
        if invite is None:
            looks_like_flow = re.match(ID_PATTERN, arg) is not None
            return Started("unknown_flow" if looks_like_flow else "invalid_link", arg)
        flow_id, context = invite
    try:
        result = await dispatcher.request(
            flow_id, address, context, triggered_by=triggered_by, locale=locale,
            idempotency_key=idempotency_key, throttle=False,
        )  # fmt: skip
    except UnknownFlow:  # an invite for a flow that was removed since
        return Started("unknown_flow", flow_id)
    return Started("started", flow_id, result)
