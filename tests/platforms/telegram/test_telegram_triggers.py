"""Every way a Telegram survey starts: deep links, invite tokens, staff /survey in a group and
in a private chat, and what everybody else gets."""

from __future__ import annotations

import re

from tests.support.telegram_harness import ANNA, BOB, DMITRI, GROUP, STAFF, World, labels


async def test_deep_link_start_csat_asks_yes_no_and_records_the_tap(tg: World) -> None:
    anna = tg.person(ANNA)
    anna.says("/start csat")
    question = await anna.receives()
    assert question["text"] == "Were you satisfied with the help you received?"
    assert labels(question) == [["Yes", "No"]]
    assert (await anna.taps(question, "Yes"))["show_alert"] is False
    thanks = await anna.receives()
    assert thanks["text"] == "Thank you for your feedback! It helps us improve our support."
    assert await tg.answers() == [("csat", "satisfied", 1)]
    [row] = [r async for r in tg.svc.storage.export_rows()]
    assert (row.platform, row.user_id, row.chat_id) == ("telegram", str(ANNA), None)
    assert (row.triggered_by, row.locale) == ("telegram:start", "en")


async def test_an_invite_token_starts_its_survey_once(tg: World) -> None:
    token = await tg.svc.dispatcher.invite("ces", {"ticket_id": "T-7"})
    anna = tg.person(ANNA)
    anna.says(f"/start {token}")
    question = await anna.receives()
    assert question["text"].startswith("How easy was it to get your issue resolved?")
    assert "1 = Very difficult · 7 = Very easy" in question["text"]
    await anna.taps(question, "6")
    comment = await anna.receives()
    assert labels(comment) == [["Skip"]]

    anna.says(f"/start {token}")  # the same link again: already used
    assert (await anna.receives())["text"] == (
        "This survey link is not valid or has already been used."
    )
    assert await tg.answers() == [("ces", "effort", 6)]
    [row] = [r async for r in tg.svc.storage.export_rows()]
    assert row.context == {"ticket_id": "T-7"} and row.triggered_by == "telegram:start"


async def test_staff_reply_with_survey_posts_it_in_the_group_addressed_to_the_customer(
    tg: World,
) -> None:
    anna_dm = tg.person(ANNA)
    anna = tg.person(ANNA, chat=GROUP)
    maria = tg.person(STAFF, chat=GROUP)
    complaint = anna.says("my order #42 arrived late")
    maria.says("/survey csat ticket_id=42", reply_to=complaint["message"]["message_id"])
    question = await anna.receives()
    assert question["text"] == "Anna, Were you satisfied with the help you received?"
    [sent] = [c.params for c in tg.fake.method_calls("sendMessage")
              if c.params["chat_id"] == str(GROUP)]  # fmt: skip
    assert sent["parse_mode"] == "HTML"  # the name is a mention: Anna gets notified
    assert sent["text"].startswith(f'<a href="tg://user?id={ANNA}">Anna</a>, Were you')
    await anna.taps(question, "No")
    follow_up = await anna.receives()
    assert follow_up["text"].startswith("Anna, We're sorry to hear that.")
    anna.says("The courier never called me")
    thanks = await anna.receives()
    assert thanks["text"] == "Anna, Thank you for your feedback! It helps us improve our support."
    settled = anna.message_now(question)
    assert settled["text"] == (
        "Anna, Were you satisfied with the help you received?\n\nYour answer: No"
    )
    assert "reply_markup" not in settled
    assert await tg.answers() == [
        ("csat", "satisfied", 0), ("csat", "what_went_wrong", "The courier never called me")
    ]  # fmt: skip
    rows = [r async for r in tg.svc.storage.export_rows()]
    assert {(r.chat_id, r.triggered_by) for r in rows} == {(str(GROUP), f"telegram:{STAFF}")}
    assert rows[0].context == {"ticket_id": "42", "agent": "Maria"}  # the staff who asked
    assert anna_dm.nothing_new()  # nothing went to Anna's private chat


