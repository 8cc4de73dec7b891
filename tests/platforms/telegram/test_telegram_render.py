"""Pure pieces of the Telegram adapter: text limits, the mention in groups, keyboards,
/survey arguments, and how Telegram's refusals map to DeliveryError (real PTB errors)."""

from __future__ import annotations

import html
import re
import warnings

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.chat import Address, Button, Prompt
from bot.platforms.telegram.adapter import delivery_error
from bot.platforms.telegram.render import (
    MAX_TEXT,
    fit,
    render_prompt,
    say,
    utf16_len,
)
from bot.platforms.telegram.runner import api_urls
from bot.settings import Settings, TelegramConfig

DM = Address(platform="telegram", user_id="5001")
IN_GROUP = Address(platform="telegram", user_id="5001", chat_id="-100777", user_name="Anna")


def visible(markup: str) -> str:
    return html.unescape(re.sub(r"<[^<>]*>", "", markup))


def prompt(text: str, **extra: object) -> Prompt:
    return Prompt(kind="question", session_id="abcdefgh1234", text=text, **extra)  # type: ignore[arg-type]


def test_a_very_long_question_is_cut_to_telegrams_limit_with_an_ellipsis() -> None:
    rendered = render_prompt(prompt("Why? " * 2000, hint="Please type your answer."), DM)
    text = visible(rendered.html)
    assert utf16_len(text) <= MAX_TEXT and text.endswith("…")
    assert text.startswith("Please type your answer.\n\nWhy? Why?")


def test_the_limit_counts_utf16_units_and_never_splits_an_emoji() -> None:
    cut = fit("😀" * 3000, MAX_TEXT)
    assert utf16_len(cut) <= MAX_TEXT and cut.endswith("😀…")
    assert fit("short", 10) == "short"


def test_in_a_group_the_customer_is_named_and_mentioned_with_markup_escaped() -> None:
    rendered = render_prompt(prompt("Rate <us> & co", mention="Bob <the> & Co"), IN_GROUP)
    assert rendered.html == (
        '<a href="tg://user?id=5001">Bob &lt;the&gt; &amp; Co</a>, Rate &lt;us&gt; &amp; co'
    )
    thanks = Prompt(kind="thanks", session_id="abcdefgh1234", text="Thank you!")
    assert visible(render_prompt(thanks, IN_GROUP).html) == "Anna, Thank you!"
    assert visible(render_prompt(thanks, DM).html) == "Thank you!"


def test_buttons_keep_their_rows_and_payloads() -> None:
    rows = ((Button(label="0", payload="sb1:abcdefgh1234:0:0"),
             Button(label="1", payload="sb1:abcdefgh1234:0:1")),
            (Button(label="Skip", payload="sb1:abcdefgh1234:0:skip"),))  # fmt: skip
    rendered = render_prompt(prompt("Score?", rows=rows), DM)
    assert rendered.keyboard == (
        (("0", "sb1:abcdefgh1234:0:0"), ("1", "sb1:abcdefgh1234:0:1")),
        (("Skip", "sb1:abcdefgh1234:0:skip"),),
    )


def test_bot_texts_follow_the_language_code_with_english_as_fallback() -> None:
    assert say("link_invalid", "el-GR").startswith("Αυτός ο σύνδεσμος")
    assert say("link_invalid", "lt").startswith("Ši apklausos")
    assert say("link_invalid", "pt-br") == say("link_invalid", None)


def test_telegram_refusals_map_to_delivery_errors() -> None:
    blocked = delivery_error(Forbidden("Forbidden: bot was blocked by the user"))
    assert blocked.permanent and blocked.retry_after is None
    assert delivery_error(BadRequest("Bad Request: chat not found")).permanent
    with warnings.catch_warnings():  # PTB's own int -> timedelta transition
        warnings.simplefilter("ignore", DeprecationWarning)
        flood = delivery_error(RetryAfter(7))
    assert (flood.permanent, flood.retry_after) == (False, 7.0)
    for temporary in (TimedOut(), NetworkError("connection reset")):
        err = delivery_error(temporary)
        assert not err.permanent and err.retry_after is None


def test_file_urls_follow_the_configured_api_base_url() -> None:
    local = Settings(telegram=TelegramConfig(api_base_url="http://127.0.0.1:8081/bot"))
    assert api_urls(local) == ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/file/bot")
