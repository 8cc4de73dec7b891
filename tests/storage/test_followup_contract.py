"""The storage contract, follow-ups: one row per alerted answer and what staff did about it,
on every backend.

An answer that triggers an alert opens one follow-up (however often the alert is delivered);
the first "I'll follow up" owns it, "Resolved" closes it; each change queues its owed messages
(the alert's update, a webhook) in the same transaction, and only when it applied.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.chat import Address
from storage.base import Followup, OutboxMessage, Storage
from tests.storage.test_queue_contract import LEASE, T0, session

ANN = "slack:U0ANN"
BOB = "slack:U0BOB"


def detractor(sid: str = "s1", minutes: int = 0, **fields: object) -> Followup:
    values: dict[str, object] = {
        "session_id": sid, "question_id": "score", "flow_id": "nps", "platform": "telegram",
        "user_id": "42", "user_name": "Maria", "agent": "nick", "metric": "nps", "score": 3,
        "scale_max": 10, "context": {"ticket_id": "T-1001"}, "destination": "slack:C0STAFF",
        "locale": "en", "created_at": T0 + timedelta(minutes=minutes),
    }  # fmt: skip
    return Followup.model_validate(values | fields)


def owed(what: str) -> OutboxMessage:
    return OutboxMessage(
        address=Address(platform="slack", user_id="U0STAFF", chat_id="C0STAFF"),
        kind="alert", body=f'{{"what": "{what}"}}', created_at=T0, lane="bulk",
    )  # fmt: skip


async def opened(storage: Storage, sid: str = "s1", minutes: int = 0) -> Followup:
    await storage.create_session(session(sid))
    assert await storage.followup_put([detractor(sid, minutes)]) == 1
    found = await storage.followup_of(sid, "score")
    assert found is not None and found.id is not None
    return found


async def queued(storage: Storage) -> list[str]:
    return sorted(m.body for m in await storage.outbox_recent(lane="bulk"))


async def test_an_alerted_answer_opens_one_followup_however_often_its_alert_goes_out(
    storage: Storage,
) -> None:
    first = await opened(storage)
    assert await storage.followup_put([detractor()]) == 0  # the alert delivered again
    assert first == detractor().model_copy(update={"id": first.id})
    assert first.ticket_id == "T-1001" and first.owner is None and first.resolved_at is None
    assert first.id is not None
    await storage.followup_posted(first.id, "1718000000.000100")
    await storage.followup_comment(first.id, "Nobody answered for two days")
    again = await storage.followup_get(first.id)
    assert again is not None
    assert (again.message_id, again.comment) == ("1718000000.000100",
                                                 "Nobody answered for two days")  # fmt: skip
    assert await storage.followups_of_session("s1") == [again]
    assert await storage.followup_at("slack:C0STAFF", "1718000000.000100") == again  # a reply
    assert await storage.followup_at("slack:C0OTHER", "1718000000.000100") is None
    assert await storage.followup_get(first.id + 1000) is None


async def test_the_first_to_follow_up_owns_it_and_a_resolution_closes_it(
    storage: Storage,
) -> None:
    f = await opened(storage)
    assert f.id is not None
    at = T0 + timedelta(minutes=5)
    assert await storage.followup_own(f.id, ANN, at, [owed("ann owns")], name="Ann")
    assert not await storage.followup_own(f.id, BOB, at, [owed("bob owns")])  # Ann has it
    assert not await storage.followup_own(f.id, ANN, at, [owed("ann again")])  # a redelivery
    done = at + timedelta(hours=2)
    assert await storage.followup_resolve(f.id, BOB, done, [owed("bob resolved")], name="Bob")
    assert not await storage.followup_resolve(f.id, ANN, done, [owed("ann resolved")])
    assert not await storage.followup_own(f.id, BOB, done, [owed("bob late")])
    now = await storage.followup_get(f.id)
    assert now is not None
    assert (now.owner, now.owner_name, now.owned_at) == (ANN, "Ann", at)
    assert (now.resolved_by, now.resolved_by_name, now.resolved_at) == (BOB, "Bob", done)
    assert await queued(storage) == ['{"what": "ann owns"}', '{"what": "bob resolved"}']


async def test_resolving_an_unowned_followup_makes_the_resolver_its_owner(
    storage: Storage,
) -> None:
    f = await opened(storage)
    assert f.id is not None
    assert await storage.followup_resolve(f.id, BOB, T0 + timedelta(minutes=9), name="Bob")
    now = await storage.followup_get(f.id)
    assert now is not None
    assert (now.owner, now.owner_name, now.owned_at) == (BOB, "Bob", T0 + timedelta(minutes=9))


async def test_a_note_is_recorded_once_per_new_text(storage: Storage) -> None:
    f = await opened(storage)
    assert f.id is not None
    assert await storage.followup_note(f.id, "Refunded, called her", [owed("note 1")])
    assert not await storage.followup_note(f.id, "Refunded, called her", [owed("same note")])
    assert await storage.followup_note(f.id, "Refunded twice", [owed("note 2")])
    assert not await storage.followup_note(f.id + 1000, "nobody's", [owed("nowhere")])
    now = await storage.followup_get(f.id)
    assert now is not None and now.note == "Refunded twice"
    assert await queued(storage) == ['{"what": "note 1"}', '{"what": "note 2"}']


async def test_two_workers_pressing_at_once_give_one_owner_and_one_update(
    storage: Storage, second: Storage
) -> None:
    f = await opened(storage)
    assert f.id is not None
    at = T0 + timedelta(minutes=1)
    wins = await asyncio.gather(
        *(store.followup_own(f.id, who, at, [owed(who)])
          for store, who in ((storage, ANN), (second, BOB)) for _ in range(3))
    )  # fmt: skip
    assert sum(wins) == 1
    now = await storage.followup_get(f.id)
    assert now is not None and now.owner in (ANN, BOB)
    assert await queued(storage) == [f'{{"what": "{now.owner}"}}']
    claimed = await storage.outbox_claim(10, LEASE, T0 + timedelta(hours=1), lanes=["bulk"])
    assert len(claimed) == 1


async def test_followups_are_listed_by_when_the_answer_came_and_open_ones_apart(
    storage: Storage,
) -> None:
    early, middle, late = [await opened(storage, f"s{n}", n * 60) for n in (1, 2, 3)]
    assert middle.id is not None
    await storage.followup_resolve(middle.id, ANN, T0 + timedelta(hours=5))
    window = await storage.followups(T0 + timedelta(minutes=30), T0 + timedelta(hours=3))
    assert [f.session_id for f in window] == ["s1", "s2"]
    assert [f.session_id for f in await storage.followups(unresolved=True)] == ["s1", "s3"]
    assert [f.session_id for f in await storage.followups(limit=1)] == ["s1"]
    assert [f.session_id for f in await storage.followups(since=late.created_at)] == ["s3"]
    assert early.created_at < late.created_at


async def test_erasing_a_customer_removes_their_followups(storage: Storage) -> None:
    await opened(storage, "s1")
    await storage.create_session(session("s9", user="77"))
    await storage.followup_put([detractor("s9", user_id="77")])
    assert await storage.erase_user("telegram", "42") == (0, 1)
    assert [f.session_id for f in await storage.followups()] == ["s9"]
