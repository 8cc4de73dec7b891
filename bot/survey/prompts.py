"""Turn the engine's state into platform-neutral prompts. Pure."""

from __future__ import annotations

from bot.chat import Button, Prompt, encode_payload
from bot.survey.engine import SKIP_VALUE, SessionState
from bot.survey.flow import Ces, Choice, Flow, Nps, Question, Rating, YesNo, localize, render
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
    anchors = _anchors(flow, question, loc)
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
        rows=_rows(flow, question, session_id, index, loc),
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


def _rows(
    flow: Flow, q: Question, sid: str, index: int, loc: str
) -> tuple[tuple[Button, ...], ...]:
    if isinstance(q, YesNo):
        labels = {
            key: localize(q.labels[key], loc, flow.fallback)
            if q.labels and key in q.labels
            else text_for(key, loc, flow)
            for key in ("yes", "no")
        }
        return (
            (
                Button(label=labels["yes"], payload=_p(sid, index, "1")),
                Button(label=labels["no"], payload=_p(sid, index, "0")),
            ),
        )
    if isinstance(q, Rating | Nps | Ces):
        lo, hi = q.bounds()
        buttons = [Button(label=str(v), payload=_p(sid, index, str(v))) for v in range(lo, hi + 1)]
        if len(buttons) > 8:  # 0-10 in two rows: 0-5 and 6-10
            half = (len(buttons) + 1) // 2
            return (tuple(buttons[:half]), tuple(buttons[half:]))
        return (tuple(buttons),)
    if isinstance(q, Choice):
        return tuple(
            (Button(label=localize(o.text, loc, flow.fallback), payload=_p(sid, index, str(i))),)
            for i, o in enumerate(q.options)
        )
    return ()


def _anchors(flow: Flow, q: Question, loc: str) -> str:
    """Scale labels such as "1 = Very difficult · 7 = Very easy" under the question."""
    if not isinstance(q, Rating | Nps | Ces) or not q.labels:
        return ""
    parts = [f"{k} = {localize(v, loc, flow.fallback)}" for k, v in sorted(q.labels.items())]
    return " · ".join(parts)
