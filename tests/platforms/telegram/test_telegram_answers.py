"""Customers answer every question type on Telegram, by tapping or by typing, in English,
Greek and Lithuanian; exactly the answers they gave are recorded."""

from __future__ import annotations

from tests.support.telegram_harness import ANNA, ELENI, RASA, World, labels


async def test_rating_one_to_five_then_a_choice_by_tapping(tg: World) -> None:
    anna = tg.person(ANNA)
    anna.says("/start visit")
    rating = await anna.receives()
    assert rating["text"] == "How was your visit?"
    assert labels(rating) == [["1", "2", "3", "4", "5"]]
    await anna.taps(rating, "4")
    choice = await anna.receives()
    assert labels(choice) == [["Search"], ["A friend"], ["An ad"]]
    assert anna.message_now(rating)["text"] == "How was your visit?\n\nYour answer: 4"
    await anna.taps(choice, "A friend")
    assert (await anna.receives())["text"] == "Thank you for your feedback!"
    assert anna.message_now(choice)["text"] == "How did you find us?\n\nYour answer: A friend"
    assert await tg.answers() == [("visit", "rating", 4), ("visit", "channel", "friend")]


async def test_customer_taps_3_on_nps_and_skips_the_comment_with_skip(tg: World) -> None:
    anna = tg.person(ANNA)
    anna.says("/start nps")
    score = await anna.receives()
    assert score["text"] == (
        "How likely are you to recommend us to a friend or colleague?\n"
        "0 = Not at all likely · 10 = Extremely likely"
    )
    await anna.taps(score, "3")
    why = await anna.receives()
    assert why["text"].startswith("Thank you for your honesty.")
    anna.says("/skip")
    assert (await anna.receives())["text"] == "Thank you for taking the time to answer!"
    assert await tg.answers() == [("nps", "score", 3)]  # a skipped question exports nothing


async def test_the_skip_button_under_an_optional_text_question(tg: World) -> None:
    anna = tg.person(ANNA)
    start = anna.says("/start ces")
    effort = await anna.receives()
    assert labels(effort) == [["1", "2", "3", "4", "5", "6", "7"]]
    await anna.taps(effort, "7")
    comment = await anna.receives()
    await anna.taps(comment, "Skip")
    assert (await anna.receives())["text"].startswith("Thank you! Your feedback helps us")
    assert anna.message_now(comment)["text"].endswith("Your answer: Skipped")
    assert await tg.answers() == [("ces", "effort", 7)]
    session = await tg.svc.storage.session_by_key(f"tg-update:{start['update_id']}")
    assert session is not None and session.status == "completed"


async def test_customer_types_9_then_a_comment_and_gets_thanks_in_greek(tg: World) -> None:
    eleni = tg.person(ELENI)
    eleni.says("/start nps")
    score = await eleni.receives()
    assert score["text"].startswith("Πόσο πιθανό είναι να μας συστήσετε")
    eleni.says("9")
    assert (await eleni.receives())["text"] == "Χαιρόμαστε πολύ! Τι σας άρεσε περισσότερο;"
    eleni.says("Πολύ γρήγορη εξυπηρέτηση")
    thanks = await eleni.receives()
    assert thanks["text"] == "Σας ευχαριστούμε που αφιερώσατε χρόνο για να απαντήσετε!"
    assert await tg.answers() == [
        ("nps", "score", 9), ("nps", "promoter_reason", "Πολύ γρήγορη εξυπηρέτηση")
    ]  # fmt: skip
    [row, _] = [r async for r in tg.svc.storage.export_rows()]
    assert row.locale == "el"


async def test_greek_customer_types_nai_to_the_csat_question(tg: World) -> None:
    eleni = tg.person(ELENI)
    eleni.says("/start csat")
    question = await eleni.receives()
    assert question["text"] == "Μείνατε ικανοποιημένοι από τη βοήθεια που λάβατε;"
    assert labels(question) == [["Ναι", "Όχι"]]
    eleni.says("ναι")
    thanks = await eleni.receives()
    assert thanks["text"].startswith("Σας ευχαριστούμε για τα σχόλιά σας!")
    assert await tg.answers() == [("csat", "satisfied", 1)]


async def test_lithuanian_customer_types_taip_after_a_wrong_answer_gets_a_hint(
    tg: World,
) -> None:
    tg.fake.users[RASA].language_code = "lt-LT"  # primary subtag decides
    rasa = tg.person(RASA)
    rasa.says("/start csat")
    question = await rasa.receives()
    assert question["text"] == "Ar jus tenkina gauta pagalba?"
    rasa.says("gal būt")
    again = await rasa.receives()
    assert again["text"] == (
        "Paspauskite „Taip“ arba „Ne“ arba parašykite taip arba ne.\n\n"
        "Ar jus tenkina gauta pagalba?"
    )
    assert labels(again) == [["Taip", "Ne"]]
    rasa.says("taip")
    assert (await rasa.receives())["text"].startswith("Dėkojame už atsiliepimą!")
    assert await tg.answers() == [("csat", "satisfied", 1)]


async def test_out_of_range_number_gets_the_scale_hint_and_the_same_question(tg: World) -> None:
    anna = tg.person(ANNA)
    anna.says("/start ces")
    await anna.receives()
    anna.says("12")
    again = await anna.receives()
    assert again["text"].startswith("Please choose a number from 1 to 7.\n\nHow easy was it")
    anna.says("/skip")  # the effort question is not optional
    refused = await anna.receives()
    assert refused["text"].startswith("This question can't be skipped.")
    anna.says("5")
    comment = await anna.receives()
    anna.says("Fast, thanks")
    await anna.receives()
    assert comment["text"] == "Is there anything else you would like to add?"
    assert await tg.answers() == [("ces", "effort", 5), ("ces", "comment", "Fast, thanks")]


async def test_text_with_no_survey_under_way_gets_a_short_notice(tg: World) -> None:
    anna = tg.person(ANNA)
    anna.says("hello?")
    assert (await anna.receives())["text"] == "There is no survey waiting for you right now."
    anna.says("/start")
    assert (await anna.receives())["text"].startswith("Hello! Open the survey link")
    assert await tg.answers() == []
