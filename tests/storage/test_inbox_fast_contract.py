"""The storage contract for events handled before they are stored (the inbox's fast path, on
every backend): the commit that answers such an event stores it, done, in the same transaction;
an event the handler still holds is stored leased to it, or pending with a retry time when its
handling failed; whichever of two writes of one event comes second never undoes a done event.
"""

from __future__ import annotations

from datetime import timedelta

from bot.survey.engine import SessionState
from storage.base import InboxEvent, InboxRef, Storage
from tests.storage.test_queue_contract import LEASE, NINE, T0, event, message, session, texts


def held(n: int, customer: str = "42") -> InboxEvent:
    """Event ``n`` as its handler keeps it when the handling takes long: leased to it."""
    return event(n, customer).model_copy(update={"attempts": 1, "lease_until": T0 + LEASE})


async def answered(storage: Storage, sid: str, ref: InboxRef) -> bool:
    """Session ``sid`` answered 9, carrying the event ``ref``."""
    state = SessionState(locale="en", current=1)
    outcome = await storage.commit(
        sid, 0, state=state, status="active", now=T0, answer=NINE, inbox_id=ref
    )
    return outcome.ok


async def stored(storage: Storage) -> dict[str, str]:
    counts = await storage.queue_counts()
    return {k.removeprefix("inbox."): str(v) for k, v in counts.items() if k.startswith("inbox.")}


async def test_an_answer_to_an_event_not_yet_stored_stores_it_done(storage: Storage) -> None:
    await storage.create_session(session())
    outcome = await storage.commit(
        "s1", 0, state=SessionState(locale="en", current=1), status="active", now=T0,
        answer=NINE, inbox_id=event(1), outbox=[message("What should we do better?")],
    )  # fmt: skip
    assert outcome.ok
    assert (await stored(storage))["done"] == "1"
    assert await storage.inbox_claim(10, LEASE, T0 + LEASE * 2) == []  # nothing to handle again
    assert texts(await storage.outbox_claim(10, LEASE, T0)) == ["What should we do better?"]


async def test_a_refused_answer_does_not_store_its_event(storage: Storage) -> None:
    await storage.create_session(session())
    state = SessionState(locale="en", current=1)
    assert (await storage.commit("s1", 0, state=state, status="active", now=T0, answer=NINE,
                                 inbox_id=event(1))).ok  # fmt: skip
    lost = await storage.commit("s1", 0, state=state, status="active", now=T0, answer=NINE,
                                inbox_id=event(2), outbox=[message("twice")])  # fmt: skip
    assert lost.result == "conflict"
    assert await storage.inbox_keep(held(2)) is not None  # its handler then keeps it itself
    assert (await stored(storage))["done"] == "1"
    assert (await stored(storage))["pending"] == "1"
    assert await storage.outbox_recent() == []


async def test_a_new_survey_and_a_notice_store_their_event_done(storage: Storage) -> None:
    created = await storage.create_session(session("s1", idempotency_key="k"), inbox_id=event(1))
    assert created.id == "s1"
    assert await storage.claim_event("tg:hello", T0, inbox_id=event(2),
                                     outbox=[message("No survey is waiting")])  # fmt: skip
    assert not await storage.claim_event("tg:hello", T0, inbox_id=event(3))  # owes nothing
    counts = await stored(storage)
    assert (counts["done"], counts["pending"]) == ("2", "0")


async def test_an_event_kept_while_its_handler_holds_it_waits_for_nobody_else(
    storage: Storage,
) -> None:
    """A slow handling is stored leased to its handler: the worker does not take it, and the
    customer's next event waits behind it; the handler's commit then marks it done."""
    row = await storage.inbox_keep(held(1))
    assert row is not None
    await storage.inbox_put([event(2)])
    assert await storage.inbox_claim(10, LEASE, T0) == []  # leased, and the head of its key
    await storage.create_session(session())
    assert await answered(storage, "s1", row)
    assert payloads_of(await storage.inbox_claim(10, LEASE, T0)) == ["upd-2"]


async def test_the_second_write_of_one_event_never_undoes_done(storage: Storage) -> None:
    """The commit that carries the event lands first, the handler's 'still holding it' second
    (or the other way round): done either way, stored once."""
    await storage.create_session(session())
    assert await answered(storage, "s1", event(1))
    assert await storage.inbox_keep(held(1)) is None  # already done
    await storage.create_session(session("s2", user="43"))
    assert await storage.inbox_keep(held(2, "43")) is not None
    assert await answered(storage, "s2", event(2, "43"))
    counts = await stored(storage)
    assert (counts["done"], counts["pending"]) == ("2", "0")
    assert await storage.inbox_pending_keys() == set()


async def test_a_failed_handling_is_kept_for_a_retry(storage: Storage) -> None:
    retry_at = T0 + timedelta(seconds=5)
    failed = event(1).model_copy(
        update={"attempts": 1, "next_attempt_at": retry_at, "last_error": "KeyError: 'date'"}
    )
    assert await storage.inbox_keep(failed) is not None
    await storage.inbox_put([event(2, "43")])
    assert await storage.inbox_pending_keys() == {("telegram", "telegram:chat:42"),
                                                  ("telegram", "telegram:chat:43")}  # fmt: skip
    assert await storage.inbox_pending_keys([("telegram", "telegram:chat:42"),
                                             ("telegram", "telegram:chat:44")]) == {
        ("telegram", "telegram:chat:42")}  # fmt: skip
    assert payloads_of(await storage.inbox_claim(10, LEASE, T0)) == ["upd-2"]  # 1: not yet
    [again] = await storage.inbox_claim(10, LEASE, retry_at)
    assert (again.event_id, again.attempts, again.last_error) == ("upd-1", 2, "KeyError: 'date'")


def payloads_of(events: list[InboxEvent]) -> list[str]:
    return [e.event_id for e in events]
