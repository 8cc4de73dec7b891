"""The decisions every trigger shares: /survey and --ctx arguments, what staff read after a
trigger, in their language."""

from __future__ import annotations

import pytest

from bot.conversation.dispatch import TriggerResult
from bot.conversation.triggers import (
    BadArguments,
    parse_arguments,
    split_words,
    staff_reply,
    unknown_flow,
)


def test_quoted_context_values_and_typographic_quotes() -> None:
    args = parse_arguments(split_words('csat 42 ticket_id=9 agent="Maria P" note=“a b”'))
    assert args.words == ("csat", "42")
    assert dict(args.context) == {"ticket_id": "9", "agent": "Maria P", "note": "a b"}


def test_a_value_may_contain_an_equals_sign() -> None:
    assert dict(parse_arguments(["note=a=b"]).context) == {"note": "a=b"}


def test_context_without_a_key_is_refused_by_name() -> None:
    with pytest.raises(BadArguments) as caught:
        parse_arguments(["csat", " =1"])
    assert (caught.value.item, caught.value.why) == (" =1", "context")


def test_limits_are_left_to_the_dispatcher() -> None:
    """How many keys and how long: admission.context_problem decides for every trigger."""
    many = parse_arguments([f"k{i}=v" for i in range(60)] + ["ticket-id=" + "x" * 2000])
    assert len(many.context) == 61


def test_an_unclosed_quote_is_refused() -> None:
    with pytest.raises(BadArguments) as caught:
        split_words('csat agent="stella')
    assert caught.value.why == "quotes"


def test_a_20_kb_unreadable_line_is_not_echoed_back_whole() -> None:
    with pytest.raises(BadArguments) as caught:
        split_words('csat note="' + "x" * 20_000)
    assert len(caught.value.item) == 80 and caught.value.item.endswith("…")


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en-GB", "Survey “csat” sent to Anna."),
        ("el-GR", "Η έρευνα «csat» στάλθηκε στον/στην Anna."),
        ("lt", "Apklausa „csat“ išsiųsta: Anna."),
        (None, "Survey “csat” sent to Anna."),
        ("fr", "Survey “csat” sent to Anna."),
    ],
)
def test_staff_read_the_result_in_their_language(language: str | None, expected: str) -> None:
    sent = TriggerResult(status="sent", session_id="AbCdEfGhIjKl")
    assert staff_reply(sent, "csat", "Anna", language) == expected


def test_every_result_has_its_own_text() -> None:
    texts = {
        staff_reply(TriggerResult(status=status, reason="why"), "nps", "Anna", "el")
        for status in ("sent", "scheduled", "throttled", "failed")
    }
    assert len(texts) == 4
    assert "Δεν στάλθηκε: why" in texts


def test_an_unknown_flow_lists_the_loaded_ones_sorted() -> None:
    assert unknown_flow("loyalty", ["nps", "csat"], "lt") == (
        "Apklausos „loyalty“ nėra. Galimos apklausos: csat, nps."
    )
