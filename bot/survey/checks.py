"""Validation of flow documents, in two passes. No I/O.

The *shape* pass is pydantic: every question is parsed on its own (a discriminated union on
``type``) so that one broken question does not hide the problems of the others. The *graph*
pass checks what a single model cannot: unique ids, ``when`` referring only to earlier
questions and to real values, every declared locale present, placeholders well formed. Both
report :class:`Problem` objects whose ``loc`` is a path into the YAML document;
:mod:`bot.survey.loader` turns that path into ``file:line:col``.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.survey.flow import (
    QUESTION_ADAPTER,
    Ces,
    Choice,
    Condition,
    Flow,
    FreeText,
    Nps,
    Rating,
    Scalar,
    Text,
    YesNo,
    normalize,
)
from bot.survey.wording import pydantic_message


class Problem(BaseModel):
    """One validation problem; ``loc`` is a path into the document (keys and list indexes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    loc: tuple[str | int, ...]
    message: str
    question_id: str | None = None


def shape_problems(data: object) -> tuple[Flow | None, list[Problem]]:
    """Pass 1: parse with pydantic, question by question, collecting every shape error."""
    if not isinstance(data, Mapping):
        return None, [Problem(loc=(), message="a flow must be a mapping (id, name, questions...)")]
    problems: list[Problem] = []
    questions = data.get("questions")
    parsed: list[Any] = []
    if isinstance(questions, list):
        for i, raw in enumerate(questions):
            qid = raw.get("id") if isinstance(raw, Mapping) else None
            try:
                parsed.append(QUESTION_ADAPTER.validate_python(raw))
            except ValidationError as exc:
                problems.extend(_from_pydantic(exc, ("questions", i), qid))
    top = {k: v for k, v in data.items() if k != "questions"}
    try:
        Flow.model_validate({**top, "questions": [_placeholder_question()]})
    except ValidationError as exc:
        problems.extend(_from_pydantic(exc, (), None))
    if questions is None or not isinstance(questions, list) or not questions:
        problems.append(Problem(loc=(), message="questions: a flow needs a list of questions"))
    if problems:
        return None, problems
    flow = Flow.model_validate({**top, "questions": parsed})
    return flow, []


def validate(data: object) -> tuple[Flow | None, list[Problem]]:
    """Both passes. When parts of the file are malformed, the graph pass still runs over what
    parsed, so all problems come at once: a broken question stands in as a stub that keeps
    its id and place (references to it and duplicate ids still read right; nothing is
    reported *about* the stub twice), and broken top-level keys take neutral defaults (with
    ``locales`` broken, locale completeness cannot be judged and is not)."""
    flow, problems = shape_problems(data)
    if flow is not None:
        return flow, graph_problems(flow)
    if not isinstance(data, Mapping) or not isinstance(data.get("questions"), list):
        return None, problems
    if not data["questions"]:
        return None, problems
    bad_top = {p.loc[0] for p in problems if p.loc and p.loc[0] != "questions"}
    broken = {p.loc[1] for p in problems if p.loc[:1] == ("questions",) and len(p.loc) > 1}
    top = {k: v for k, v in data.items() if k not in bad_top and k != "questions"}
    top = {"id": "flow", "name": "flow", "locales": ["en"], **top}
    try:
        base = Flow.model_validate({**top, "questions": [_placeholder_question()]})
    except ValidationError:
        return None, problems
    items: list[Any] = []
    stubs: set[str] = set()
    for i, raw in enumerate(data["questions"]):
        if i in broken:
            stub = _stub(raw, i)
            stubs.add(stub.id)
            items.append(stub)
        else:
            items.append(QUESTION_ADAPTER.validate_python(raw))
    partial = base.model_copy(update={"questions": items})
    for p in graph_problems(partial, check_locales="locales" not in bad_top):
        if p.loc[:2] and p.loc[0] == "questions" and p.loc[1] in broken:
            continue  # about a broken question: its own errors are reported already
        if (
            p.loc[2:3] == ("when",)
            and p.loc[3:4]
            and p.loc[3] in stubs
            and "later" not in p.message
        ):
            continue  # a condition on a broken question cannot be judged
        problems.append(p)
    return None, problems


def _stub(raw: object, index: int) -> FreeText:
    """A stand-in for a question that did not parse: its id if it has a usable one."""
    qid = raw.get("id") if isinstance(raw, Mapping) else None
    if not isinstance(qid, str) or not qid:
        qid = f"question {index + 1}"
    return FreeText.model_construct(id=qid, type="text", text="", optional=False, when=None)


def _placeholder_question() -> dict[str, str]:
    return {"id": "q", "type": "text", "text": "q"}


def _from_pydantic(exc: ValidationError, prefix: tuple[str | int, ...], qid: Any) -> list[Problem]:
    out = []
    tags = {"yes_no", "rating", "nps", "ces", "choice", "text"}
    for err in exc.errors():
        loc: list[str | int] = []
        for i, part in enumerate(err["loc"]):
            # pydantic puts the union tag into the path: questions.3.nps.text -> questions.3.text
            if i == 0 and prefix and part in tags and isinstance(part, str):
                continue
            if part == "[key]":
                continue
            loc.append(part)
        field = ".".join(str(p) for p in loc) or ("question" if prefix else "flow")
        msg = pydantic_message(err, field)
        if err["type"] == "union_tag_invalid":
            msg = f"unknown question type {err['input'].get('type')!r}; expected one of " + (
                "yes_no, rating, nps, ces, choice, text"
            )
            loc = ["type"]
            field = "type"
        elif err["type"] == "union_tag_not_found":
            msg = "missing 'type' (one of yes_no, rating, nps, ces, choice, text)"
        elif err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}" if loc else msg
        out.append(
            Problem(
                loc=(*prefix, *loc),
                message=f"{field}: {msg}",
                question_id=qid if isinstance(qid, str) else None,
            )
        )
    return out


