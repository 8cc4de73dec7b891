"""Turn the engine's state into platform-neutral prompts. Pure; the buttons and the line of
scale labels come from the question's own type (:mod:`bot.survey.questions`)."""

from __future__ import annotations

from bot.chat import Button, Prompt, encode_payload
from bot.survey.engine import SKIP_VALUE, SessionState
from bot.survey.flow import Flow, localize, render
from bot.survey.questions import kind_of
from bot.survey.texts import text_for


def question_prompt(
    flow: Flow,
    state: SessionState,
    session_id: str,
    *,
    hint: str | None = None,
    mention: str | None = None,
    kind: str = "question",
) -> Prompt:
    assert state.current is not None
    index = state.current
    question = flow.questions[index]
    loc = state.locale
    text = render(localize(question.text, loc, flow.fallback), state.context)
    behaviour = kind_of(question)
    anchors = behaviour.anchors(flow, question, loc)
    if anchors:
        text = f"{text}\n{anchors}"
    skip = None
    if question.optional:  # free-text questions get a Skip button too (Slack, Telegram)
        skip = Button(label=text_for("skip", loc, flow), payload=_p(session_id, index, SKIP_VALUE))
    return Prompt(
        kind="question" if kind == "question" else "reminder",
        session_id=session_id,
        question_id=question.id,
        text=text,
        rows=behaviour.buttons(flow, question, loc, lambda value: _p(session_id, index, value)),
        skip=skip,
        hint=hint,
        mention=mention,
        locale=loc,
    )


def thanks_prompt(flow: Flow, state: SessionState, session_id: str) -> Prompt:
    loc = state.locale
    if flow.thanks is not None:
        text = render(localize(flow.thanks, loc, flow.fallback), state.context)
    else:
        text = text_for("thanks", loc, flow, state.context)
    return Prompt(kind="thanks", session_id=session_id, text=text, locale=loc)


def _p(session_id: str, index: int, value: str) -> str:
    return encode_payload(session_id, index, value)
