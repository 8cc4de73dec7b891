"""What each question type does with answers, one class per type (as Rasa gives each flow
step its own class): which buttons it offers, how it reads a tapped value or typed text, what
hint a wrong answer gets, how a recorded answer reads back. Pure.

The flow models (:mod:`bot.survey.flow`) are the data admins write; :func:`kind_of` gives the
behaviour for one of them, so the engine and the prompt builder never ask what type a question
is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

from bot.chat import Button
from bot.survey.flow import (
    Ces,
    Choice,
    Flow,
    FreeText,
    Nps,
    Question,
    Rating,
    Text,
    YesNo,
    localize,
)
from bot.survey.texts import BUILTIN, NO_WORDS, YES_WORDS, text_for

Parsed = int | str  # a scale value or yes/no as 1/0, a choice's option id, free text
Rows = tuple[tuple[Button, ...], ...]
Payload = Callable[[str], str]  # a button value -> the button's payload
Q = TypeVar("Q", YesNo, Rating, Nps, Ces, Choice, FreeText)


class QuestionKind(Generic[Q]):
    """The behaviour shared by default; each type overrides what it does differently."""

    field: Literal["value", "option", "text"] = "value"  # where its Answer keeps the answer

    def scale(self, question: Q) -> tuple[int, int] | None:
        """The bounds recorded with each answer (for scores), if the type has a scale."""
        return None

    def from_tap(self, question: Q, value: str) -> Parsed | None:
        """A tapped button's value as an answer; None for a value no button carries."""
        return None

    def from_text(self, flow: Flow, question: Q, typed: str) -> Parsed | None:
        """Typed text as an answer; None when it is not one."""
        return None

    def hint(self, question: Q, typed: str) -> tuple[str, dict[str, int]]:
        """The string key (and its parameters) that tells a customer what would do."""
        return "hint_text", {}

    def buttons(self, flow: Flow, question: Q, locale: str, payload: Payload) -> Rows:
        return ()

    def anchors(self, flow: Flow, question: Q, locale: str) -> str:
        """A line under the question, such as "1 = Very difficult · 7 = Very easy"."""
        return ""

    def label(self, flow: Flow, question: Q, stored: Parsed | None, locale: str) -> str:
        """How a recorded answer reads back to the customer."""
        return str(stored)


class YesNoKind(QuestionKind[YesNo]):
    """Yes = 1, No = 0; typed yes/no words in any shipped language or the flow's labels."""

    def scale(self, question: YesNo) -> tuple[int, int]:
        return 0, 1

    def from_tap(self, question: YesNo, value: str) -> Parsed | None:
        number = number_in(value)
        return number if number in (0, 1) else None

    def from_text(self, flow: Flow, question: YesNo, typed: str) -> Parsed | None:
        folded = typed.casefold()
        if folded in YES_WORDS or folded in self._names(question, "yes"):
            return 1
        if folded in NO_WORDS or folded in self._names(question, "no"):
            return 0
        return None

    def hint(self, question: YesNo, typed: str) -> tuple[str, dict[str, int]]:
        return "hint_yes_no", {}

    def buttons(self, flow: Flow, question: YesNo, locale: str, payload: Payload) -> Rows:
        yes, no = (self._word(flow, question, key, locale) for key in ("yes", "no"))
        return ((Button(label=yes, payload=payload("1")), Button(label=no, payload=payload("0"))),)

    def label(self, flow: Flow, question: YesNo, stored: Parsed | None, locale: str) -> str:
        return self._word(flow, question, "yes" if stored == 1 else "no", locale)

    @staticmethod
    def _word(flow: Flow, question: YesNo, key: Literal["yes", "no"], locale: str) -> str:
        if question.labels and key in question.labels:
            return localize(question.labels[key], locale, flow.fallback)
        return text_for(key, locale, flow)

    @staticmethod
    def _names(question: YesNo, key: Literal["yes", "no"]) -> set[str]:
        names = {fold(v) for v in BUILTIN[key].values()}
        if question.labels and key in question.labels:
            names |= {fold(v) for v in variants(question.labels[key])}
        return names


_ScaleQ = TypeVar("_ScaleQ", Rating, Nps, Ces)


