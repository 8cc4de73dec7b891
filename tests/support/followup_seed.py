"""Detractor alerts a support team handled over a month, stored through the real storage
methods (a session, its NPS answer, the follow-up it opened, "I'll follow up" and "Resolved"
presses at known times): the data the follow-up report tests check their figures against.

nick: 4 negatives, 3 followed up after 1, 3 and 10 minutes (median 3 min), 1 resolved; ana: 2,
followed up after 30 s and 90 s (median 60 s), both resolved; one survey with no agent, never
followed up. Everyone (flow nps, Telegram, June 2024): 7 negatives, waits 30, 60, 90, 180, 600
s, median 90 s; 5 followed up, 3 resolved. Outside that: one raised before June, one of the
csat flow, one on Slack.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.survey.engine import Answer, SessionState
from storage.base import Followup, SessionRecord, Storage

START = datetime(2024, 6, 1, tzinfo=UTC)
NOW = START + timedelta(days=30)
ANN, BOB = "slack:U0ANN", "slack:U0BOB"


async def alerted(
    storage: Storage,
    sid: str,
    agent: str | None,
    raised: datetime,
    *,
    score: int = 3,
    flow: str = "nps",
    platform: str = "telegram",
    ticket: str | None = None,
) -> int:
    """A customer's NPS ``score`` recorded at ``raised``, and the alert it opened."""
    await storage.create_session(SessionRecord(
        id=sid, flow_id=flow, flow_version="v1", platform=platform, user_id=f"u-{sid}",
        locale="en", state=SessionState(locale="en", current=0), created_at=raised,
        updated_at=raised, context={"agent": agent} if agent else {},
    ))  # fmt: skip
    answer = Answer(question_id="score", question_index=0, metric="nps", value=score,
                    scale_min=0, scale_max=10)  # fmt: skip
    outcome = await storage.commit(sid, 0, state=SessionState(locale="en", current=1),
                                   status="active", now=raised, answer=answer)  # fmt: skip
    assert outcome.result == "ok"
    f = Followup(session_id=sid, question_id="score", flow_id=flow, platform=platform,
                 user_id=f"u-{sid}", user_name=f"Customer {sid}", agent=agent, metric="nps",
                 score=score, context={"ticket_id": ticket} if ticket else {},
                 destination="slack:C0STAFF", locale="en", created_at=raised)  # fmt: skip
    assert await storage.followup_put([f]) == 1
    stored = await storage.followup_of(sid, "score")
    assert stored is not None and stored.id is not None
    return stored.id


async def followed(storage: Storage, fid: int, raised: datetime, after: timedelta) -> None:
    assert await storage.followup_own(fid, ANN, raised + after)


async def resolved(storage: Storage, fid: int, at: datetime) -> None:
    assert await storage.followup_resolve(fid, BOB, at)


def day(n: int, hour: int = 9) -> datetime:
    return START + timedelta(days=n, hours=hour)


async def a_month_of_alerts(storage: Storage) -> dict[str, int]:
    """The month described above; the follow-ups' ids by session id."""
    ids: dict[str, int] = {}
    ids["n1"] = await alerted(storage, "n1", "nick", day(1), ticket="T-1")
    await followed(storage, ids["n1"], day(1), timedelta(minutes=1))
    await resolved(storage, ids["n1"], day(2))
    ids["n2"] = await alerted(storage, "n2", "nick", day(3), score=0, ticket="T-2")
    await followed(storage, ids["n2"], day(3), timedelta(minutes=3))
    ids["n3"] = await alerted(storage, "n3", "nick", day(5), score=6)
    await followed(storage, ids["n3"], day(5), timedelta(minutes=10))
    ids["n4"] = await alerted(storage, "n4", "nick", day(7), score=2, ticket="T-4")
    ids["a1"] = await alerted(storage, "a1", "ana", day(2))
    await followed(storage, ids["a1"], day(2), timedelta(seconds=30))
    await resolved(storage, ids["a1"], day(2, 15))
    ids["a2"] = await alerted(storage, "a2", "ana", day(4))
    await followed(storage, ids["a2"], day(4), timedelta(seconds=90))
    await resolved(storage, ids["a2"], day(6))
    ids["x1"] = await alerted(storage, "x1", None, day(6, 11), score=5)
    ids["old"] = await alerted(storage, "old", "nick", START - timedelta(days=2))
    ids["csat"] = await alerted(storage, "csat", "nick", day(8), flow="csat")
    ids["slack"] = await alerted(storage, "slack", "ana", day(9), platform="slack")
    return ids


async def alert_detractors(
    storage: Storage, since: datetime, waits: list[timedelta], resolved: int = 0
) -> list[Followup]:
    """Open a follow-up for every NPS detractor (0–6) answered since ``since``, as the rule
    "NPS ≤ 6" does; the first ``len(waits)`` of them (oldest first) are followed up that long
    after the answer, and the first ``resolved`` resolved an hour later."""
    rows = [r async for r in storage.export_rows("nps", since=since)]
    negative = sorted((r for r in rows if r.metric == "nps" and isinstance(r.value, int)
                       and r.value <= 6), key=lambda r: r.answered_at)  # fmt: skip
    opened = [
        Followup(session_id=r.session_id, question_id=r.question_id, flow_id=r.flow_id,
                 platform=r.platform, user_id=r.user_id, agent=r.context.get("agent"),
                 metric="nps", score=int(r.value), context=r.context,
                 destination="slack:C0STAFF", locale="en", created_at=r.answered_at)
        for r in negative if isinstance(r.value, int)
    ]  # fmt: skip
    assert await storage.followup_put(opened) == len(opened)
    stored = [await storage.followup_of(f.session_id, f.question_id) for f in opened]
    for i, f in enumerate(stored):
        assert f is not None and f.id is not None
        if i < len(waits):
            assert await storage.followup_own(f.id, ANN, f.created_at + waits[i])
        if i < resolved:
            assert await storage.followup_resolve(f.id, BOB, f.created_at + timedelta(hours=1))
    return [f for f in stored if f is not None]
