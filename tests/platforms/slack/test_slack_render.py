"""Pure Slack translation: prompts -> Block Kit within Slack's limits, `/survey` parsing, and
the duplicate filter the adapter uses."""

from __future__ import annotations

from typing import Any

import pytest

from bot.chat import Button, Prompt, Settled, encode_payload
from bot.platforms.pacing import RecentIds
from bot.platforms.slack.blocks import (
    CommandError,
    SurveyCommand,
    from_click,
    from_message,
    parse_survey_command,
    prompt_message,
    settled_message,
)
from tests.fakes.slack_api import validate_blocks

SID = "AbCdEfGhIjKl"


def prompt(labels: list[str], *, skip: bool = False, **kw: object) -> Prompt:
    rows = [(Button(label=label, payload=encode_payload(SID, 2, str(i))),) for i, label in
            enumerate(labels)]  # fmt: skip
    skipper = Button(label="Skip", payload=encode_payload(SID, 2, "skip")) if skip else None
    fields: dict[str, object] = {"kind": "question", "session_id": SID, "text": "Pick one"}
    return Prompt(**(fields | {"rows": tuple(rows), "skip": skipper} | kw))


def actions(blocks: list[dict[str, Any]]) -> list[list[str]]:
    return [[el["text"]["text"] for el in b["elements"]] for b in blocks if b["type"] == "actions"]


def test_eleven_buttons_and_skip_fit_slack() -> None:
    text, blocks = prompt_message(prompt([str(n) for n in range(11)], skip=True))
    assert validate_blocks(blocks) == []
    assert actions(blocks) == [[str(n) for n in range(11)], ["Skip"]]
    assert text == "Pick one"
    values = [el["value"] for b in blocks if b["type"] == "actions" for el in b["elements"]]
    assert values[9] == f"sb1:{SID}:2:9" and values[-1] == f"sb1:{SID}:2:skip"


def test_many_long_options_stay_within_block_kit_limits() -> None:
    labels = [f"Option {n} " + "x" * 90 for n in range(30)]
    _, blocks = prompt_message(prompt(labels))
    assert validate_blocks(blocks) == []
    rows = actions(blocks)
    assert [len(r) for r in rows] == [25, 5]
    assert all(len(label) <= 75 and label.endswith("…") for r in rows for label in r)


def test_hint_comes_first_and_text_is_escaped() -> None:
    p = prompt(["Yes", "No"], text="Is <b> & co ok?\n1 = bad · 5 = good", hint="Tap Yes or No.")
    text, blocks = prompt_message(p)
    assert [b["block_id"] for b in blocks] == ["surveybot-hint", "surveybot-text",
                                               "surveybot-answers-0"]  # fmt: skip
    assert blocks[0]["text"]["text"] == ":point_right: _Tap Yes or No._"
    assert blocks[1]["text"]["text"] == "*Is &lt;b&gt; &amp; co ok?*\n1 = bad · 5 = good"
    assert text == "Tap Yes or No.\nIs <b> & co ok?\n1 = bad · 5 = good"


def test_a_typed_question_says_so_and_a_channel_survey_mentions_the_customer() -> None:
    p = prompt([], skip=True, text="Anything else?", locale="lt")
    text, blocks = prompt_message(p, mention_user="U0RUTA")
    assert validate_blocks(blocks) == []
    assert blocks[0]["text"]["text"] == "<@U0RUTA> *Anything else?*"
    assert blocks[1]["elements"][0]["text"] == "Parašykite savo atsakymą."
    assert actions(blocks) == [["Skip"]]
    assert text.startswith("<@U0RUTA> Anything else?")


def test_thanks_are_plain() -> None:
    thanks = Prompt(kind="thanks", session_id=SID, text="Ačiū!")
    assert prompt_message(thanks) == ("Ačiū!", [
        {"type": "section", "block_id": "surveybot-text",
         "text": {"type": "mrkdwn", "text": "Ačiū!"}}
    ])  # fmt: skip


