"""The survey state machine. Pure: no I/O, no clock, no platform.

``begin(flow, locale, context)`` gives the first step; ``advance(flow, state, reply)`` takes a
reply (a tapped button value, typed text or /skip) and gives the next step. A step either asks
a question (``ask``), ends the survey (``done``), refuses invalid input with a hint and the same
question (``invalid``), or refuses a tap that does not belong to the current question
(``stale``: already answered; ``forged``: a value no button ever carried).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.survey.flow import Flow, Question
from bot.survey.questions import kind_of
from bot.survey.texts import primary_language, text_for

AnswerValue = int | str | None
SKIP_VALUE = "skip"  # the value a Skip button's payload carries
SKIP_COMMAND = "/skip"  # what a customer types to skip
SKIP_WORD = "skip"  # typed without the slash: a skip only where skipping is allowed


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SessionState(_Frozen):
    locale: str
    context: dict[str, str] = Field(default_factory=dict)
    answers: dict[str, AnswerValue] = Field(default_factory=dict)
    current: int | None = None  # index of the question being asked; None when done
    asked: int = 0  # how many questions were shown (for drop-off)

    @property
    def done(self) -> bool:
        return self.current is None


class Reply(_Frozen):
    kind: Literal["tap", "text", "skip"]
    question_index: int | None = None  # taps name the question they belong to
    value: str | None = None  # tap value or typed text


class Answer(_Frozen):
    """One recorded answer. Scales and yes/no (1 = yes) go in ``value``; a choice's option id
    in ``option``; free text in ``text``. A skipped optional question has all three None."""

    question_id: str
    question_index: int
    metric: str
    value: int | None = None
    option: str | None = None
    text: str | None = None
    skipped: bool = False
    scale_min: int | None = None
    scale_max: int | None = None


class Step(_Frozen):
    outcome: Literal["ask", "done", "invalid", "stale", "forged"]
    state: SessionState
    answer: Answer | None = None
    hint: str | None = None  # string key in bot.survey.texts
    hint_params: dict[str, int] = Field(default_factory=dict)


def locale_for(flow: Flow, requested: str | None) -> str:
    """Primary subtag of the customer's language if the flow has it, else its first locale."""
    if requested and (primary := primary_language(requested)) in flow.locales:
        return primary
    return flow.fallback


def next_visible(flow: Flow, answers: dict[str, AnswerValue], after: int) -> int | None:
    for i in range(after + 1, len(flow.questions)):
        if flow.questions[i].visible(answers):
            return i
    return None


def begin(flow: Flow, locale: str | None, context: dict[str, str] | None = None) -> Step:
    first = next_visible(flow, {}, -1)
    state = SessionState(
        locale=locale_for(flow, locale),
        context=dict(context or {}),
        current=first,
        asked=0 if first is None else 1,
    )
    return Step(outcome="ask" if first is not None else "done", state=state)


def advance(flow: Flow, state: SessionState, reply: Reply) -> Step:
    if state.current is None:
        return Step(outcome="stale", state=state)
    index = state.current
    question = flow.questions[index]
    if reply.kind == "tap" or reply.question_index is not None:
        # A button names the question it belongs to; an earlier one was already answered.
        if reply.question_index != index:
            if reply.question_index is not None and 0 <= reply.question_index < index:
                return Step(outcome="stale", state=state)
            return Step(outcome="forged", state=state)
    if asks_to_skip(question, reply):
        if not question.optional:
            return _invalid(state, "hint_required")
        return _record(flow, state, index, question, None)
    kind = kind_of(question)
    if reply.kind == "tap":
        parsed = kind.from_tap(question, reply.value or "")
        if parsed is None:
            return Step(outcome="forged", state=state)
        return _record(flow, state, index, question, parsed)
    typed = (reply.value or "").strip()
    parsed = kind.from_text(flow, question, typed)
    if parsed is None:
        return _invalid(state, *kind.hint(question, typed))
    return _record(flow, state, index, question, parsed)


def asks_to_skip(question: Question, reply: Reply) -> bool:
    """The one place that decides a reply means "skip this question": the Skip button (a tap
    carrying ``SKIP_VALUE``), a platform's own /skip command (``kind="skip"``), or the typed
    text ``/skip``; the bare word "skip" too, but only where skipping is allowed (elsewhere it
    may be a free-text answer)."""
    if reply.kind == "skip":
        return True
    if reply.kind == "tap":
        return reply.value == SKIP_VALUE
    typed = (reply.value or "").strip().casefold()
    return typed == SKIP_COMMAND or (typed == SKIP_WORD and question.optional)


def _invalid(state: SessionState, key: str, params: dict[str, int] | None = None) -> Step:
    return Step(outcome="invalid", state=state, hint=key, hint_params=params or {})


def _record(
    flow: Flow, state: SessionState, index: int, question: Question, parsed: int | str | None
) -> Step:
    answer = _answer(question, index, parsed)
    stored: AnswerValue = getattr(answer, kind_of(question).field)
    answers = {**state.answers, question.id: stored}
    following = next_visible(flow, answers, index)
    new_state = state.model_copy(
        update={
            "answers": answers,
            "current": following,
            "asked": state.asked + (1 if following is not None else 0),
        }
    )
    return Step(outcome="ask" if following is not None else "done", state=new_state, answer=answer)


def _answer(question: Question, index: int, parsed: int | str | None) -> Answer:
    kind = kind_of(question)
    base: dict[str, object] = {
        "question_id": question.id, "question_index": index, "metric": question.metric,
    }  # fmt: skip
    scale = kind.scale(question)
    if scale is not None:
        base |= {"scale_min": scale[0], "scale_max": scale[1]}
    if parsed is None:
        return Answer.model_validate(base | {"skipped": True})
    value = parsed if kind.field != "value" else int(parsed)
    return Answer.model_validate(base | {kind.field: value})


def label_of(flow: Flow, question: Question, answer: Answer, locale: str) -> str:
    """How a recorded answer reads back to the customer (for the settled message)."""
    if answer.skipped:
        return text_for("skipped", locale, flow)
    kind = kind_of(question)
    return kind.label(flow, question, getattr(answer, kind.field), locale)
