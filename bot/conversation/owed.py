"""What the bot owes a customer, as data: outbox rows (:class:`storage.base.OutboxMessage`) the
runtime commits with the state change that makes them owed, and the sender delivers.

A row's ``kind`` says what its JSON body is: ``settle`` (``{"inbound": ..., "settled": ...}``:
the tapped message shown with its answer, ``Adapter.settle``) or a :class:`bot.chat.Prompt`
kind (``question``, ``thanks``, ``notice``, ``reminder``: ``Adapter.send``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from bot import metrics
from bot.chat import Address, Inbound, Prompt, Settled
from bot.survey.engine import Step, label_of
from bot.survey.flow import Flow, localize, render
from bot.survey.prompts import question_prompt, thanks_prompt
from bot.survey.texts import text_for
from storage.base import OutboxMessage, SessionRecord, Storage


def owed_prompt(address: Address, prompt: Prompt, now: datetime) -> OutboxMessage:
    return OutboxMessage(address=address, kind=prompt.kind, body=prompt.model_dump_json(),
                         created_at=now, session_id=prompt.session_id or None)  # fmt: skip


def owed_settle(
    address: Address, inbound: Inbound, settled: Settled, now: datetime
) -> OutboxMessage:
    body = json.dumps({"inbound": inbound.model_dump(mode="json"),
                       "settled": settled.model_dump(mode="json")})  # fmt: skip
    return OutboxMessage(address=address, kind="settle", body=body, created_at=now)


def owed_for(
    flow: Flow, session: SessionRecord, step: Step, inbound: Inbound, now: datetime
) -> list[OutboxMessage]:
    """What an answer makes owed to the customer, in order: the tapped message settled
    (showing the choice), then the next question or the thanks."""
    assert step.answer is not None
    loc = session.state.locale
    owed: list[OutboxMessage] = []
    if inbound.kind == "tap":
        question = flow.questions[step.answer.question_index]
        shown = render(localize(question.text, loc, flow.fallback), session.state.context)
        answered = text_for(
            "answered", loc, flow, {"answer": label_of(flow, question, step.answer, loc)}
        )
        settled = Settled(question=shown, answer=answered)
        owed.append(owed_settle(session.address, inbound, settled, now))
    if step.outcome == "done":
        prompt = thanks_prompt(flow, step.state, session.id)
    else:
        mention = session.user_name if session.chat_id else None
        prompt = question_prompt(flow, step.state, session.id, mention=mention)
    owed.append(owed_prompt(session.address, prompt, now))
    return owed


async def record_prompted(
    storage: Storage,
    flow_for: Callable[[SessionRecord], Awaitable[Flow]],
    message: OutboxMessage,
    message_id: str | None,
    now: datetime,
) -> None:
    """A question went out. A survey's first delivered question makes it sent (``sent_at``:
    the platform accepted it; counted in ``surveybot_surveys_sent_total``); the session
    remembers the question as the last one the customer was shown (``prompted``: where they
    stopped, for drop-off), unless it moved on. The caller holds the session's lock; a commit
    of another worker meanwhile is a version conflict: read again and record again."""
    if message.kind not in ("question", "reminder") or message.session_id is None:
        return
    prompt = Prompt.model_validate_json(message.body)
    for _ in range(3):
        session = await storage.get_session(message.session_id)
        if session is None:
            return
        changes: dict[str, Any] = {}
        if session.sent_at is None:
            changes["sent_at"] = now
        index = session.state.current
        if index is not None and session.prompted != index:
            flow = await flow_for(session)
            if flow.questions[index].id == prompt.question_id:
                changes |= {"prompted": index, "prompt_message_id": message_id}
        if not changes:
            return
        if (await storage.update_session(session.id, session.version, **changes)).ok:
            if "sent_at" in changes:
                metrics.SENT.labels(session.platform, session.flow_id).inc()
            return
