"""Forum topics: a survey asked in a topic of a forum supergroup stays in that topic.

The real python-telegram-bot against the fake Bot API. The support group "Help desk" has topics
"Deliveries" (7) and "Billing" (9); Anna asks in Deliveries, Maria (staff) answers there.
"""

from __future__ import annotations

from tests.support.telegram_harness import ANNA, STAFF, World, labels

FORUM = -1009876543210
DELIVERIES, BILLING = 7, 9


def forum(tg: World) -> None:
    tg.fake.group(FORUM, "Help desk", forum=True)
    tg.fake.topic(FORUM, DELIVERIES, "Deliveries")
    tg.fake.topic(FORUM, BILLING, "Billing")


def in_forum(tg: World) -> list[dict[str, object]]:
    return [s for s in tg.fake.sent if s["chat_id"] == FORUM]


async def test_a_survey_asked_in_a_topic_stays_in_that_topic(tg: World) -> None:
    forum(tg)
    asked = tg.fake.send_text(ANNA, "Where is my parcel?", chat=FORUM, thread=DELIVERIES)
    tg.fake.send_text(STAFF, "/survey csat", chat=FORUM, thread=DELIVERIES,
                      reply_to_message_id=asked["message"]["message_id"])  # fmt: skip
    anna = tg.person(ANNA, chat=FORUM)
    question = await anna.receives()
    assert question["message_thread_id"] == DELIVERIES
    assert labels(anna.message_now(question)) == [["Yes", "No"]]

    await anna.taps(question, "No")
    follow_up = await anna.receives()
    assert follow_up["message_thread_id"] == DELIVERIES
    assert "What went wrong" in str(follow_up["text"])

    # a message in another topic is not an answer to this survey
    tg.fake.send_text(ANNA, "Also, my invoice is wrong", chat=FORUM, thread=BILLING)
    tg.fake.send_text(ANNA, "The courier never came", chat=FORUM, thread=DELIVERIES)
    thanks = await anna.receives()
    assert thanks["message_thread_id"] == DELIVERIES
    assert str(thanks["text"]).startswith("Anna, Thank you for your feedback!")
    assert all(s["message_thread_id"] == DELIVERIES for s in in_forum(tg))

    rows = [r async for r in tg.svc.storage.export_rows()]
    assert [(r.question_id, r.value if r.text is None else r.text) for r in rows] == [
        ("satisfied", 0), ("what_went_wrong", "The courier never came"),
    ]  # fmt: skip
    assert {(r.chat_id, r.thread_id) for r in rows} == {(str(FORUM), str(DELIVERIES))}
    assert rows[0].context == {"agent": "Maria"}  # credited to the staff member who asked


async def test_refusals_in_a_topic_are_answered_in_that_topic(tg: World) -> None:
    forum(tg)
    asked = tg.fake.send_text(ANNA, "Hello?", chat=FORUM, thread=BILLING)
    tg.fake.send_text(ANNA, "/survey csat", chat=FORUM, thread=BILLING,
                      reply_to_message_id=asked["message"]["message_id"])  # fmt: skip
    refusal = await tg.person(ANNA, chat=FORUM).receives()
    assert refusal["message_thread_id"] == BILLING
    assert str(refusal["text"]).startswith("Sorry")  # not staff: refused, in the topic
