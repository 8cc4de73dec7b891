"""Surveys in Slack support threads, end to end: the real bolt app against the fake Slack, in
Socket Mode and in HTTP mode.

Acme shares the channel #acme-support with us (Slack Connect). Their Greek-speaking Niko is an
external user: users.info cannot resolve him and the bot cannot DM him. Stella is staff; Eve is
a colleague who is not staff; Ruta (Lithuanian) is a customer in our own workspace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.platforms.slack.threads import SHORTCUT_ID
from tests.fakes.slack_api import block_actions_http, events_http
from tests.support.slack_support import (
    EVE,
    RUTA,
    STAFF,
    Workspace,
    action_id_of,
    buttons_of,
    workspace,
)

JSON = dict[str, Any]
SHARED = "C0ACME"
NIKO = "U0EXTNIKO"  # Acme's, Greek; Slack Connect
CHECK = "white_check_mark"


@pytest.fixture(params=["socket", "http"])
async def ws(
    request: pytest.FixtureRequest, tmp_path: Path, flows_dir: Path
) -> AsyncIterator[Workspace]:
    async with workspace(tmp_path, flows_dir, request.param) as w:
        w.fake.external_user(NIKO, "niko", team_id="T0ACME")
        w.fake.channel(SHARED, "acme-support", shared=True)
        yield w
        assert w.fake.protocol_errors == []


# what people do, in either mode ---------------------------------------------------------
async def _event(ws: Workspace, payload: JSON) -> None:
    if ws.mode == "socket":
        await ws.fake.wait_ack(await ws.fake._push("events_api", payload, False))
    else:
        status, body = await ws.post(events_http(payload, ws.secret))
        assert status == 200, (status, body)
    await ws.settled()


async def say(ws: Workspace, user: str, text: str, thread_ts: str | None = None) -> str:
    """``user`` posts ``text`` in the shared channel (in a thread when given); its ts."""
    payload = ws.fake.build_channel_message(user, SHARED, text, thread_ts)
    await _event(ws, payload)
    return str(payload["event"]["ts"])


async def react(ws: Workspace, user: str, ts: str, name: str = CHECK) -> None:
    await _event(ws, ws.fake.build_reaction(user, SHARED, ts, name))


async def unreact(ws: Workspace, user: str, ts: str, name: str = CHECK) -> None:
    await _event(ws, ws.fake.build_reaction(user, SHARED, ts, name, removed=True))


async def shortcut(ws: Workspace, user: str, ts: str) -> None:
    if ws.mode == "socket":
        await ws.fake.wait_ack(await ws.fake.shortcut(user, SHARED, ts, SHORTCUT_ID))
    else:
        payload = ws.fake.build_shortcut(user, SHARED, ts, SHORTCUT_ID)
        status, body = await ws.post(block_actions_http(payload, ws.secret))
        assert status == 200, (status, body)
    await ws.settled()


async def click(ws: Workspace, user: str, message: JSON, label: str) -> JSON:
    """Click the button ``label``; the button as it was (to click it again, stale)."""
    action_id = action_id_of(message, label)
    button = next(b for b in buttons_of(message) if b["action_id"] == action_id)
    await ws.click(user, message | {"channel": SHARED}, action_id)
    return button


async def click_again(ws: Workspace, user: str, message: JSON, button: JSON) -> None:
    """A second click on a button the client still shows (the message changed meanwhile)."""
    await ws.click(user, message | {"channel": SHARED}, button["action_id"],
                   value=button["value"], must_exist=False)  # fmt: skip


# what people see --------------------------------------------------------------------------
def bot_replies(ws: Workspace, root: str) -> list[JSON]:
    return [m for m in ws.fake.thread(SHARED, root) if m.get("bot_id") and m["ts"] != root]


def notes(ws: Workspace, user: str) -> list[str]:
    return [e["text"] for e in ws.fake.ephemerals if e["user"] == user]


async def test_a_check_mark_asks_the_external_customer_in_the_thread_in_greek(
    ws: Workspace,
) -> None:
    root = await say(ws, NIKO, "Γεια σας, δεν μπορώ να συνδεθώ στον λογαριασμό μου από χθες")
    await say(ws, STAFF, "Fixed on our side, please try again", thread_ts=root)
    await say(ws, NIKO, "Ναι, λειτουργεί τώρα, ευχαριστώ πολύ!", thread_ts=root)
    assert bot_replies(ws, root) == []  # talk in the thread is not an answer to anything

    await react(ws, STAFF, root)
    (question,) = bot_replies(ws, root)
    assert question["thread_ts"] == root
    assert question["text"].startswith(f"<@{NIKO}> Μείνατε ικανοποιημένοι")
    assert [b["text"]["text"] for b in buttons_of(question)] == ["Ναι", "Όχι"]
    assert notes(ws, STAFF) == [f"Sent the csat survey to <@{NIKO}> in this thread."]
    assert not any(c.method == "conversations.open" for c in ws.fake.calls)  # no DM tried

    await say(ws, NIKO, "ok", thread_ts=root)  # a button question waits: chatter is left alone
    assert len(bot_replies(ws, root)) == 1
    await click(ws, EVE, question, "Όχι")  # a colleague's click changes nothing
    assert notes(ws, EVE) == [f"This survey is for <@{NIKO}>."]
    assert await ws.answers() == []

    no = await click(ws, NIKO, question, "Όχι")
    await click_again(ws, NIKO, question, no)  # a double click counts once
    asked = bot_replies(ws, root)[-1]
    assert asked["text"].startswith(f"<@{NIKO}> Λυπούμαστε γι' αυτό.")
    await say(ws, EVE, "I'll follow up with the courier", thread_ts=root)  # not the requester
    assert bot_replies(ws, root)[-1] == asked
    await say(ws, NIKO, "Άργησε δύο μέρες η απάντηση", thread_ts=root)
    assert bot_replies(ws, root)[-1]["text"].startswith(f"<@{NIKO}> Σας ευχαριστούμε")

    rows = await ws.answers()
    assert [(r.question_id, r.value, r.text) for r in rows] == [
        ("satisfied", 0, None), ("what_went_wrong", None, "Άργησε δύο μέρες η απάντηση"),
    ]  # fmt: skip
    assert {(r.chat_id, r.thread_id, r.locale, r.user_id) for r in rows} == {
        (SHARED, root, "el", NIKO)
    }
    assert rows[0].context == {"agent": "stella"}  # the staff member who resolved it
    assert rows[0].triggered_by == f"slack:{STAFF}"

    # a second ✅ (and removing the first) sends nothing and loses nothing
    posts = len(ws.fake.posts)
    await unreact(ws, STAFF, root)
    await react(ws, STAFF, await say(ws, NIKO, "Ευχαριστώ!", thread_ts=root))
    assert len(ws.fake.posts) == posts
    assert "was already asked csat in this thread on" in notes(ws, STAFF)[-1]
    assert len(await ws.answers()) == 2


async def test_a_check_mark_by_someone_who_is_not_staff_does_nothing(ws: Workspace) -> None:
    root = await say(ws, NIKO, "Γεια σας, έχω ένα πρόβλημα με την τιμολόγηση")
    await react(ws, EVE, root)
    await react(ws, STAFF, root, "eyes")  # another reaction is no resolution either
    assert bot_replies(ws, root) == []
    assert notes(ws, EVE) == [] and notes(ws, STAFF) == []
    assert await ws.svc.storage.session_by_key(f"slack-thread:{SHARED}:{root}") is None


async def test_the_send_survey_shortcut_gives_the_same_result(ws: Workspace) -> None:
    root = await say(ws, RUTA, "Sveiki, neatėjo sąskaita faktūra")
    reply = await say(ws, STAFF, "Išsiuntėme iš naujo", thread_ts=root)
    await shortcut(ws, STAFF, reply)  # on any message of the thread: the requester is Ruta
    (question,) = bot_replies(ws, root)
    assert question["text"].startswith(f"<@{RUTA}> Ar jus tenkina gauta pagalba?")
    assert notes(ws, STAFF) == [f"Sent the csat survey to <@{RUTA}> in this thread."]
    await click(ws, RUTA, question, "Taip")
    assert bot_replies(ws, root)[-1]["text"].startswith(f"<@{RUTA}> Dėkojame")

    await shortcut(ws, STAFF, root)  # once per thread
    assert len(bot_replies(ws, root)) == 2
    assert "was already asked csat in this thread" in notes(ws, STAFF)[-1]
    await shortcut(ws, EVE, root)  # not staff: refused, in words
    assert notes(ws, EVE)[-1].startswith("Sorry, only support staff can send surveys.")
    rows = await ws.answers()
    assert [(r.question_id, r.value, r.thread_id, r.locale) for r in rows] == [
        ("satisfied", 1, root, "lt")
    ]


async def test_a_thread_started_by_staff_has_no_customer_to_ask(ws: Workspace) -> None:
    root = await say(ws, STAFF, "Heads-up: maintenance tonight")
    await shortcut(ws, STAFF, root)
    assert bot_replies(ws, root) == []
    assert notes(ws, STAFF) == [
        "There is no customer to ask here: this thread was started by a bot or by you."
    ]


async def test_a_slash_command_credits_the_staff_member_unless_it_names_an_agent(
    ws: Workspace,
) -> None:
    await ws.command(STAFF, f"csat <@{RUTA}>")
    await ws.command(STAFF, f"nps <@{RUTA}> agent=Nikos")
    await ws.tap(RUTA, "Taip", ws.messages(RUTA)[0])
    await ws.tap(RUTA, "9", ws.question(RUTA))
    contexts = {r.flow_id: r.context for r in await ws.answers()}
    assert contexts == {"csat": {"agent": "stella"}, "nps": {"agent": "Nikos"}}


async def test_a_dm_survey_to_an_outside_customer_says_to_use_the_thread(ws: Workspace) -> None:
    ws.fake.external_user("U0EXTVISIBLE", "vera", team_id="T0ACME", visible=True)
    seen = await ws.command(STAFF, "csat <@U0EXTVISIBLE>")
    assert any("resolve their thread with ✅ instead" in text for text in seen), seen
