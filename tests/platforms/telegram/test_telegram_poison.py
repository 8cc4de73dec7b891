"""Poison updates: an update python-telegram-bot cannot parse used to be fetched again and
again, blocking every customer behind it and filling the log. Now it is stored raw, retried,
quarantined and listed by `surveybot inbox`, while everyone else is served."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.fakes.telegram_api import FakeTelegram
from tests.support.poison import QUICK_QUARANTINE, poison_lines, surveybot
from tests.support.telegram_harness import ANNA, BOB, RASA, Person, running_bot

CUSTOMERS = range(7001, 7021)


async def test_a_poison_update_is_quarantined_and_twenty_customers_are_served(
    fake: FakeTelegram, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fast = settings.model_copy(update={"inbox": QUICK_QUARANTINE})
    for uid in CUSTOMERS:
        fake.user(uid, f"Customer {uid}", language_code="en")
    caplog.set_level(logging.INFO)
    async with running_bot(fake, fast) as tg:
        fake.unparseable(ANNA, "reply_without_date")  # a reply whose original lacks `date`
        fake.unparseable(BOB, "not_an_object")  # `message` is a string
        fake.unparseable(RASA, "sender_without_name")  # `from` lacks the required first_name
        fake.unparseable(BOB, "unknown_type")  # newer than the library: nothing of ours
        people = [tg.person(uid) for uid in CUSTOMERS]
        for person in people:
            person.says("/start csat")

        async def answers(person: Person) -> None:
            question = await person.receives()
            await person.taps(question, "Yes")
            follow_up = await person.receives()  # the next question: served
            assert follow_up["text"] != question["text"]

        await asyncio.gather(*(answers(p) for p in people))
        rows = await tg.answers()
        assert sorted(r[1:] for r in rows) == [("satisfied", 1)] * len(people)
        await fake.wait_for(lambda: not fake.pending_updates, what="every update confirmed")
        anna = tg.person(ANNA)
        anna.says("/start csat")  # Anna is not stuck behind her poison update
        assert (await anna.receives())["text"] == "Were you satisfied with the help you received?"
        await fake.wait_for(lambda: len(poison_lines(caplog)) == 3, what="the poisons quarantined")
        assert len(await tg.svc.storage.inbox_quarantined()) == 3

    assert len(poison_lines(caplog)) == 3  # one line per poison update, not one per retry
    assert all("hello?" not in r.getMessage() for r in poison_lines(caplog))  # never the text

    config = tmp_path / "config.yaml"
    config.write_text(f"storage: {{url: '{settings.storage.url}'}}\n", encoding="utf-8")
    listing = await surveybot("inbox", "list", "--config", str(config))
    assert listing.exit_code == 0, listing.output
    lines = listing.output.strip().splitlines()
    assert len(lines) == 3 and all("telegram" in line for line in lines), listing.output
    assert "KeyError: 'date'" in lines[0]
    first_id = lines[0].split()[0]
    dropped = await surveybot("inbox", "drop", first_id, "--config", str(config))
    assert dropped.exit_code == 0, dropped.output
    after = await surveybot("inbox", "list", "--config", str(config))
    assert len(after.output.strip().splitlines()) == 2