class _ScaleKind(QuestionKind[_ScaleQ]):
    """A number between the question's bounds, tapped or typed, or one of its labels typed;
    0–10 (more than 8 buttons) comes in two rows."""

    def scale(self, question: _ScaleQ) -> tuple[int, int]:
        return question.bounds()

    def from_tap(self, question: _ScaleQ, value: str) -> Parsed | None:
        lo, hi = question.bounds()
        number = number_in(value)
        return number if number is not None and lo <= number <= hi else None

    def from_text(self, flow: Flow, question: _ScaleQ, typed: str) -> Parsed | None:
        number = self.from_tap(question, typed)
        if number is not None:
            return number
        folded = typed.casefold()
        for key, label in (question.labels or {}).items():
            if folded in {fold(v) for v in variants(label)}:
                return key
        return None

    def hint(self, question: _ScaleQ, typed: str) -> tuple[str, dict[str, int]]:
        lo, hi = question.bounds()
        return "hint_scale", {"min": lo, "max": hi}

    def buttons(self, flow: Flow, question: _ScaleQ, locale: str, payload: Payload) -> Rows:
        lo, hi = question.bounds()
        buttons = [Button(label=str(v), payload=payload(str(v))) for v in range(lo, hi + 1)]
        if len(buttons) > 8:  # 0-10 in two rows: 0-5 and 6-10
            half = (len(buttons) + 1) // 2
            return (tuple(buttons[:half]), tuple(buttons[half:]))
        return (tuple(buttons),)

    def anchors(self, flow: Flow, question: _ScaleQ, locale: str) -> str:
        labels = sorted((question.labels or {}).items())
        return " · ".join(f"{k} = {localize(v, locale, flow.fallback)}" for k, v in labels)


class RatingKind(_ScaleKind[Rating]):
    """``min``..``max`` (default 1–5): CSAT top-2-box."""


class NpsKind(_ScaleKind[Nps]):
    """0–10: Net Promoter Score."""


class CesKind(_ScaleKind[Ces]):
    """1–7, 7 = very easy: Customer Effort Score."""


class ChoiceKind(QuestionKind[Choice]):
    """One option per row; a button carries the option's position, typed text may be its
    number (from 1), its id or its text in any language; the answer is the option's id."""

    field = "option"

    def from_tap(self, question: Choice, value: str) -> Parsed | None:
        number = number_in(value)
        if number is None or number >= len(question.options):
            return None
        return question.options[number].id

    def from_text(self, flow: Flow, question: Choice, typed: str) -> Parsed | None:
        number = number_in(typed)
        if number is not None and 1 <= number <= len(question.options):
            return question.options[number - 1].id
        folded = typed.casefold()
        for option in question.options:
            if folded == option.id or folded in {fold(v) for v in variants(option.text)}:
                return option.id
        return None

    def hint(self, question: Choice, typed: str) -> tuple[str, dict[str, int]]:
        return "hint_choice", {}

    def buttons(self, flow: Flow, question: Choice, locale: str, payload: Payload) -> Rows:
        return tuple(
            (Button(label=localize(o.text, locale, flow.fallback), payload=payload(str(i))),)
            for i, o in enumerate(question.options)
        )

    def label(self, flow: Flow, question: Choice, stored: Parsed | None, locale: str) -> str:
        for option in question.options:
            if option.id == stored:
                return localize(option.text, locale, flow.fallback)
        return str(stored)


class TextKind(QuestionKind[FreeText]):
    """Typed only, up to ``max_length`` characters."""

    field = "text"

    def from_text(self, flow: Flow, question: FreeText, typed: str) -> Parsed | None:
        return typed if typed and len(typed) <= question.max_length else None

    def hint(self, question: FreeText, typed: str) -> tuple[str, dict[str, int]]:
        if typed:
            return "hint_too_long", {"max_length": question.max_length}
        return "hint_text", {}

    def label(self, flow: Flow, question: FreeText, stored: Parsed | None, locale: str) -> str:
        return str(stored or "")


KINDS: dict[str, QuestionKind[Any]] = {
    "yes_no": YesNoKind(),
    "rating": RatingKind(),
    "nps": NpsKind(),
    "ces": CesKind(),
    "choice": ChoiceKind(),
    "text": TextKind(),
}


def kind_of(question: Question) -> QuestionKind[Any]:
    return KINDS[question.type]


def number_in(text: str) -> int | None:
    """ASCII digits only: "9", "+9", "09" -> 9; "¹", "٩", "9.0", "-1" -> None."""
    digits = text.removeprefix("+")
    if digits.isascii() and digits.isdigit() and len(digits) <= 3:
        return int(digits)
    return None


def variants(text: Text) -> list[str]:
    return [text] if isinstance(text, str) else list(text.values())


def fold(text: str) -> str:
    return text.strip().casefold()