def _texts(flow: Flow) -> Iterator[tuple[tuple[str | int, ...], Text, str | None]]:
    for i, q in enumerate(flow.questions):
        yield ("questions", i, "text"), q.text, q.id
        if isinstance(q, Choice):
            for j, opt in enumerate(q.options):
                yield ("questions", i, "options", j, "text"), opt.text, q.id
        labels: Mapping[Any, Text] | None = getattr(q, "labels", None)
        for key, label in (labels or {}).items():
            yield ("questions", i, "labels", key), label, q.id
    if flow.thanks is not None:
        yield ("thanks",), flow.thanks, None
    for key, text in flow.strings.items():
        yield ("strings", key), text, None


def graph_problems(flow: Flow, *, check_locales: bool = True) -> list[Problem]:
    """Pass 2: ids, ``when`` references and values, locales, placeholders."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, q in enumerate(flow.questions):
        if q.id in seen:
            problems.append(
                Problem(
                    loc=("questions", i, "id"),
                    message=f"duplicate question id {q.id!r} (first used by question "
                    f"{seen[q.id] + 1})",
                    question_id=q.id,
                )
            )
        else:
            seen[q.id] = i
        for ref, cond in (q.when or {}).items():
            problems.extend(_check_when(flow, i, q.id, ref, cond))
        if isinstance(q, Choice):
            ids = [o.id for o in q.options]
            for j, oid in enumerate(ids):
                if oid in ids[:j]:
                    problems.append(
                        Problem(
                            loc=("questions", i, "options", j, "id"),
                            message=f"duplicate option id {oid!r}",
                            question_id=q.id,
                        )
                    )
        if isinstance(q, Rating | Nps | Ces) and q.labels:
            lo, hi = q.bounds()
            for key in q.labels:
                if not lo <= key <= hi:
                    problems.append(
                        Problem(
                            loc=("questions", i, "labels", key),
                            message=f"label for {key} is outside the scale {lo}..{hi}",
                            question_id=q.id,
                        )
                    )
    for loc, text, qid in _texts(flow):
        problems.extend(_check_text(flow, loc, text, qid, check_locales))
    return problems


def _check_text(
    flow: Flow, loc: tuple[str | int, ...], text: Text, qid: str | None, check_locales: bool
) -> list[Problem]:
    out = []
    variants = {"*": text} if isinstance(text, str) else text
    if isinstance(text, dict) and check_locales:
        for locale in flow.locales:
            if not text.get(locale, "").strip():
                out.append(
                    Problem(
                        loc=loc,
                        message=f"missing {locale!r} text (the flow declares locales "
                        f"{', '.join(flow.locales)})",
                        question_id=qid,
                    )
                )
        for locale in text:
            if locale not in flow.locales:
                out.append(
                    Problem(
                        loc=(*loc, locale),
                        message=f"locale {locale!r} is not declared in the flow's locales",
                        question_id=qid,
                    )
                )
    for locale, variant in variants.items():
        try:
            list(string.Formatter().parse(variant))
        except ValueError as exc:
            out.append(
                Problem(
                    loc=loc if locale == "*" else (*loc, locale),
                    message=f"bad placeholder: {exc} (write {{{{ and }}}} for literal braces)",
                    question_id=qid,
                )
            )
    return out


def _check_when(flow: Flow, index: int, qid: str, ref: str, cond: Condition) -> list[Problem]:
    loc: tuple[str | int, ...] = ("questions", index, "when", ref)
    earlier = {q.id: q for q in flow.questions[:index]}
    if ref not in earlier:
        later = any(q.id == ref for q in flow.questions[index:])
        why = "a later question" if later else "an unknown question"
        return [
            Problem(
                loc=loc,
                message=f"when: refers to {why} {ref!r}; conditions may only use earlier answers",
                question_id=qid,
            )
        ]
    target = earlier[ref]
    out: list[Problem] = []
    ops = cond.operands()
    values: list[Scalar] = [v for op in ("eq", "ne") if op in ops for v in [ops[op]]]
    values += list(ops.get("in", []))
    numeric = {op: ops[op] for op in ("lt", "lte", "gt", "gte") if op in ops}

    def bad(message: str) -> None:
        out.append(Problem(loc=loc, message=f"when: {message}", question_id=qid))

    if isinstance(target, YesNo):
        for v in values:
            if normalize(v) not in (0, 1):
                bad(f"{ref!r} is yes/no; {v!r} is neither yes nor no")
        if numeric:
            bad(f"{ref!r} is yes/no; use eq/ne, not {', '.join(numeric)}")
    elif isinstance(target, Rating | Nps | Ces):
        lo, hi = target.bounds()
        for v in [*values, *numeric.values()]:
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
                bad(f"{v!r} is outside {ref!r}'s scale {lo}..{hi}")
    elif isinstance(target, Choice):
        option_ids = {o.id for o in target.options}
        for v in values:
            if v not in option_ids:
                bad(f"{v!r} is not an option of {ref!r} (options: {', '.join(sorted(option_ids))})")
        if numeric:
            bad(f"{ref!r} is a choice; use eq/ne/in, not {', '.join(numeric)}")
    else:
        bad(f"{ref!r} is free text; conditions on free text are not supported")
    return out
