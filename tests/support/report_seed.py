"""Customers answering the shipped flows through the real Runtime and storage, on a clock the
test controls: the known data the report and dashboard tests check their figures against.

Each :class:`Visit` is one survey sent to one customer: the flow, the platform, the agent in
the survey's context, the customer's language, when it was sent, and what the customer typed
("/skip" skips an optional question). A visit whose replies run out leaves its session waiting
on the next question; ``expire=True`` then marks it expired, as the dispatcher's expiry job
does, so it counts as abandoned there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot.chat import Address, Inbound, Platform
from bot.conversation.runtime import Runtime
from bot.survey.loader import FlowRegistry
from storage import open_storage
from storage.base import Storage
from tests.support.recording import RecordingAdapter


@dataclass(frozen=True)
class Visit:
    flow: str
    platform: Platform
    agent: str
    locale: str
    at: datetime
    replies: tuple[str, ...]
    expire: bool = False


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def seed(url: str, flows_dir: Path, visits: list[Visit]) -> None:
    """Open the store at ``url``, play ``visits`` into it, close it."""
    storage = open_storage(url)
    await storage.open()
    try:
        await seed_into(storage, flows_dir, visits)
    finally:
        await storage.close()


async def seed_into(storage: Storage, flows_dir: Path, visits: list[Visit]) -> None:
    """Send every visit's survey at ``visit.at`` and type its replies a minute apart."""
    registry = FlowRegistry(flows_dir)
    assert registry.load_all() == []
    clock = _Clock(visits[0].at if visits else datetime.now())
    adapters = {p: RecordingAdapter(platform=p) for p in ("telegram", "slack", "console")}
    runtime = Runtime(registry, storage, dict(adapters), clock=clock)
    for number, visit in enumerate(visits):
        clock.now = visit.at
        user = f"{visit.platform}-customer-{number}"
        session = await runtime.start_survey(
            visit.flow,
            Address(platform=visit.platform, user_id=user),
            {"agent": visit.agent, "ticket_id": str(1000 + number)},
            triggered_by="test",
            locale=visit.locale,
        )
        for reply in visit.replies:
            clock.now += timedelta(minutes=1)
            kind = "skip" if reply == "/skip" else "text"
            await runtime.handle(Inbound(platform=visit.platform, kind=kind, user_id=user,
                                         text=reply))  # fmt: skip
        if visit.expire:
            current = await storage.get_session(session.id)
            assert current is not None and current.status == "active"
            await storage.update_session(current.id, current.version, status="expired")


# Two weeks of surveys: what the tests know about them is in the names and comments below.
NPS_SCORES = ([10, 9, 9, 8, 7, 6, 3, 0, 10, 9], [10, 10, 9, 8, 5, 2, 9, 7])
CSAT_ANSWERS = (["yes"] * 7 + ["no"] * 3, ["yes"] * 4 + ["no"])
CES_ANSWERS = ([7, 6, 5, 5, 4, 3, 2], [7, 6, 1])


def two_weeks(monday: datetime) -> list[Visit]:
    """Week 0 starts on ``monday``, week 1 seven days later. NPS on Telegram (agents ann and
    bob, English and Greek), CSAT on Slack (agents carol and dave, English and Lithuanian),
    CES on both. Detractors explain themselves, passives skip, promoters praise; unhappy CSAT
    answers explain or skip. In week 1 two NPS surveys go unanswered (one expires, one still
    waits) and one unhappy CSAT customer never explains (expired at the second question)."""
    visits: list[Visit] = []
    for week in (0, 1):
        start = monday + timedelta(days=7 * week, hours=9)
        for i, score in enumerate(NPS_SCORES[week]):
            why = "too slow" if score <= 6 else "/skip" if score <= 8 else "great help"
            visits.append(Visit("nps", "telegram", ("ann", "bob")[i % 2], ("en", "el")[i % 2],
                                start + timedelta(hours=i), (str(score), why)))  # fmt: skip
        for i, answer in enumerate(CSAT_ANSWERS[week]):
            replies = (answer,) if answer == "yes" else (answer, ("rude reply", "/skip")[i % 2])
            visits.append(Visit("csat", "slack", ("carol", "dave")[i % 2], ("en", "lt")[i % 2],
                                start + timedelta(days=1, hours=i), replies))  # fmt: skip
        for i, effort in enumerate(CES_ANSWERS[week]):
            platform: Platform = ("telegram", "slack")[i % 2]
            replies = (str(effort), "took three emails" if effort <= 2 else "/skip")
            visits.append(Visit("ces", platform, ("ann", "carol")[i % 2], "en",
                                start + timedelta(days=2, hours=i), replies))  # fmt: skip
    late = monday + timedelta(days=10)
    visits += [
        Visit("nps", "telegram", "ann", "en", late, (), expire=True),
        Visit("nps", "telegram", "bob", "en", late + timedelta(hours=1), ()),
        Visit("csat", "slack", "dave", "en", late + timedelta(hours=2), ("no",), expire=True),
    ]
    return sorted(visits, key=lambda v: v.at)
