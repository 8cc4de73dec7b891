"""Detractor alerts: the ``alerts:`` section of config.yaml, which answers a rule fires on,
and the outbox rows an answer owes the staff channels.

A rule reads like the issue it answers (``when: nps <= 6``, ``csat = no``, ``ces <= 3``),
optionally for some flows or one question, and names where the alert goes (``to:`` a Slack
channel or a Telegram group, ``topic:`` a forum topic) and the team's language. An answer that
matches opens one alert, from the first rule that matches (rules are tried in config order).

What an answer owes (:meth:`Alerts.owed`, pure) is committed with the answer, like a webhook:
an ``alert`` row (the follow-up to open and post) when the answer matches, an ``alert_update``
row (the alert edited in place) when a comment comes after an alerted score. Both go to the
destination chat in the ``bulk`` lane: one chat's rows are sent in order, so an alert is
always posted before its updates. :mod:`bot.conversation.alert_delivery` delivers them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from bot.chat import Address
from bot.survey.engine import Answer, Step
from bot.survey.flow import Flow, Question
from storage.base import Followup, OutboxMessage, SessionRecord

ALERT = "alert"  # outbox kinds
ALERT_UPDATE = "alert_update"
KINDS = (ALERT, ALERT_UPDATE)
Metric = Literal["nps", "csat", "ces"]
_WHEN = re.compile(r"^(nps|csat|ces)\s*(<=|<|==|=)\s*(\d{1,2}|yes|no)$", re.IGNORECASE)
_SLACK_CHANNEL = re.compile(r"^[CG][A-Z0-9]{4,20}$")
_TELEGRAM_GROUP = re.compile(r"^-\d{1,20}$")
WHEN_HELP = "write <metric> <= <number> (metric: nps, csat or ces), e.g. nps <= 6, or csat = no"
TO_HELP = "use slack:<channel id> (e.g. slack:C0123ABCD) or telegram:<group id> (e.g. "
TO_HELP += "telegram:-1001234567890)"


class Condition(BaseModel):
    """``nps <= 6``: the metric, the comparison and the value (a number, or yes/no)."""

    model_config = ConfigDict(frozen=True)

    metric: Metric
    op: Literal["<=", "<", "="]
    number: int | None = None
    word: Literal["yes", "no"] | None = None

    @classmethod
    def parse(cls, text: str) -> Condition:
        match = _WHEN.match(text.strip())
        if not match:
            raise ValueError(f"cannot read {text!r}: {WHEN_HELP}")
        metric, op, value = match[1].lower(), match[2].replace("==", "="), match[3].lower()
        if value in ("yes", "no"):
            if metric != "csat" or op != "=":
                raise ValueError(f"{text!r}: only csat = yes / csat = no compare with a word")
            return cls(metric="csat", op="=", word=value)
        return cls(metric=metric, op=op, number=int(value))

    def fits(self, question: Question) -> str | None:
        """Why this condition cannot apply to ``question`` (of its metric), or None."""
        if question.type == "yes_no":
            return None if self.word else "a yes/no question: write csat = no"
        if self.word:
            return f"a {question.type} question: compare its score with a number"
        lo, hi = question.bounds()  # type: ignore[union-attr]
        assert self.number is not None
        if not lo <= self.number <= hi:
            return f"{self.number} is outside the question's scale {lo}–{hi}"
        return None

    def matches(self, question: Question, value: int) -> bool:
        if question.type == "yes_no":
            return self.word is not None and value == (1 if self.word == "yes" else 0)
        if self.number is None:
            return False
        return value <= self.number if self.op == "<=" else (
            value < self.number if self.op == "<" else value == self.number
        )  # fmt: skip


class AlertRule(BaseModel):
    """One entry of ``alerts:`` (keyed by a name of the admin's choosing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: str
    to: str
    topic: int | None = None  # a Telegram forum topic (message_thread_id)
    locale: Literal["en", "el", "lt"] = "en"
    flows: list[str] | None = None  # only these flows (default: every flow)
    question: str | None = None  # only this question id (default: every one of the metric)

    @field_validator("when")
    @classmethod
    def _when(cls, when: str) -> str:
        Condition.parse(when)
        return when

    @field_validator("to")
    @classmethod
    def _to(cls, to: str) -> str:
        platform, sep, chat = to.strip().partition(":")
        if not sep or not chat:
            raise ValueError(f"{to!r}: {TO_HELP}")
        if platform == "slack":
            if not _SLACK_CHANNEL.match(chat):
                raise ValueError(f"{chat!r} is not a Slack channel ID (C… or G…, from the "
                                 "channel's details): use slack:C0123ABCD")  # fmt: skip
        elif platform == "telegram":
            if not _TELEGRAM_GROUP.match(chat):
                raise ValueError(f"{chat!r} is not a Telegram group's chat ID (a negative "
                                 "number, e.g. telegram:-1001234567890)")  # fmt: skip
        else:
            raise ValueError(f"unknown platform {platform!r}: {TO_HELP}")
        return f"{platform}:{chat}"

    @model_validator(mode="after")
    def _topic(self) -> AlertRule:
        if self.topic is not None and not self.to.startswith("telegram:"):
            raise ValueError("topic: only a Telegram group has forum topics")
        if self.topic is not None and self.topic <= 0:
            raise ValueError("topic: a forum topic's id (message_thread_id) is positive")
        return self

    @cached_property
    def condition(self) -> Condition:
        return Condition.parse(self.when)

    @property
    def platform(self) -> Literal["slack", "telegram"]:
        return "slack" if self.to.startswith("slack:") else "telegram"

    @property
    def destination(self) -> str:
        """What the follow-up records: ``slack:C…``, ``telegram:-100…[:topic]``."""
        return self.to if self.topic is None else f"{self.to}:{self.topic}"

    @property
    def address(self) -> Address:
        return destination_address(self.destination)

    def applies(self, flow: Flow, question: Question) -> bool:
        return (
            question.metric == self.condition.metric
            and (self.flows is None or flow.id in self.flows)
            and (self.question is None or question.id == self.question)
        )


def destination_address(destination: str) -> Address:
    """Where an alert goes, from its follow-up's ``destination`` (``slack:C…``,
    ``telegram:-100…[:topic]``): the chat, and the forum topic if there is one."""
    platform, chat, topic = [*destination.split(":"), ""][:3]
    return Address(platform=platform, user_id=chat, chat_id=chat,
                   thread_id=topic or None)  # fmt: skip


def check_alerts(
    rules: Mapping[str, AlertRule], flows: Mapping[str, Flow], connected: Iterable[str]
) -> list[str]:
    """What is wrong with ``alerts:`` given the loaded flows and the connected platforms, one
    message per problem, each naming its key (empty: nothing)."""
    problems: list[str] = []
    platforms = set(connected)
    listed = ", ".join(sorted(flows)) or "none loaded"
    for name, rule in rules.items():
        key = f"alerts.{name}"
        if rule.platform not in platforms:
            variable = {"slack": "SURVEYBOT_SLACK_BOT_TOKEN", "telegram":
                        "SURVEYBOT_TELEGRAM_TOKEN"}[rule.platform]  # fmt: skip
            problems.append(f"{key}.to: {rule.platform} is not connected: set {variable}")
        for flow_id in rule.flows or ():
            if flow_id not in flows:
                problems.append(f"{key}.flows: unknown flow {flow_id!r} (flows: {listed})")
        candidates = [
            (f, q)
            for f in flows.values()
            if rule.flows is None or f.id in rule.flows
            for q in f.questions
            if rule.question is None or q.id == rule.question
        ]
        if rule.question is not None and not candidates:
            problems.append(f"{key}.question: no question {rule.question!r} in "
                            f"{', '.join(rule.flows or sorted(flows)) or 'any flow'}")  # fmt: skip
            continue
        scored = [(f, q) for f, q in candidates if q.metric == rule.condition.metric]
        if candidates and not scored:
            problems.append(f"{key}.when: no {rule.condition.metric} question to watch in "
                            f"{', '.join(sorted({f.id for f, _ in candidates}))}")  # fmt: skip
        for flow, question in scored:
            why = rule.condition.fits(question)
            if why is not None:
                problems.append(f"{key}.when: {rule.when!r} for {flow.id}.{question.id}: {why}")
    return problems


def _comment(flow: Flow, answers: Mapping[str, object]) -> str | None:
    texts = [str(answers[q.id]) for q in flow.questions if q.type == "text" and answers.get(q.id)]
    return "\n\n".join(texts) or None


class Alerts:
    """Which outbox rows an answer owes the staff channels (pure: no I/O)."""

    def __init__(self, rules: Mapping[str, AlertRule]) -> None:
        self.rules = dict(rules)

    def rule_for(self, flow: Flow, question: Question, value: object) -> AlertRule | None:
        """The first rule this answer matches, if any."""
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        for rule in self.rules.values():
            if rule.applies(flow, question) and rule.condition.matches(question, value):
                return rule
        return None

    def owed(
        self,
        flow: Flow,
        session: SessionRecord,
        step: Step,
        now: datetime,
        name: str | None = None,
    ) -> list[OutboxMessage]:
        """``name``: the customer's name as the platform showed it with this answer (used when
        the session has none, e.g. a survey a helpdesk started)."""
        answer = step.answer
        if name and not session.user_name:
            session = session.model_copy(update={"user_name": name})
        if answer is None or not self.rules:
            return []
        question = flow.questions[answer.question_index]
        answers = step.state.answers
        rule = self.rule_for(flow, question, answer.value)
        if rule is not None:
            yes_no = question.type == "yes_no"
            return [self._alert(rule, flow, session, answer, now, _comment(flow, answers), yes_no)]
        if question.type != "text" or not answer.text:
            return []
        comment = _comment(flow, answers)
        rows = []
        for earlier in flow.questions:
            alerted = self.rule_for(flow, earlier, answers.get(earlier.id))
            if alerted is not None:
                body = {"session_id": session.id, "question_id": earlier.id, "comment": comment}
                rows.append(_row(alerted.address, ALERT_UPDATE, body, session.id, now))
        return rows

    @staticmethod
    def _alert(
        rule: AlertRule,
        flow: Flow,
        session: SessionRecord,
        answer: Answer,
        now: datetime,
        comment: str | None,
        yes_no: bool,
    ) -> OutboxMessage:
        followup = Followup(
            session_id=session.id, question_id=answer.question_id, flow_id=flow.id,
            platform=session.platform, user_id=session.user_id, user_name=session.user_name,
            agent=session.context.get("agent"), metric=answer.metric, score=answer.value,
            scale_max=None if yes_no else answer.scale_max,
            context=dict(session.context), destination=rule.destination, locale=rule.locale,
            created_at=now, comment=comment,
        )  # fmt: skip
        return _row(rule.address, ALERT, {"followup": followup.model_dump(mode="json")},
                    session.id, now)  # fmt: skip


def _row(
    address: Address, kind: str, body: Mapping[str, object], session_id: str, now: datetime
) -> OutboxMessage:
    return OutboxMessage(address=address, kind=kind, body=json.dumps(body, ensure_ascii=False),
                         created_at=now, lane="bulk", session_id=session_id)  # fmt: skip


def alert_rows(
    alerts: Alerts | None,
    flow: Flow,
    session: SessionRecord,
    step: Step,
    now: datetime,
    name: str | None = None,
) -> list[OutboxMessage]:
    """The rows an answer (``step``) owes the staff channels, for the runtime to commit."""
    return [] if alerts is None else alerts.owed(flow, session, step, now, name)
