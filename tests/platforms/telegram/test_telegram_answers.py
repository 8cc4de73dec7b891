"""Customers answer on Telegram what only Telegram asks of them (the stories every surface
shares are in tests/stories/); exactly the answers they gave are recorded."""

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


async def test_start_without_a_flow_explains_how_to_open_a_survey(tg: World) -> None:
    anna = tg.person(ANNA)
    anna.says("/start")
    assert (await anna.receives())["text"].startswith("Hello! Open the survey link")
    assert await tg.answers() == []
