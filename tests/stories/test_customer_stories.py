"""Customer stories told once and run on every surface: the runtime with a recording adapter,
Telegram (python-telegram-bot against the fake Bot API) and Slack (bolt against the fake Slack,
Socket Mode and HTTP). What a customer sees and what is recorded must not depend on where they
answer. The vocabulary is tests/support/story.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.story import SURFACES, Customer, Surface, customer, surface


@pytest.fixture(params=SURFACES)
async def where(
    request: pytest.FixtureRequest, tmp_path: Path, flows_dir: Path
) -> AsyncIterator[Surface]:
    async with surface(request.param, tmp_path, flows_dir) as place:
        yield place


def greek(where: Surface) -> Customer:
    return customer(where, "el")


async def test_customer_taps_9_types_a_comment_and_gets_thanks_in_greek(where: Surface) -> None:
    eleni = await greek(where).start("nps")
    eleni.expect_question("Πόσο πιθανό είναι να μας συστήσετε", labels=[str(n) for n in range(11)])
    await eleni.tap("9")
    eleni.expect_choice_shown("9")
    eleni.expect_question("Χαιρόμαστε πολύ! Τι σας άρεσε περισσότερο;", labels=["Παράλειψη"])
    await eleni.type("Πολύ γρήγορη εξυπηρέτηση")
    eleni.expect_thanks(locale="el")
    assert await eleni.answers() == [
        ("score", 9), ("promoter_reason", "Πολύ γρήγορη εξυπηρέτηση")
    ]  # fmt: skip


async def test_customer_types_9_and_why_in_lithuanian(where: Surface) -> None:
    ruta = await customer(where, "lt").start("nps")
    ruta.expect_question("Kiek tikėtina, kad rekomenduotumėte mus draugui")
    ruta.expect_question("0 = Visiškai netikėtina · 10 = Labai tikėtina")
    await ruta.type("9")
    ruta.expect_question("Labai džiaugiamės! Kas jums labiausiai patiko?")
    await ruta.type("Greita pagalba")
    ruta.expect_thanks(locale="lt")
    assert await ruta.answers() == [("score", 9), ("promoter_reason", "Greita pagalba")]


async def test_garbage_gets_a_localized_hint_and_the_same_question(where: Surface) -> None:
    ruta = await customer(where, "lt").start("nps")
    await ruta.type("labai gerai")
    ruta.expect_question(
        "Kiek tikėtina",
        hint="Pasirinkite skaičių nuo 0 iki 10.",
        labels=[str(n) for n in range(11)],
    )
    await ruta.type("10")
    assert await ruta.answers() == [("score", 10)]


async def test_customer_taps_3_on_nps_and_skips_the_comment_with_the_skip_button(
    where: Surface,
) -> None:
    amy = await customer(where, "en").start("nps")
    await amy.tap("3")
    amy.expect_choice_shown("3")
    amy.expect_question("Thank you for your honesty.", labels=["Skip"])
    await amy.tap("Skip")
    amy.expect_choice_shown("Skipped")
    amy.expect_thanks(locale="en")
    assert await amy.answers() == [("score", 3)]  # a skipped question exports nothing


async def test_the_effort_comment_skipped_with_slash_skip_in_greek(where: Surface) -> None:
    nikos = await greek(where).start("ces")
    nikos.expect_question("Πόσο εύκολο ήταν", labels=[str(n) for n in range(1, 8)])
    await nikos.tap("2")
    await nikos.skip()
    nikos.expect_thanks(locale="el")
    assert await nikos.answers() == [("effort", 2)]


async def test_out_of_range_and_slash_skip_on_a_required_question_explain_and_ask_again(
    where: Surface,
) -> None:
    amy = await customer(where, "en").start("ces")
    await amy.type("12")
    amy.expect_question("How easy was it", hint="Please choose a number from 1 to 7.")
    await amy.skip()
    amy.expect_question("How easy was it", hint="This question can't be skipped.")
    await amy.type("5")
    amy.expect_question("Is there anything else you would like to add?")
    await amy.type("Fast, thanks")
    amy.expect_thanks(locale="en")
    assert await amy.answers() == [("effort", 5), ("comment", "Fast, thanks")]


async def test_text_with_no_survey_waiting_gets_a_friendly_notice(where: Surface) -> None:
    rasa = customer(where, "lt")
    await rasa.type("labas")
    rasa.expect_notice("Šiuo metu jūsų nelaukia jokia apklausa.")
    assert await rasa.answers() == []
