"""Taps that must not count: someone else's, on answered, finished or expired surveys, and
forged buttons. Each gets a short alert (answerCallbackQuery) and records nothing."""

from __future__ import annotations

from datetime import timedelta

from storage.base import utcnow
from tests.support.telegram_harness import ANNA, BOB, ELENI, GROUP, STAFF, World, button, labels


def alert(text: str) -> dict[str, object]:
    return {"text": text, "show_alert": True}


def shown(answer: dict[str, object]) -> dict[str, object]:
    return {"text": answer["text"], "show_alert": answer["show_alert"]}


async def test_someone_else_tapping_a_survey_in_the_group_gets_an_alert(tg: World) -> None:
    anna, bob = tg.person(ANNA, chat=GROUP), tg.person(BOB, chat=GROUP)
    message = anna.says("the app crashes")
    tg.person(STAFF, chat=GROUP).says("/survey csat", reply_to=message["message"]["message_id"])
    question = await anna.receives()
    assert shown(await bob.taps(question, "No")) == alert("This survey is for Anna.")
    assert labels(anna.message_now(question)) == [["Yes", "No"]]  # untouched
    assert await tg.answers() == []
    await anna.taps(question, "Yes")
    assert (await anna.receives())["text"].startswith("Anna, Thank you for your feedback!")
    assert await tg.answers() == [("csat", "satisfied", 1)]


async def test_a_double_tap_and_a_tap_on_an_answered_question_count_once(tg: World) -> None:
    anna = tg.person(ANNA)
    anna.says("/start nps")
    score = await anna.receives()
    # two taps in quick succession: both reach the bot before it answers either
    nine, ten = (tg.fake.tap(tg.fake.users[ANNA], score, button(score, v)) for v in ("9", "10"))
    await tg.fake.wait_for(lambda: len(tg.fake.callback_answers) == 2)
    by_query = {a["callback_query_id"]: a for a in tg.fake.callback_answers}
    assert shown(by_query[nine["callback_query"]["id"]]) == {"text": None, "show_alert": False}
    assert shown(by_query[ten["callback_query"]["id"]]) == alert(
        "You have already answered this question."
    )
    follow_up = await anna.receives()
    assert follow_up["text"] == "We're glad to hear it! What did you like most?"
    assert anna.nothing_new()  # one follow-up, not two
    assert await tg.answers() == [("nps", "score", 9)]


async def test_finished_and_expired_surveys_answer_with_alerts(tg: World) -> None:
    anna, eleni = tg.person(ANNA), tg.person(ELENI)
    anna.says("/start csat")
    question = await anna.receives()
    await anna.taps(question, "Yes")
    await anna.receives()
    answer = await anna.taps(question, button(question, "No"), strict=False)
    assert shown(answer) == alert("You have already completed this survey. Thank you!")

    start = eleni.says("/start csat")
    greek = await eleni.receives()
    session = await tg.active_session(start)
    past = utcnow() - timedelta(minutes=1)  # 72 hours later, as far as the survey knows
    expired = await tg.svc.storage.update_session(session.id, session.version, expires_at=past)
    assert expired.ok
    answer = await eleni.taps(greek, "Ναι")
    assert shown(answer) == alert("Αυτή η έρευνα έχει λήξει. Σας ευχαριστούμε πάντως!")
    assert await tg.answers() == [("csat", "satisfied", 1)]  # Anna's only


async def test_forged_or_unparsable_callback_data_is_refused(tg: World) -> None:
    anna = tg.person(ANNA)
    anna.says("/start csat")
    question = await anna.receives()
    invalid = alert("This button is not valid any more.")
    for data in ("garbage", "sb1:AAAAAAAAAAAA:0:1", button(question, "Yes")[:-1] + "7"):
        assert shown(await anna.taps(question, data, strict=False)) == invalid
    assert await tg.answers() == []
    assert labels(anna.message_now(question)) == [["Yes", "No"]]
