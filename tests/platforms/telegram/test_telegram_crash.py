"""The crash right after the first question (issue 11, "Done when"): `surveybot run` (Telegram
polling, SQLite) sends Anna the NPS question and is killed with SIGKILL before it learns that
Telegram delivered it; after the restart Anna taps 10 on that message, and the tap is recorded
and answered with the next question, not "This button is not valid any more".

The dead process still holds Anna's /start in the inbox (leased), so her tap waits until that
lease runs out: ``inbox.lease`` is 2 s here instead of 15 s, to keep the test short. The
question's outbox row is still leased to the dead sender too, so what the tap owes (the settled
message, the next question) waits in Anna's chat until that lease runs out (``outbox.lease``,
also 2 s here instead of 15 s)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.fakes.telegram_api import FakeTelegram
from tests.platforms.telegram.test_telegram_run import Installation
from tests.support.telegram_harness import ANNA, Person, add_people, button

WAIT = 15.0  # seconds any one thing may take on a loaded machine
SENDER_LEASE = 2.0  # the outbox rows a dead sender held come back after this (outbox.lease)
LEASES = "inbox: {lease: 2s}\noutbox: {lease: 2s}\n"


async def test_a_tap_on_the_question_sent_just_before_kill_9_is_recorded(
    tmp_path: Path,
) -> None:
    async with FakeTelegram() as fake:
        add_people(fake)
        site = Installation(tmp_path, fake)
        with (tmp_path / "config.yaml").open("a", encoding="utf-8") as config:
            config.write(LEASES)
        anna = Person(fake, fake.users[ANNA], ANNA)

        async with site.running() as first:
            # Telegram delivers the question but its answer never reaches the bot: the send
            # is not recorded when the process dies
            fake.hold_answers("sendMessage")
            anna.says("/start nps")
            question = await anna.receives(WAIT)
            assert question["text"].startswith("How likely are you to recommend us")
            first.send_signal(signal.SIGKILL)
            await first.wait()
            assert first.returncode == -signal.SIGKILL
            fake.release_answers()

        async with site.running():
            tap = fake.tap(fake.users[ANNA], question, button(question, "10"))
            answer = await fake.wait_for(  # the keyboard the killed process sent
                lambda: next((a for a in fake.callback_answers
                              if a["callback_query_id"] == tap["callback_query"]["id"]), None),
                WAIT,
                what="the tap answered",
            )  # fmt: skip
            assert "text" not in answer or not answer["text"], answer  # no "not valid" notice
            follow_up = await fake.wait_for(
                lambda: next(
                    (m for m in fake.chat_messages(ANNA, bot_only=True)
                     if m["text"] == "We're glad to hear it! What did you like most?"),
                    None,
                ),
                SENDER_LEASE + WAIT,  # the dead sender's lease on the question holds the chat
                what="the next question",
            )  # fmt: skip
            assert follow_up is not None
        exported = await site.command("export", "--format", "jsonl")

    rows = [json.loads(line) for line in exported.splitlines() if line.strip()]
    assert [(r["flow_id"], r["user_id"], r["question_id"], r["value"]) for r in rows] == [
        ("nps", str(ANNA), "score", 10)
    ]


async def test_a_first_question_owed_but_not_yet_sent_at_kill_9_goes_out_after_the_restart(
    tmp_path: Path,
) -> None:
    """The session and its first question are one commit: Telegram refuses the send (429,
    retry after 2 s), `surveybot run` is killed right after, and the restarted process sends
    the question (once the dead sender's lease ran out) and records Anna's tap."""
    async with FakeTelegram() as fake:
        add_people(fake)
        site = Installation(tmp_path, fake)
        with (tmp_path / "config.yaml").open("a", encoding="utf-8") as config:
            config.write(LEASES)
        anna = Person(fake, fake.users[ANNA], ANNA)

        async with site.running() as first:
            fake.fail_next("sendMessage", n=1000, retry_after=2)
            anna.says("/start nps")
            # the sender tried: the question was owed (committed), and never reached Anna
            await fake.wait_for(lambda: fake.method_calls("sendMessage"), WAIT,
                                what="the first send attempt")  # fmt: skip
            first.send_signal(signal.SIGKILL)
            await first.wait()
            assert fake.chat_messages(ANNA, bot_only=True) == []
            fake.fail_next("sendMessage", n=0)

        async with site.running():
            question = await anna.receives(WAIT + SENDER_LEASE)  # after the dead sender's lease
            assert question["text"].startswith("How likely are you to recommend us")
            await anna.taps(question, "10")
            follow_up = await anna.receives(WAIT)
            assert follow_up["text"] == "We're glad to hear it! What did you like most?"
        exported = await site.command("export", "--format", "jsonl")

    rows = [json.loads(line) for line in exported.splitlines() if line.strip()]
    assert [(r["flow_id"], r["user_id"], r["question_id"], r["value"]) for r in rows] == [
        ("nps", str(ANNA), "score", 10)
    ]
    assert len(fake.chat_messages(ANNA, bot_only=True)) == 2  # the question once, the next one
