"""Pydantic models of a survey flow (frozen, ``extra="forbid"``). No I/O.

The checks that need the whole flow (ids, ``when`` references, locales) live in
:mod:`bot.survey.checks`.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

ID_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta:
    """``"90s" | "15m" | "72h" | "30d" | "2w"`` (or a timedelta) -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    raise ValueError(f"expected a duration like 90s, 15m, 72h, 30d or 2w, got {value!r}")


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]

# A text is one string (any locale) or a map locale -> string.
Text = str | dict[str, str]


def localize(text: Text, locale: str, fallback: str) -> str:
    if isinstance(text, str):
        return text
    return text.get(locale) or text.get(fallback) or next(iter(text.values()), "")


class _SafeContext(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


_CLOSING = frozenset(".,!?;:)]}»”…·")


def render(template: str, context: Mapping[str, str]) -> str:
    """Fill ``{placeholders}``; a placeholder with no value renders empty, never raises, and
    takes the space before it along when punctuation or another space follows
    (``"Thanks {name}!"`` -> ``"Thanks!"``, ``"Ticket {id} closed"`` -> ``"Ticket closed"``)."""
    formatter = string.Formatter()
    values = _SafeContext(context)
    out = ""
    empty = False  # the last placeholder rendered empty
    try:
        for literal, field, spec, conversion in formatter.parse(template):
            if empty and out[-1:] == " " and (not literal or literal[0] in _CLOSING or
                                               literal[0].isspace()):  # fmt: skip
                out = out.rstrip(" ")
            out += literal.lstrip(" ") if empty and not out else literal
            if field is None:
                continue
            spec_part = f":{spec}" if spec else ""
            conv_part = f"!{conversion}" if conversion else ""
            value = formatter.vformat(f"{{{field}{conv_part}{spec_part}}}", (), values)
            empty = value == ""
            out += value
    except (ValueError, IndexError, KeyError, AttributeError):
        return template
    if empty and out[-1:] == " ":
        out = out.rstrip(" ")
    return out


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Scalar = int | str | bool


class Condition(_Model):
    """Show-if test on one earlier answer. All given operators must hold."""

    eq: Scalar | None = None
    ne: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    lt: StrictInt | StrictFloat | None = None
    lte: StrictInt | StrictFloat | None = None
    gt: StrictInt | StrictFloat | None = None
    gte: StrictInt | StrictFloat | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.operands():
            raise ValueError("a condition needs one of eq, ne, in, lt, lte, gt, gte")
        return self

    def operands(self) -> dict[str, Any]:
        names = ("eq", "ne", "in_", "lt", "lte", "gt", "gte")
        return {n.rstrip("_"): getattr(self, n) for n in names if getattr(self, n) is not None}

    def holds(self, value: int | str | None) -> bool:
        """``value`` is the stored answer (yes_no as 1/0, option ids as str, None = skipped)."""
        if value is None:
            return False
        for op, operand in self.operands().items():
            if op == "eq" and not _same(value, operand):
                return False
            if op == "ne" and _same(value, operand):
                return False
            if op == "in" and not any(_same(value, x) for x in operand):
                return False
            if op in {"lt", "lte", "gt", "gte"}:
                if not isinstance(value, int):
                    return False
                if op == "lt" and not value < operand:
                    return False
                if op == "lte" and not value <= operand:
                    return False
                if op == "gt" and not value > operand:
                    return False
                if op == "gte" and not value >= operand:
                    return False
        return True


def _same(value: int | str, operand: Scalar) -> bool:
    """Choice answers are option ids (compared as written); yes/no answers are 1/0."""
    if isinstance(value, str):
        return isinstance(operand, str) and operand == value
    return normalize(operand) == value


def normalize(operand: Scalar) -> int | str:
    """Condition operands as stored answers: yes/no and booleans become 1/0."""
    if isinstance(operand, bool):
        return int(operand)
    if isinstance(operand, str) and operand.lower() in {"yes", "no"}:
        return 1 if operand.lower() == "yes" else 0
    return operand


class _Question(_Model):
    id: str = Field(pattern=ID_PATTERN)
    text: Text
    optional: bool = False
    when: dict[str, Condition] | None = None

    def visible(self, answers: Mapping[str, int | str | None]) -> bool:
        if not self.when:
            return True
        return all(qid in answers and cond.holds(answers[qid]) for qid, cond in self.when.items())


class YesNo(_Question):
    type: Literal["yes_no"]
    labels: dict[Literal["yes", "no"], Text] | None = None

    metric: Literal["csat"] = "csat"


class _Scale(_Question):
    labels: dict[int, Text] | None = None

    def bounds(self) -> tuple[int, int]:
        raise NotImplementedError


class Rating(_Scale):
    type: Literal["rating"]
    min: int = Field(default=1, ge=0, le=10)
    max: int = Field(default=5, ge=1, le=10)
    metric: Literal["csat"] = "csat"

    @field_validator("max")
    @classmethod
    def _above_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min")  # absent when min itself is invalid
        if low is not None and value <= low:
            raise ValueError(f"max ({value}) must be greater than min ({low})")
        return value

    def bounds(self) -> tuple[int, int]:
        return self.min, self.max


class Nps(_Scale):
    type: Literal["nps"]
    metric: Literal["nps"] = "nps"

    def bounds(self) -> tuple[int, int]:
        return 0, 10


class Ces(_Scale):
    type: Literal["ces"]
    metric: Literal["ces"] = "ces"

    def bounds(self) -> tuple[int, int]:
        return 1, 7


class Option(_Model):
    id: str = Field(pattern=ID_PATTERN)
    text: Text


class Choice(_Question):
    type: Literal["choice"]
    options: list[Option] = Field(min_length=2, max_length=20)
    metric: Literal["choice"] = "choice"


class FreeText(_Question):
    type: Literal["text"]
    max_length: int = Field(default=1000, ge=1, le=4000)
    metric: Literal["text"] = "text"


Question = Annotated[YesNo | Rating | Nps | Ces | Choice | FreeText, Field(discriminator="type")]
Scale = Rating | Nps | Ces
QUESTION_ADAPTER: TypeAdapter[Question] = TypeAdapter(Question)


class Flow(_Model):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    locales: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] = Field(min_length=1)
    questions: list[Question] = Field(min_length=1)
    thanks: Text | None = None
    expires_after: Duration | None = None
    # one survey per customer per window, whoever starts it; overrides surveys.throttle
    throttle: Duration | None = None
    strings: dict[str, Text] = Field(default_factory=dict)

    @field_validator("locales")
    @classmethod
    def _unique_locales(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("locales must be unique")
        return v

    @property
    def fallback(self) -> str:
        return self.locales[0]

    @cached_property
    def version(self) -> str:
        """Content hash: sessions keep the version they started with."""
        canonical = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def index_of(self, question_id: str) -> int:
        for i, q in enumerate(self.questions):
            if q.id == question_id:
                return i
        raise KeyError(question_id)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Flow:
        return cls.model_validate_json(raw)
