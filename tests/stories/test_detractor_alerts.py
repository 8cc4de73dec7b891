"""A support lead's story: an unhappy customer is flagged to the team at once, and the team
closes the loop, through the real python-telegram-bot and slack_sdk against the fakes.

Anna (Telegram) answers NPS 3 after ticket T-1001 and explains why: exactly one alert appears
in the Slack staff channel and is updated in place with her comment. Stella presses "I'll
follow up", Eve (not staff) is refused and changes nothing, Leo presses "Resolved" and
notes what he did in the alert's thread. Each change is a `followup.updated` webhook event.
Anna never sees any of it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.chat import Address
from bot.conversation.alerts import AlertRule
from tests.support import telegram_harness
from tests.support.alert_world import (
    ALERTS_TOPIC,
    FORUM,
    LEO,
    STAFF_CHANNEL,
    World,
    alert_world,
    crm_webhook,
)
from tests.support.slack_support import EVE, STAFF, labels

ANNA = telegram_harness.ANNA


@pytest.fixture
async def world(
    tmp_path: Path, flows_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    monkeypatch.setenv("SURVEYBOT_WEBHOOK_SECRET_CRM", "whsec_crm")
    rules = {"detractors": AlertRule(when="nps <= 6", to=f"slack:{STAFF_CHANNEL}")}
    async with alert_world(tmp_path, flows_dir, rules, webhooks=crm_webhook()) as w:
        yield w


async def anna_answers_nps(world: World, score: str, comment: str | None) -> None:
    """The helpdesk asks Anna after ticket T-1001 (agent Maria); she taps and explains."""
    anna = world.customer(ANNA)
    await world.svc.dispatcher.request(
        "nps", Address(platform="telegram", user_id=str(ANNA)),
        {"ticket_id": "T-1001", "agent": "Maria"}, triggered_by="api",
    )  # fmt: skip
    question = await anna.receives()
    await anna.taps(question, score)
    await anna.receives()  # the follow-up question
    if comment is not None:
        anna.says(comment)
        await anna.receives()  # thanks


async def test_an_unhappy_customer_is_flagged_once_and_the_team_follows_up(world: World) -> None:
    await anna_answers_nps(world, "3", "Nobody answered my emails for a week")
    alert = await world.slack_alert_shows(lambda t: "Nobody answered" in t, "the comment")
    assert alert["text"].splitlines() == [
        "⚠️ Unhappy customer: NPS 3/10",
        "Survey: nps",
        "Customer: Anna (telegram 5001)",
        "Agent: Maria",
        "Ticket: T-1001",
        "Comment: “Nobody answered my emails for a week”",
        "Nobody is following up yet.",
        "To add a note, reply in this alert's thread.",
    ]
    assert labels(alert) == ["I'll follow up", "Resolved"]
    [posted] = [p for p in world.slack.posts if p["channel"] == STAFF_CHANNEL]
    assert posted["ts"] == alert["ts"] and "No comment (yet)." in posted["text"]  # then edited

    await world.press_in_slack(STAFF, "I'll follow up")
    owned = await world.slack_alert_shows(lambda t: f"<@{STAFF}> is following up" in t, "owner")
    assert f"<@{STAFF}> is following up (since " in owned["text"]
    assert labels(owned) == ["Resolved"]

    await world.press_in_slack(EVE, "Resolved")
    refusal = await world.slack.wait_for(
        lambda: [e["text"] for e in world.slack.ephemerals if e["user"] == EVE], what="refusal"
    )
    assert refusal == [
        "Only the support team can follow up on alerts. If that should include you, ask an "
        f"admin to add your Slack ID {EVE} to staff.slack in config.yaml."
    ]
    [followup] = await world.followups()
    assert (followup.owner, followup.resolved_at) == (f"slack:{STAFF}", None)

    await world.press_in_slack(LEO, "Resolved")
    done = await world.slack_alert_shows(lambda t: "Resolved by" in t, "the resolution")
    assert f"<@{LEO}>" in done["text"] and f"<@{STAFF}> is following up" in done["text"]
    assert labels(done) == []

    await world.staff_side.reply_in_thread(EVE, STAFF_CHANNEL, alert["ts"], "ouch")  # just talk
    await world.staff_side.reply_in_thread(LEO, STAFF_CHANNEL, alert["ts"], "Called her, refunded")
    noted = await world.slack_alert_shows(lambda t: "Note: Called her" in t, "the note")
    assert "ouch" not in noted["text"]

    [followup] = await world.followups()
    assert followup.note == "Called her, refunded"
    assert (followup.score, followup.comment, followup.ticket_id) == (
        3, "Nobody answered my emails for a week", "T-1001"
    )  # fmt: skip
    assert (followup.owner, followup.resolved_by) == (f"slack:{STAFF}", f"slack:{LEO}")
    assert followup.owned_at is not None and followup.resolved_at is not None
    assert followup.created_at <= followup.owned_at <= followup.resolved_at
    assert followup.message_id == alert["ts"] and len(world.slack_alerts()) == 1

    events = [json.loads(body)["event"] for body in await world.webhook_events()]
    assert [(e["type"], e["data"]["change"]) for e in events] == [
        ("followup.updated", "owned"), ("followup.updated", "resolved"),
        ("followup.updated", "noted"),
    ]  # fmt: skip
    assert events[1]["data"]["followup"]["resolved_by"] == f"slack:{LEO}"

    anna_saw = [m["text"] for m in world.telegram.chat_messages(ANNA, bot_only=True)]
    assert len(anna_saw) == 3 and not any("follow" in t.lower() for t in anna_saw[:2])


async def test_a_happy_customer_raises_no_alert(world: World) -> None:
    await anna_answers_nps(world, "9", "Quick and kind")
    assert world.slack_alerts() == [] and await world.followups() == []


async def test_the_alert_is_posted_at_once_even_if_the_customer_never_comments(
    world: World,
) -> None:
    await anna_answers_nps(world, "2", None)
    alert = await world.slack_alert_shows(lambda t: "NPS 2/10" in t, "the alert")
    assert "No comment (yet)." in alert["text"]


async def test_an_alert_in_a_telegram_forum_topic_in_greek(tmp_path: Path, flows_dir: Path) -> None:
    rules = {"ομάδα": AlertRule(when="nps <= 6", to=f"telegram:{FORUM}", topic=ALERTS_TOPIC,
                                locale="el")}  # fmt: skip
    async with alert_world(tmp_path, flows_dir, rules) as world:
        await anna_answers_nps(world, "4", "Too slow")
        maria = telegram_harness.Person(world.telegram, world.telegram.users[
            telegram_harness.STAFF], FORUM)  # fmt: skip
        bob = telegram_harness.Person(world.telegram, world.telegram.users[telegram_harness.BOB],
                                      FORUM)  # fmt: skip

        def alert_with(text: str) -> dict[str, object] | None:
            sent = world.telegram.chat_messages(FORUM, bot_only=True)
            return sent[0] if len(sent) == 1 and text in str(sent[0]["text"]) else None

        alert = await world.telegram.wait_for(lambda: alert_with("Too slow"), what="the comment")
        assert alert["message_thread_id"] == ALERTS_TOPIC
        assert str(alert["text"]).startswith("⚠️ Δυσαρεστημένος πελάτης: NPS 4/10\n")
        assert telegram_harness.labels(alert) == [["Το αναλαμβάνω", "Επιλύθηκε"]]

        refused = await bob.taps(alert, "Επιλύθηκε")
        assert refused["show_alert"] is True
        assert str(refused["text"]).startswith("Only the support team can follow up on alerts.")
        [followup] = await world.followups()
        assert followup.resolved_at is None and followup.owner is None

        answered = await maria.taps(alert, "Το αναλαμβάνω")
        assert not answered.get("text")
        owned = await world.telegram.wait_for(lambda: alert_with("Το έχει αναλάβει: Maria"),
                                              what="the owner")  # fmt: skip
        assert telegram_harness.labels(owned) == [["Επιλύθηκε"]]
        again = await maria.taps(owned, "Επιλύθηκε")
        assert not again.get("text")
        await world.telegram.wait_for(lambda: alert_with("Επιλύθηκε από: Maria"), what="resolved")
        bob.says("what happened?", reply_to=int(str(alert["message_id"])))
        maria.says("Της τηλεφώνησα", reply_to=int(str(alert["message_id"])))
        await world.telegram.wait_for(lambda: alert_with("Σημείωση: Της τηλεφώνησα"), what="note")
        [followup] = await world.followups()
        assert followup.note == "Της τηλεφώνησα"
        assert followup.owner == followup.resolved_by == f"telegram:{telegram_harness.STAFF}"
        assert followup.destination == f"telegram:{FORUM}:{ALERTS_TOPIC}"
