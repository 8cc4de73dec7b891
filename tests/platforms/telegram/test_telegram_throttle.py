"""A customer who starts the same survey again within its throttle window is thanked, not
surveyed again: one answer counted, whoever starts the survey."""

from __future__ import annotations

from tests.support.telegram_harness import ANNA, ELENI, World


async def test_anna_starting_nps_again_after_answering_is_thanked_and_counted_once(
    tg: World,
) -> None:
    anna = tg.person(ANNA)
    anna.says("/start nps")
    score = await anna.receives()
    await anna.taps(score, "9")
    await anna.receives()  # the follow-up question
    anna.says("/skip")
    await anna.receives()  # thanks
    for _ in range(3):
        anna.says("/start nps")
        assert (await anna.receives())["text"] == "You already told us recently. Thank you!"
    assert await tg.answers() == [("nps", "score", 9)]


async def test_eleni_is_thanked_in_greek(tg: World) -> None:
    eleni = tg.person(ELENI)
    eleni.says("/start csat")
    await eleni.receives()
    eleni.says("/start csat")
    assert (await eleni.receives())["text"] == "Μας το έχετε ήδη πει πρόσφατα. Σας ευχαριστούμε!"