async def test_staff_in_private_sends_to_a_user_id_and_gets_a_confirmation(tg: World) -> None:
    maria, anna = tg.person(STAFF), tg.person(ANNA)
    maria.says(f"/survey nps {ANNA} agent=maria")
    question = await anna.receives()
    assert labels(question) == [["0", "1", "2", "3", "4", "5"], ["6", "7", "8", "9", "10"]]
    assert (await maria.receives())["text"] == f"Survey “nps” sent to {ANNA}."
    await anna.taps(question, "10")
    assert (await anna.receives())["text"] == "We're glad to hear it! What did you like most?"
    [row] = [r async for r in tg.svc.storage.export_rows()]
    assert (row.value, row.triggered_by, row.context) == (10, "telegram:9001", {"agent": "maria"})

    maria.says(f"/survey nps {ANNA}")  # again within the throttle window
    refusal = await maria.receives()
    assert refusal["text"].startswith("Not sent: telegram:5001 was asked 'nps'")
    assert anna.nothing_new()


async def test_a_customer_who_never_started_the_bot_gets_an_invite_link_via_staff(
    tg: World,
) -> None:
    maria, dmitri = tg.person(STAFF), tg.person(DMITRI)
    maria.says(f"/survey csat {DMITRI} ticket_id=9")
    answer = (await maria.receives())["text"]
    assert answer.startswith(f"I can't write to {DMITRI}: they have not started a chat with me")
    match = re.search(r"https://t\.me/surveybot_test_bot\?start=([A-Za-z0-9_-]+)$", answer)
    assert match, answer
    assert dmitri.nothing_new()

    dmitri.says(f"/start {match[1]}")  # Dmitri opens the link: Telegram sends /start <token>
    question = await dmitri.receives()
    assert question["text"] == "Ar jus tenkina gauta pagalba?"  # his Telegram is Lithuanian
    assert labels(question) == [["Taip", "Ne"]]
    await dmitri.taps(question, "Taip")
    assert (await dmitri.receives())["text"].startswith("Dėkojame už atsiliepimą!")
    [row] = [r async for r in tg.svc.storage.export_rows()]
    assert (row.user_id, row.value, row.locale, row.context) == (
        str(DMITRI), 1, "lt", {"ticket_id": "9"}
    )  # fmt: skip


async def test_non_staff_are_refused_politely_and_nothing_is_sent(tg: World) -> None:
    bob, bob_in_group = tg.person(BOB), tg.person(BOB, chat=GROUP)
    anna = tg.person(ANNA, chat=GROUP)
    bob.says(f"/survey csat {ANNA}")
    refusal = (
        "Sorry, only our support team can send surveys. If that should include you, ask an "
        "admin to add your Telegram ID 5004 to staff.telegram in config.yaml."
    )
    assert (await bob.receives())["text"] == refusal
    message = anna.says("hello?")
    bob_in_group.says("/survey csat", reply_to=message["message"]["message_id"])
    assert (await bob_in_group.receives())["text"] == refusal
    assert [s["text"] for s in tg.fake.sent] == [refusal] * 2
    assert await tg.svc.storage.active_session("telegram", str(ANNA), str(GROUP)) is None
    assert await tg.svc.storage.active_session("telegram", str(ANNA), None) is None


async def test_unknown_flow_ids_get_the_list_of_available_surveys(tg: World) -> None:
    maria, eleni = tg.person(STAFF), tg.person(5002)
    maria.says(f"/survey satisfaction {ANNA}")
    assert (await maria.receives())["text"] == (
        "There is no survey called “satisfaction”. Available surveys: ces, csat, nps, visit."
    )
    eleni.says("/start satisfaction")
    assert (await eleni.receives())["text"] == (
        "Δεν υπάρχει έρευνα με το όνομα «satisfaction». Διαθέσιμες έρευνες: ces, csat, nps, visit."
    )
    maria.says("/survey")
    assert (await maria.receives())["text"].startswith("Usage: /survey <flow> <user id>")
    assert await tg.answers() == []
