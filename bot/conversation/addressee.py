"""Who may answer a survey, and when a typed message counts as an answer.

A survey is addressed to one person; anyone else who taps its buttons is told whose it is. In a
shared support thread (Slack) people keep talking after the survey is posted there: a message
from the addressee counts only while the survey waits for typed text (the reason after a "No"),
never as a wrong answer to a button question.
"""

from __future__ import annotations

from bot.chat import Inbound
from bot.survey.flow import Flow
from bot.survey.texts import text_for
from storage.base import SessionRecord


def waits_for_text(flow: Flow, session: SessionRecord) -> bool:
    """The session is active and its current question is answered by typing (free text)."""
    current = session.state.current
    return (
        session.status == "active"
        and current is not None
        and flow.questions[current].type == "text"
    )


def not_for_you(flow: Flow, session: SessionRecord, lang: str) -> str:
    """What someone who taps another person's survey is told: whose survey it is, when the
    session knows the addressee's name."""
    if session.user_name:
        return text_for("not_for_you_named", lang, flow, {"name": session.user_name})
    return text_for("not_for_you", lang, flow)


def refusal(
    flow: Flow, session: SessionRecord, inbound: Inbound, lang: str
) -> tuple[str, str | None] | None:
    """``(outcome, notice)`` when what the person did is not an answer to this session: a tap
    or message by someone else (told whose survey it is), or talk in a support thread while a
    button question waits (nothing said). None when it may be an answer."""
    if inbound.user_id != session.user_id:
        return "wrong_user", not_for_you(flow, session, lang)
    if inbound.ambient and not waits_for_text(flow, session):
        return "ambient", None
    return None
