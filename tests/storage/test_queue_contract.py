"""The storage contract, second half: the durable inbox and outbox, on every backend.

An event a platform delivers is stored raw before the platform is acknowledged, handled once,
per customer in arrival order, retried or quarantined when it cannot be handled; a message
owed to a customer is committed with the state change that owes it and sent one at a time per
chat, the customer's own conversation before bulk sends. Times are passed in explicitly.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.chat import Address
from bot.survey.engine import Answer, SessionState
from storage.base import InboxEvent, OutboxMessage, SessionRecord, Storage

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def event(n: int, customer: str = "42", platform: str = "telegram") -> InboxEvent:
    return InboxEvent(
        platform=platform, event_id=f"upd-{n}", key=f"{platform}:chat:{customer}",
        user_id=customer, payload=f'{{"update_id": {n}, "text": "message {n}"}}',
        received_at=T0 - timedelta(minutes=1) + timedelta(milliseconds=n),
    )  # fmt: skip


def message(
    text: str, customer: str = "42", lane: str = "interactive", chat: str | None = None
) -> OutboxMessage:
    return OutboxMessage.model_validate({
        "address": Address(platform="telegram", user_id=customer, chat_id=chat),
        "kind": "question", "body": f'{{"text": "{text}"}}', "created_at": T0, "lane": lane,
    })  # fmt: skip


def session(sid: str = "s1", user: str = "42", **fields: object) -> SessionRecord:
    values: dict[str, object] = {
        "id": sid, "flow_id": "nps", "flow_version": "v1", "platform": "telegram",
        "user_id": user, "locale": "en", "state": SessionState(locale="en", current=0),
        "created_at": T0, "updated_at": T0,
    }  # fmt: skip
    return SessionRecord.model_validate(values | fields)


NINE = Answer(question_id="score", question_index=0, metric="nps", value=9)


def payloads(events: list[InboxEvent]) -> list[str]:
    return [e.event_id for e in events]


def texts(messages: list[OutboxMessage]) -> list[str]:
    return [m.body.split('"')[3] for m in messages]


# inbox -------------------------------------------------------------------------------------
async def test_a_redelivered_update_is_stored_once(storage: Storage) -> None:
    assert await storage.inbox_put([event(1), event(2), event(1)]) == 2
    assert await storage.inbox_put([event(2), event(3)]) == 1  # the platform sent 2 again
    assert await storage.inbox_put([]) == 0
    slack = event(1, platform="slack")  # the same id on another platform is another event
    assert await storage.inbox_put([slack]) == 1
    assert (await storage.queue_counts())["inbox.pending"] == 4
    claimed = await storage.inbox_claim(10, LEASE, T0 + timedelta(seconds=1))
    first = next(e for e in claimed if e.platform == "telegram")
    given = {"platform", "event_id", "key", "payload", "received_at", "user_id"}
    assert first.model_dump(include=given) == event(1).model_dump(include=given)
    assert (first.status, first.attempts, first.lease_until) == (
        "pending", 1, T0 + timedelta(seconds=1) + LEASE,
    )  # fmt: skip


async def test_a_burst_of_webhook_calls_with_repeats_counts_each_event_once(
    storage: Storage,
) -> None:
    """Ten calls at once, each carrying its own update and the same repeated one."""
    counts = await asyncio.gather(
        *(storage.inbox_put([event(n, f"c{n}"), event(0)]) for n in range(1, 11))
    )
    assert sorted(counts) == [1] * 9 + [2]  # the repeated update counted once, somewhere
    assert (await storage.queue_counts())["inbox.pending"] == 11


async def test_one_customers_messages_are_handled_one_at_a_time_in_order(
    storage: Storage,
) -> None:
    await storage.inbox_put([event(1, "ann"), event(2, "ann"), event(3, "bob"), event(4, "ann")])
    now = T0 + timedelta(seconds=1)
    first = await storage.inbox_claim(10, LEASE, now)
    assert payloads(first) == ["upd-1", "upd-3"]  # ann's oldest, and bob's
    assert await storage.inbox_claim(10, LEASE, now) == []  # ann's next waits for upd-1
    for handled in first:
        await storage.inbox_done(handled.id or 0, now)
    [second] = await storage.inbox_claim(10, LEASE, now)
    assert second.event_id == "upd-2"
    # upd-2 fails: it is retried later, and ann's upd-4 waits behind it
    later = now + timedelta(minutes=1)
    await storage.inbox_failed(second.id or 0, "TimeoutError: platform slow", later)
    assert await storage.inbox_claim(10, LEASE, now + timedelta(seconds=59)) == []
    [retried] = await storage.inbox_claim(10, LEASE, later)
    assert (retried.event_id, retried.attempts, retried.last_error) == (
        "upd-2", 2, "TimeoutError: platform slow",
    )  # fmt: skip
    # it fails again and is quarantined: it no longer holds ann up
    await storage.inbox_failed(retried.id or 0, "KeyError: 'date'", None)
    [third] = await storage.inbox_claim(10, LEASE, later)
    assert third.event_id == "upd-4"


async def test_a_crashed_workers_event_is_claimed_again_after_its_lease(storage: Storage) -> None:
    await storage.inbox_put([event(1)])
    [taken] = await storage.inbox_claim(10, LEASE, T0)
    assert await storage.inbox_claim(10, LEASE, T0 + LEASE) == []  # leased until T0 + LEASE
    [again] = await storage.inbox_claim(10, LEASE, T0 + LEASE + timedelta(seconds=1))
    assert (again.id, again.attempts) == (taken.id, 2)


async def test_claims_respect_the_limit_oldest_first(storage: Storage) -> None:
    await storage.inbox_put([event(n, customer=f"c{n}") for n in range(5)])
    assert payloads(await storage.inbox_claim(3, LEASE, T0)) == ["upd-0", "upd-1", "upd-2"]
    assert payloads(await storage.inbox_claim(3, LEASE, T0)) == ["upd-3", "upd-4"]


async def test_quarantined_events_are_listed_retried_dropped(storage: Storage) -> None:
    await storage.inbox_put([event(1, "ann"), event(2, "bob"), event(3, "cy")])
    claimed = await storage.inbox_claim(10, LEASE, T0)
    for poison in claimed[:2]:
        await storage.inbox_failed(poison.id or 0, f"ValueError: bad {poison.event_id}", None)
    await storage.inbox_done(claimed[2].id or 0, T0)
    quarantined = await storage.inbox_quarantined()
    assert [(e.event_id, e.status, e.last_error) for e in quarantined] == [
        ("upd-1", "quarantined", "ValueError: bad upd-1"),
        ("upd-2", "quarantined", "ValueError: bad upd-2"),
    ]
    assert payloads(await storage.inbox_quarantined(limit=1)) == ["upd-1"]
    assert await storage.inbox_claim(10, LEASE, T0 + timedelta(hours=1)) == []
    # an admin retries one (fresh attempts) and drops the other
    later = T0 + timedelta(hours=1)
    assert await storage.inbox_retry(quarantined[0].id or 0, later) is True
    assert await storage.inbox_retry(quarantined[0].id or 0, later) is False  # not quarantined
    assert await storage.inbox_drop(quarantined[1].id or 0) is True
    assert await storage.inbox_drop(quarantined[1].id or 0) is False
    assert await storage.inbox_drop(claimed[2].id or 0) is False  # done: only pruned
    [back] = await storage.inbox_claim(10, LEASE, later)
    assert (back.event_id, back.attempts) == ("upd-1", 1)
    assert await storage.inbox_quarantined() == []
    assert await storage.queue_counts() == {
        "inbox.pending": 1, "inbox.done": 1, "inbox.quarantined": 0,
        "outbox.pending": 0, "outbox.sent": 0, "outbox.dead": 0,
    }  # fmt: skip


async def test_handled_events_are_pruned_after_the_retention(storage: Storage) -> None:
    await storage.inbox_put([event(1, "a"), event(2, "b"), event(3, "c")])
    one, two, three = await storage.inbox_claim(10, LEASE, T0)
    await storage.inbox_done(one.id or 0, T0)
    await storage.inbox_done(two.id or 0, T0 + timedelta(days=8))
    await storage.inbox_failed(three.id or 0, "poison", None)
    assert await storage.inbox_prune(T0 + timedelta(days=7)) == 1  # the old handled one only
    counts = await storage.queue_counts()
    assert (counts["inbox.done"], counts["inbox.quarantined"]) == (1, 1)
    assert await storage.inbox_prune(T0 + timedelta(days=7)) == 0


# commit with the inbox and the outbox --------------------------------------------------------
async def test_an_answer_marks_its_event_done_and_owes_the_next_question(
    storage: Storage,
) -> None:
    await storage.create_session(session())
    await storage.inbox_put([event(1)])
    [tap] = await storage.inbox_claim(10, LEASE, T0)
    outcome = await storage.commit(
        "s1", 0, state=SessionState(locale="en", current=1), status="active", now=T0,
        answer=NINE, inbox_id=tap.id, outbox=[message("What should we do better?")],
    )  # fmt: skip
    assert outcome.ok
    counts = await storage.queue_counts()
    assert (counts["inbox.done"], counts["inbox.pending"], counts["outbox.pending"]) == (1, 0, 1)
    [owed] = await storage.outbox_claim(10, LEASE, T0)
    assert (owed.session_id, owed.address.user_id, texts([owed])) == (
        None, "42", ["What should we do better?"],
    )  # fmt: skip


async def test_a_notice_is_owed_with_the_first_claim_of_its_event_only(storage: Storage) -> None:
    """ "No survey waiting": the event's claim, its inbox row done and the notice, one
    transaction; a second claim of the same event owes nothing and leaves its row alone."""
    await storage.inbox_put([event(1), event(2, "other")])  # the same event, twice stored
    first, again = await storage.inbox_claim(10, LEASE, T0)
    assert await storage.claim_event("tg:hello", T0, inbox_id=first.id,
                                     outbox=[message("No survey is waiting")])  # fmt: skip
    assert not await storage.claim_event("tg:hello", T0, inbox_id=again.id,
                                         outbox=[message("No survey is waiting")])  # fmt: skip
    counts = await storage.queue_counts()
    assert (counts["inbox.done"], counts["outbox.pending"]) == (1, 1)
    assert texts(await storage.outbox_claim(10, LEASE, T0)) == ["No survey is waiting"]


async def test_a_losing_commit_leaves_its_event_pending_and_owes_nothing(
    storage: Storage,
) -> None:
    await storage.create_session(session())
    await storage.inbox_put([event(1), event(2, "other")])
    first, second = await storage.inbox_claim(10, LEASE, T0)
    state = SessionState(locale="en", current=1)
    won = await storage.commit("s1", 0, state=state, status="active", now=T0, answer=NINE,
                               inbox_id=first.id, outbox=[message("next")])  # fmt: skip
    assert won.ok
    for version, expected in ((0, "conflict"), (1, "duplicate")):  # stale, then same answer
        lost = await storage.commit(
            "s1", version, state=state, status="active", now=T0, answer=NINE,
            inbox_id=second.id, outbox=[message("twice"), message("thrice")],
        )  # fmt: skip
        assert lost.result == expected
    counts = await storage.queue_counts()
    assert (counts["inbox.pending"], counts["inbox.done"], counts["outbox.pending"]) == (1, 1, 1)
    assert texts(await storage.outbox_recent()) == ["next"]


async def test_concurrent_commits_with_queues_are_all_or_nothing(storage: Storage) -> None:
    await storage.create_session(session())
    await storage.inbox_put([event(n, f"c{n}") for n in range(10)])
    taps = await storage.inbox_claim(10, LEASE, T0)
    results = await asyncio.gather(*(
        storage.commit("s1", 0, state=SessionState(locale="en", current=1), status="active",
                       now=T0, answer=NINE, inbox_id=tap.id, outbox=[message(tap.event_id)])
        for tap in taps
    ))  # fmt: skip
    [winner] = [tap for tap, result in zip(taps, results, strict=True) if result.ok]
    assert texts(await storage.outbox_recent()) == [winner.event_id]
    counts = await storage.queue_counts()
    assert (counts["inbox.done"], counts["inbox.pending"]) == (1, 9)


async def test_a_started_survey_owes_its_first_question_once(storage: Storage) -> None:
    await storage.inbox_put([event(1)])
    [first] = await storage.inbox_claim(1, LEASE, T0)
    created = await storage.create_session(
        session("s1", idempotency_key="ticket-9"), inbox_id=first.id, outbox=[message("Q1")]
    )
    assert created.id == "s1"
    await storage.inbox_put([event(2)])  # the customer's /start, sent twice
    [retry] = await storage.inbox_claim(1, LEASE, T0)
    again = await storage.create_session(
        session("s2", idempotency_key="ticket-9"), inbox_id=retry.id, outbox=[message("Q1")]
    )
    assert again.id == "s1"  # the existing session, its question not owed a second time
    assert texts(await storage.outbox_recent()) == ["Q1"]
    assert (await storage.queue_counts())["inbox.done"] == 2


async def test_a_scheduled_survey_owes_its_question_with_the_change_that_sends_it(
    storage: Storage,
) -> None:
    await storage.create_session(session(status="scheduled"))
    sent = await storage.update_session(
        "s1", 0, status="active", outbox=[message("Q1", lane="bulk")]
    )
    assert sent.ok and sent.version == 1
    stale = await storage.update_session(  # a second worker, one version behind
        "s1", 0, status="active", outbox=[message("Q1 again", lane="bulk")]
    )
    assert stale.result == "conflict"
    [owed] = await storage.outbox_recent()
    assert (texts([owed]), owed.lane) == (["Q1"], "bulk")
    stored = await storage.get_session("s1")
    assert stored is not None and (stored.status, stored.version) == ("active", 1)


async def test_a_reminder_and_its_flag_are_one_change(storage: Storage) -> None:
    await storage.create_session(session())
    reminded = await storage.update_session(
        "s1", 0, reminded=True, outbox=[message("Still there?", lane="bulk"), message("P.S.")]
    )
    assert reminded.ok
    assert texts(await storage.outbox_recent()) == ["P.S.", "Still there?"]
    assert (
        await storage.update_session("gone", 0, reminded=True, outbox=[message("x")])
    ).result == "conflict"
    assert (await storage.queue_counts())["outbox.pending"] == 2
    stored = await storage.get_session("s1")
    assert stored is not None and stored.reminded


# outbox ------------------------------------------------------------------------------------
async def test_a_customers_reply_goes_before_bulk_sends_one_per_chat_in_order(
    storage: Storage,
) -> None:
    await storage.outbox_put([
        message("bulk to ann", "ann", lane="bulk"), message("bulk to bob", "bob", lane="bulk"),
        message("reply to cy", "cy"), message("reply to ann", "ann"),
        message("second reply to cy", "cy"), message("group", "cy", chat="-100"),
    ])  # fmt: skip
    assert texts(await storage.outbox_claim(1, LEASE, T0)) == ["reply to cy"]
    claimed = await storage.outbox_claim(10, LEASE, T0)
    # ann's reply waits behind ann's older bulk message; cy's second behind the first
    assert texts(claimed) == ["group", "bulk to ann", "bulk to bob"]
    assert await storage.outbox_claim(10, LEASE, T0) == []
    for sent in claimed:
        await storage.outbox_sent(sent.id or 0, f"m-{sent.id}", T0 + timedelta(seconds=1))
    assert texts(await storage.outbox_claim(10, LEASE, T0)) == ["reply to ann"]


async def test_the_edit_of_a_tapped_question_goes_beside_the_next_question_not_before_it(
    storage: Storage,
) -> None:
    def edit(text: str) -> OutboxMessage:
        return message(text).model_copy(update={"kind": "settle"})

    await storage.outbox_put([edit("9 chosen"), message("why 9?"), edit("again"),
                              message("thanks")])  # fmt: skip
    first = await storage.outbox_claim(10, LEASE, T0)
    assert texts(first) == ["9 chosen", "why 9?"]  # one of each stream at once
    assert {m.stream for m in first} == {"telegram:42/edits", "telegram:42"}
    assert await storage.outbox_claim(10, LEASE, T0) == []  # each stream: one at a time
    edited = next(m for m in first if m.kind == "settle")
    await storage.outbox_sent(edited.id or 0, None, T0)
    assert texts(await storage.outbox_claim(10, LEASE, T0)) == ["again"]  # its stream goes on


async def test_sending_is_retried_then_given_up(storage: Storage) -> None:
    await storage.outbox_put([message("first"), message("second")])
    [first] = await storage.outbox_claim(10, LEASE, T0)
    later = T0 + timedelta(seconds=5)
    await storage.outbox_retry(first.id or 0, later, "RetryAfter: 5")
    assert await storage.outbox_claim(10, LEASE, T0 + timedelta(seconds=4)) == []
    [again] = await storage.outbox_claim(10, LEASE, later)
    assert (again.id, again.attempts, again.last_error) == (first.id, 2, "RetryAfter: 5")
    await storage.outbox_dead(again.id or 0, "Forbidden: bot was blocked by the user")
    [second] = await storage.outbox_claim(10, LEASE, later)
    assert texts([second]) == ["second"]
    await storage.outbox_sent(second.id or 0, "777", later)
    [dead] = await storage.outbox_recent(status="dead")
    assert (dead.status, dead.last_error) == ("dead", "Forbidden: bot was blocked by the user")
    [sent] = await storage.outbox_recent(status="sent")
    assert (sent.platform_message_id, sent.sent_at, sent.lease_until) == ("777", later, None)
    assert [m.id for m in await storage.outbox_recent()] == [second.id, first.id]
    assert await storage.outbox_prune(later) == 0
    assert await storage.outbox_prune(later + timedelta(days=1)) == 1  # sent ones only
    assert [m.status for m in await storage.outbox_recent()] == ["dead"]


async def test_erasing_a_customer_removes_their_raw_events_and_messages(
    storage: Storage,
) -> None:
    await storage.inbox_put([event(1, "ann"), event(2, "bob"), event(3, "ann")])
    await storage.outbox_put([message("hi ann", "ann"), message("hi bob", "bob")])
    assert await storage.erase_user("telegram", "ann") == (0, 0)
    assert [e.user_id for e in await storage.inbox_claim(10, LEASE, T0)] == ["bob"]
    assert texts(await storage.outbox_recent()) == ["hi bob"]


async def test_the_queues_survive_a_copy_and_their_ids_continue(storage: Storage) -> None:
    await storage.inbox_put([event(1), event(2, "b")])
    await storage.outbox_put([message("hi")])
    dumped = {t: [row async for row in storage.dump_rows(t)] for t in ("inbox", "outbox")}
    await storage.clear_tables()
    for table, rows in dumped.items():
        assert await storage.load_rows(table, rows) == len(rows)
    assert await storage.inbox_put([event(1), event(3, "c")]) == 1  # upd-1 is still known
    claimed = await storage.inbox_claim(10, LEASE, T0)
    assert payloads(claimed) == ["upd-1", "upd-2", "upd-3"]
    assert await storage.outbox_put([message("again")]) == 1
    assert texts(await storage.outbox_recent()) == ["again", "hi"]


# several workers ------------------------------------------------------------------------------
async def test_two_workers_never_get_the_same_event_or_message(
    storage: Storage, second: Storage
) -> None:
    """Forty customers, three events each, two workers claiming at once: every event is
    handled once, each customer's in order, never two of a customer's at the same time."""
    events = [event(n * 40 + c, f"c{c}") for n in range(3) for c in range(40)]
    assert await storage.inbox_put(events) == 120
    handled: list[str] = []
    in_flight: set[str] = set()

    async def work(handle: Storage) -> None:
        while batch := await handle.inbox_claim(7, LEASE, T0):
            for e in batch:
                assert e.key not in in_flight, f"two events of {e.key} at once"
                in_flight.add(e.key)
            await asyncio.sleep(0)  # let the other worker claim meanwhile
            for e in batch:
                handled.append(e.event_id)
                in_flight.discard(e.key)
                await handle.inbox_done(e.id or 0, T0)

    await asyncio.gather(*(work(h) for h in [storage, second, storage, second]))
    assert sorted(handled) == sorted(e.event_id for e in events)  # each exactly once
    for c in range(40):
        mine = [h for h in handled if int(h.split("-")[1]) % 40 == c]
        assert mine == [f"upd-{n * 40 + c}" for n in range(3)]
    await storage.outbox_put([message(f"m{i}", f"c{i}") for i in range(60)])
    taken: list[str] = []

    async def send(handle: Storage) -> None:
        while batch := await handle.outbox_claim(5, LEASE, T0):
            taken.extend(texts(batch))
            await asyncio.sleep(0)

    await asyncio.gather(*(send(h) for h in [storage, second, storage, second]))
    assert sorted(taken) == sorted(f"m{i}" for i in range(60))


async def test_webhook_deliveries_have_their_own_lane_and_can_be_redelivered(
    storage: Storage,
) -> None:
    hook = OutboxMessage(
        address=Address(platform="telegram", user_id="ann", chat_id="webhook:evt_1:helpdesk"),
        kind="webhook", body='{"text": "evt_1"}', created_at=T0, lane="webhook",
    )  # fmt: skip
    await storage.outbox_put([hook, message("hi ann", "ann")])
    assert texts(await storage.outbox_claim(10, LEASE, T0)) == ["hi ann"]  # chat senders
    [claimed] = await storage.outbox_claim(10, LEASE, T0, lanes=("webhook",))
    assert (claimed.kind, claimed.attempts) == ("webhook", 1)
    await storage.outbox_dead(claimed.id or 0, "HTTP 500")
    [dead] = await storage.outbox_recent(status="dead", lane="webhook")
    assert dead.id == claimed.id
    assert await storage.outbox_recent(lane="bulk") == []
    later = T0 + timedelta(hours=1)
    assert not await storage.outbox_redeliver(dead.id or 0, later, lane="bulk")
    assert await storage.outbox_redeliver(dead.id or 0, later, lane="webhook")
    assert await storage.outbox_claim(10, LEASE, T0, lanes=("webhook",)) == []  # due later
    [again] = await storage.outbox_claim(10, LEASE, later, lanes=("webhook",))
    assert (again.id, again.attempts, again.body) == (dead.id, 1, hook.body)
    assert not await storage.outbox_redeliver(again.id or 0, later)  # pending: not redelivered