def test_settled_message_has_no_buttons() -> None:
    text, blocks = settled_message(
        Settled(question="How likely…?\n0 = no · 10 = yes", answer="Your answer: 9")
    )
    assert validate_blocks(blocks) == []
    assert [b["type"] for b in blocks] == ["section", "context"]
    assert blocks[1]["elements"][0]["text"] == ":white_check_mark: Your answer: 9"
    assert text.endswith("Your answer: 9")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("csat <@U012AB|maria>", SurveyCommand("csat", "U012AB", "maria")),
        ("csat <@U012AB>", SurveyCommand("csat", "U012AB")),
        ("csat U012AB", SurveyCommand("csat", "U012AB")),
        ("<@W0ENT> nps", SurveyCommand("nps", "W0ENT")),
        (
            "ces <@U1> ticket_id=4711 agent=“Stella K” note=a=b",
            SurveyCommand(
                "ces", "U1", None, {"ticket_id": "4711", "agent": "Stella K", "note": "a=b"}
            ),
        ),
        ("csat <@U1> company=A&amp;B", SurveyCommand("csat", "U1", None, {"company": "A&B"})),
        ("csat &lt;@U1&gt;", SurveyCommand("csat", "U1")),
        ("csat <@U1> <@U1|maria>", SurveyCommand("csat", "U1")),
    ],
)
def test_survey_command_forms(text: str, expected: SurveyCommand) -> None:
    assert parse_survey_command(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "help", "--help"])
def test_survey_command_without_arguments_means_usage(text: str) -> None:
    assert parse_survey_command(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("csat", "Who should get it?"),
        ("<@U1>", "Which survey?"),
        ("csat @maria", "I could not tell who `@maria` is"),
        ("csat <@U1> <@U2>", "One person at a time"),
        ("csat nps <@U1>", "I did not understand `nps`"),
        ("csat <@U1> 'open", "I could not read that command"),
    ],
)
def test_survey_command_errors(text: str, message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("?", r"\?")):
        parse_survey_command(text)


def test_recent_ids_forget_the_oldest() -> None:
    seen = RecentIds(size=2)
    assert seen.add("a") and seen.add("b") and not seen.add("a")
    assert seen.add("c")  # "a" falls out
    assert seen.add("a")


def dm_event(**event: object) -> dict[str, Any]:
    base = {"type": "message", "channel_type": "im", "channel": "D01", "user": "U1",
            "text": "A &amp; B &lt;3", "ts": "1.2"}  # fmt: skip
    return {"type": "event_callback", "event_id": "Ev1", "event": base | event}


def test_a_persons_dm_message_is_an_answer() -> None:
    incoming = from_message(dm_event())
    assert incoming is not None and incoming.channel == "D01"
    assert incoming.inbound.model_dump(exclude_none=True, exclude_defaults=True) == {
        "platform": "slack", "kind": "text", "user_id": "U1", "event_id": "slack:Ev1",
        "text": "A & B <3",
    }  # fmt: skip
    skip = from_message(dm_event(text=" /skip "))  # the engine reads /skip like any typed answer
    assert skip is not None and (skip.inbound.kind, skip.inbound.text) == ("text", "/skip")


@pytest.mark.parametrize(
    "event",
    [
        {"subtype": "message_changed"},
        {"subtype": "bot_message", "bot_id": "B1"},
        {"bot_id": "B0BOT"},
        {"channel_type": "channel", "channel": "C01"},
        {"user": None},
        {"type": "reaction_added"},
    ],
)
def test_edits_bot_messages_and_channels_are_not_answers(event: dict[str, object]) -> None:
    assert from_message(dm_event(**event)) is None


def test_a_click_in_a_dm_and_in_a_channel() -> None:
    body = {
        "type": "block_actions", "user": {"id": "U1", "username": "amy"},
        "container": {"type": "message", "message_ts": "9.9", "channel_id": "D01"},
        "actions": [{"action_id": "surveybot-3", "value": f"sb1:{SID}:0:3"}],
        "response_url": "https://hooks.slack.example/1",
    }  # fmt: skip
    incoming = from_click(body)
    assert (incoming.channel, incoming.response_url) == ("D01", "https://hooks.slack.example/1")
    tap = incoming.inbound
    assert (tap.kind, tap.user_id, tap.chat_id, tap.message_id, tap.payload) == (
        "tap", "U1", None, "9.9", f"sb1:{SID}:0:3",
    )  # fmt: skip
    body["container"] = {"message_ts": "9.9", "channel_id": "C07"}
    body["actions"] = [{"action_id": "x"}]  # no value at all: forged
    tap = from_click(body).inbound
    assert (tap.chat_id, tap.payload) == ("C07", None)
