"""Slack end to end: the real bolt app behind bot.platforms.slack.runner, against the fake Slack, in
Socket Mode and in HTTP mode (the project's FastAPI app on uvicorn, signed requests).

Staff: stella (U0STAFF). Customers: nikos (Greek), ruta (Lithuanian), amy (English); eve is a
colleague who is not staff; "gone" is a deactivated account.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import SlackRateLimit, StaffConfig
from tests.fakes.slack_api import block_actions_http, slash_command_http
from tests.support.slack_support import (
    AMY,
    EVE,
    GONE,
    NIKOS,
    RUTA,
    STAFF,
    Workspace,
    buttons_of,
    labels,
    workspace,
)

JSON = dict[str, Any]

ONBOARDING = """\
id: onboarding
name: Onboarding check
locales: [en]
questions:
  - id: channel
    type: choice
    text: "How did you reach us?"
    options:
      - {id: chat, text: "Live chat"}
      - {id: email, text: "Email"}
      - {id: phone, text: "Phone"}
  - id: setup
    type: rating
    text: "How would you rate the setup?"
    labels: {1: "Poor", 5: "Excellent"}
"""


@pytest.fixture(params=["socket", "http"])
async def ws(
    request: pytest.FixtureRequest, tmp_path: Path, flows_dir: Path
) -> AsyncIterator[Workspace]:
    (flows_dir / "onboarding.yaml").write_text(ONBOARDING, encoding="utf-8")
    async with workspace(tmp_path, flows_dir, request.param) as w:
        yield w
        assert w.fake.protocol_errors == []


async def answers(ws: Workspace) -> list[tuple[str, str, Any, str | None]]:
    """(flow, question, value, text) of every stored answer, as `surveybot export` has them."""
    return [(r.flow_id, r.question_id, r.value, r.text) for r in await ws.answers()]


def sessions_sent(ws: Workspace) -> int:
    return sum(1 for c in ws.fake.calls if c.method == "chat.postMessage" and c.status == 200)


# ---------------------------------------------------------------------------- /survey


async def test_staff_sends_csat_and_nikos_answers_no_then_explains_in_greek(
    ws: Workspace,
) -> None:
    seen = await ws.command(STAFF, f"csat <@{NIKOS}|nikos> ticket_id=4711 agent=stella")
    question = ws.question(NIKOS)
    assert seen == [f"Survey “csat” sent to <@{NIKOS}>."]
    assert question["text"] == "Μείνατε ικανοποιημένοι από τη βοήθεια που λάβατε;"
    assert labels(question) == ["Ναι", "Όχι"]

    await ws.tap(NIKOS, "Όχι")
    settled = ws.messages(NIKOS)[0]
    assert buttons_of(settled) == []
    assert settled["text"].endswith("Η απάντησή σας: Όχι")
    follow_up = ws.question(NIKOS)
    assert follow_up["text"].startswith("Λυπούμαστε γι' αυτό.")
    assert labels(follow_up) == ["Παράλειψη"]  # optional: a Skip button

    await ws.type(NIKOS, "Άργησαν πολύ & δεν <απάντησαν>")
    assert ws.texts(NIKOS)[-1] == (
        "Σας ευχαριστούμε για τα σχόλιά σας! Μας βοηθούν να βελτιώνουμε την εξυπηρέτησή μας."
    )
    assert await answers(ws) == [
        ("csat", "satisfied", 0, None),
        ("csat", "what_went_wrong", None, "Άργησαν πολύ & δεν <απάντησαν>"),
    ]
    row = (await ws.answers())[0]
    assert (row.platform, row.user_id, row.chat_id, row.locale) == ("slack", NIKOS, None, "el")
    assert row.context == {"ticket_id": "4711", "agent": "stella"}
    assert row.triggered_by == f"slack:{STAFF}"


async def test_a_bare_member_id_works_and_a_second_csat_is_throttled(ws: Workspace) -> None:
    assert (await ws.command(STAFF, f"csat {AMY}")) == [f"Survey “csat” sent to <@{AMY}>."]
    again = await ws.command(STAFF, f"csat <@{AMY}>")
    assert again[0].startswith(f"Not sent: slack:{AMY} was asked 'csat' at ")
    assert len(ws.messages(AMY)) == 1


async def test_a_greek_speaking_staff_member_is_answered_in_greek(
    tmp_path: Path, flows_dir: Path
) -> None:
    """Staff read the confirmation in the language Slack reports for them (users.info), from
    the same strings as on Telegram."""
    async with workspace(
        tmp_path, flows_dir, "socket", staff=StaffConfig(slack=[STAFF, NIKOS])
    ) as greek_staff:
        seen = await greek_staff.command(NIKOS, f"csat <@{AMY}>")
        assert seen == [f"Η έρευνα «csat» στάλθηκε στον/στην <@{AMY}>."]
        again = await greek_staff.command(NIKOS, f"csat <@{AMY}>")
        assert again[0].startswith(f"Δεν στάλθηκε: slack:{AMY} was asked 'csat'")
        unknown = await greek_staff.command(NIKOS, f"loyalty <@{AMY}>")
        assert unknown == [
            "Δεν υπάρχει έρευνα με το όνομα «loyalty». Διαθέσιμες έρευνες: ces, csat, nps."
        ]
        assert greek_staff.question(AMY)["text"] == "Were you satisfied with the help you received?"


async def test_someone_who_is_not_staff_is_refused_and_nothing_is_sent(ws: Workspace) -> None:
    seen = await ws.command(EVE, f"csat <@{AMY}>")
    assert seen == [
        "Sorry, only our support team can send surveys. If that should include you, ask an "
        f"admin to add your Slack ID {EVE} to staff.slack in config.yaml."
    ]
    assert ws.messages(AMY) == [] and sessions_sent(ws) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "Usage: `/survey <flow> @person [key=value ...]`"),
        ("help", "Usage: `/survey <flow> @person [key=value ...]`"),
        ("csat", "Who should get it? Mention the person: `/survey csat @maria`."),
        ("csat @amy", "I could not tell who `@amy` is."),
        (f"<@{AMY}>", "Which survey? Name a flow first"),
        (f"csat <@{AMY}> <@{NIKOS}>", "One person at a time"),
        (f"csat <@{AMY}> soon", "I did not understand `soon`."),
        (f'csat <@{AMY}> agent="stella', "I could not read that command"),
        (
            f"nope <@{AMY}>",
            "There is no survey called “nope”. Available surveys: ces, csat, nps, onboarding.",
        ),
    ],
)
async def test_staff_get_a_clear_error_for_bad_arguments(
    ws: Workspace, text: str, expected: str
) -> None:
    (seen,) = await ws.command(STAFF, text)
    assert seen.startswith(expected), seen
    if "Usage" not in expected and "no survey" not in expected:
        assert "Usage: `/survey <flow> @person" in seen  # the usage follows the error
    assert sessions_sent(ws) == 0
    assert [r async for r in ws.svc.storage.export_rows()] == []


async def test_a_person_the_bot_cannot_message_is_reported_to_staff(ws: Workspace) -> None:
    seen = await ws.command(STAFF, f"csat <@{GONE}|gone>")
    assert seen == [
        f"Could not send survey “csat” to <@{GONE}>: their account is deactivated "
        "(Slack: user_disabled)"
    ]
    assert sessions_sent(ws) == 0


# ---------------------------------------------------------------------------- question types


async def test_typed_skip_skips_an_optional_question(ws: Workspace) -> None:
    await ws.command(STAFF, f"csat <@{AMY}>")
    await ws.tap(AMY, "No")
    await ws.type(AMY, "skip")
    assert ws.texts(AMY)[-1].startswith("Thank you for your feedback!")
    assert await answers(ws) == [("csat", "satisfied", 0, None)]


async def test_choice_and_rating_from_a_test_flow(ws: Workspace) -> None:
    await ws.command(STAFF, f"onboarding <@{AMY}>")
    choice = ws.question(AMY)
    assert labels(choice) == ["Live chat", "Email", "Phone"]
    await ws.tap(AMY, "Phone")
    assert ws.messages(AMY)[0]["text"].endswith("Your answer: Phone")
    rating = ws.question(AMY)
    assert labels(rating) == ["1", "2", "3", "4", "5"]
    assert "1 = Poor · 5 = Excellent" in rating["text"]
    await ws.tap(AMY, "4")
    assert ws.texts(AMY)[-1] == "Thank you for your feedback!"
    assert await answers(ws) == [
        ("onboarding", "channel", "phone", None),
        ("onboarding", "setup", 4, None),
    ]


# ---------------------------------------------------------------------------- refusals


async def test_refused_clicks_record_nothing(ws: Workspace) -> None:
    await ws.command(STAFF, f"csat <@{AMY}>")
    question = copy.deepcopy(ws.question(AMY))
    no = next(b for b in buttons_of(question) if b["text"]["text"] == "No")

    # eve clicks Amy's button (a shared screen, a forwarded payload): refused
    await ws.click(EVE, question, no["action_id"])
    # a value no button ever carried, and one for a session that does not exist
    tampered = no["value"].rsplit(":", 1)[0] + ":7"
    await ws.click(AMY, question, "surveybot-x", value=tampered, must_exist=False)
    await ws.click(AMY, question, "surveybot-y", value="sb1:AAAAAAAAAAAA:0:1", must_exist=False)
    await ws.click(AMY, question, "other", value="hello", must_exist=False)
    assert ws.notices(EVE) == ["This survey is for someone else."]
    assert ws.notices(AMY) == ["This button is not valid any more."] * 3
    assert await answers(ws) == [] and buttons_of(ws.messages(AMY)[0])

    await ws.tap(AMY, "No")
    # the same button again from a client that still shows it: already answered
    await ws.click(AMY, question, "stale", value=no["value"], must_exist=False)
    assert ws.notices(AMY)[-1] == "You have already answered this question."
    await ws.tap(AMY, "Skip")
    # the survey is over: old buttons say so
    await ws.click(AMY, question, "stale", value=no["value"], must_exist=False)
    assert ws.notices(AMY)[-1] == "You have already completed this survey. Thank you!"
    assert await answers(ws) == [("csat", "satisfied", 0, None)]


async def test_a_retried_event_records_once(ws: Workspace) -> None:
    await ws.command(STAFF, f"csat <@{AMY}>")
    await ws.tap(AMY, "No")
    event = await ws.type(AMY, "The wait was long")
    shown = ws.texts(AMY)
    await ws.redeliver(event)
    await ws.redeliver(event)
    assert ws.texts(AMY) == shown  # no second thanks, no "already answered"
    assert ws.notices(AMY) == []
    assert await answers(ws) == [
        ("csat", "satisfied", 0, None),
        ("csat", "what_went_wrong", None, "The wait was long"),
    ]


async def test_a_double_tap_records_once(ws: Workspace) -> None:
    await ws.command(STAFF, f"nps <@{AMY}>")
    question = copy.deepcopy(ws.question(AMY))
    await ws.tap(AMY, "8", question)
    await ws.click(AMY, question, "again", value=buttons_of(question)[8]["value"], must_exist=False)
    assert ws.notices(AMY) == ["You have already answered this question."]
    assert await answers(ws) == [("nps", "score", 8, None)]


# ---------------------------------------------------------------------------- resilience


async def test_a_restart_mid_survey_keeps_old_buttons_working(ws: Workspace) -> None:
    await ws.command(STAFF, f"nps <@{NIKOS}>")
    question = ws.question(NIKOS)
    await ws.restart()  # a new process on the same database
    await ws.tap(NIKOS, "10", question)
    assert ws.texts(NIKOS)[-1] == "Χαιρόμαστε πολύ! Τι σας άρεσε περισσότερο;"
    await ws.type(NIKOS, "Όλα")
    assert ws.texts(NIKOS)[-1] == "Σας ευχαριστούμε που αφιερώσατε χρόνο για να απαντήσετε!"
    assert await answers(ws) == [
        ("nps", "score", 10, None),
        ("nps", "promoter_reason", None, "Όλα"),
    ]


async def test_a_429_is_honoured_and_the_message_still_goes_out(ws: Workspace) -> None:
    ws.fake.fail_next("chat.postMessage", n=2, retry_after=0)
    seen = await ws.command(STAFF, f"csat <@{AMY}>")
    assert seen == [f"Survey “csat” sent to <@{AMY}>."]
    posts = [c.status for c in ws.fake.calls if c.method == "chat.postMessage"]
    assert posts == [429, 429, 200]
    assert len(ws.messages(AMY)) == 1


async def test_when_slack_keeps_saying_429_the_sender_retries_and_staff_hear_it_went_out(
    ws: Workspace,
) -> None:
    ws.fake.fail_next("chat.postMessage", n=3, retry_after=0)
    # the owed question stays in the outbox; the sender tries again once Slack lets it
    (seen,) = await ws.command(STAFF, f"ces <@{AMY}>")
    assert seen == f"Survey “ces” sent to <@{AMY}>."
    assert labels(ws.question(AMY)) == [str(n) for n in range(1, 8)]
    assert [c.status for c in ws.fake.calls if c.method == "chat.postMessage"] == [429] * 3 + [200]


async def test_http_mode_refuses_unsigned_forged_and_stale_requests(
    tmp_path: Path, flows_dir: Path
) -> None:
    async with workspace(tmp_path, flows_dir, "http") as ws:
        payload = ws.fake.build_slash_command(STAFF, f"csat <@{AMY}>")
        forged = slash_command_http(payload, "not-the-signing-secret")
        stale = slash_command_http(payload, ws.secret, timestamp=1_000_000)
        unsigned = forged._replace(headers={"Content-Type": forged.headers["Content-Type"]})
        for request in (forged, stale, unsigned):
            assert (await ws.post(request))[0] == 401
        await ws.settled()
        assert sessions_sent(ws) == 0 and ws.fake.ephemerals == []
        assert (await ws.post(slash_command_http(payload, ws.secret)))[0] == 200


@pytest.mark.parametrize(
    ("user", "locale", "question"),
    [
        (NIKOS, "el", "Πόσο εύκολο ήταν για εσάς να λυθεί το πρόβλημά σας;"),
        (RUTA, "lt", "Kiek lengva buvo išspręsti jūsų problemą?"),
        ("U0PIERRE", "en", "How easy was it to get your issue resolved?"),  # fr-FR: fallback
    ],
)
async def test_the_language_comes_from_slack_users_info(
    tmp_path: Path, flows_dir: Path, user: str, locale: str, question: str
) -> None:
    async with workspace(tmp_path, flows_dir, "socket") as ws:
        ws.fake.user("U0PIERRE", "pierre", locale="fr-FR")
        await ws.command(STAFF, f"ces <@{user}>")
        assert ws.question(user)["text"].startswith(question)
        await ws.tap(user, "7")
        await ws.tap(user, {"el": "Παράλειψη", "lt": "Praleisti", "en": "Skip"}[locale])
        (first,) = await ws.answers()
        assert first.locale == locale


async def test_a_retry_arriving_after_a_restart_still_records_once(ws: Workspace) -> None:
    await ws.command(STAFF, f"nps <@{AMY}>")
    event = await ws.type(AMY, "9")
    await ws.restart()  # the new process has not seen the event: storage has
    await ws.redeliver(event)
    assert await answers(ws) == [("nps", "score", 9, None)]
    assert ws.question(AMY)["text"] == "We're glad to hear it! What did you like most?"


async def test_many_surveys_go_out_at_about_one_message_per_second_per_channel(
    tmp_path: Path, flows_dir: Path
) -> None:
    async with workspace(tmp_path, flows_dir, "socket") as ws:
        # no burst, so three surveys to one person show the sender's pace of 1/s per channel
        paced = ws.settings.slack.model_copy(update={"rate_limit": SlackRateLimit(channel_burst=1)})
        ws.settings = ws.settings.model_copy(update={"slack": paced})
        await ws.restart()
        people = [AMY, NIKOS, RUTA, EVE]
        for flow in ("csat", "nps", "ces"):
            for person in people:
                (seen,) = await ws.command(STAFF, f"{flow} <@{person}>")
                assert f"<@{person}>" in seen and "Could not" not in seen, seen
        await ws.fake.wait_for(
            lambda: all(len(ws.messages(p)) == 3 for p in people), timeout=15, what="12 surveys"
        )
        for person in people:
            dm = ws.dm(person)
            times = [
                c.at
                for c in ws.fake.calls
                if c.method == "chat.postMessage" and c.status == 200 and c.args["channel"] == dm
            ]
            gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
            assert len(gaps) == 2 and min(gaps) >= 0.9, gaps


async def test_a_click_is_acknowledged_in_time_even_when_slack_makes_us_wait(
    ws: Workspace,
) -> None:
    await ws.command(STAFF, f"csat <@{AMY}>")
    question = ws.question(AMY)
    await ws.restart()  # the new process does not know Amy's language yet
    ws.fake.fail_next("users.info", n=1, retry_after=3)  # and Slack says: wait 3 s
    if ws.mode == "socket":
        env = await ws.fake.click(AMY, question, buttons_of(question)[0]["action_id"])
        await ws.fake.wait_ack(env)
        # acknowledged while the answer still waits on Slack's 3 s retry: not after it
        assert await answers(ws) == []
    else:
        payload = ws.fake.build_block_actions(AMY, question, buttons_of(question)[0]["action_id"])
        status, _ = await ws.post(block_actions_http(payload, ws.secret))
        assert status == 200
        assert await answers(ws) == []  # answered while the answer waits on the retry
    await ws.settled()
    assert await answers(ws) == [("csat", "satisfied", 1, None)]
    assert ws.texts(AMY)[-1].startswith("Thank you for your feedback!")
