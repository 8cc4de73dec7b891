"""Pure Block Kit rendering of staff cards (detractor alerts): the title in bold, then each line
(escaped, except user mentions such as ``<@U123>``, which Slack shows as the person's name),
then the buttons in one actions block."""

from __future__ import annotations

from typing import Any

from bot.chat import Card
from bot.platforms.slack.blocks import MAX_FALLBACK_TEXT, MAX_SECTION_TEXT, escape

JSON = dict[str, Any]
ACTION_PREFIX = "surveybot-followup-"  # every alert button's action_id starts so


def _mentions_kept(text: str) -> str:
    """Escape Slack's control characters, except in user mentions (``<@U123>``)."""
    parts = text.split("<@")
    out = [escape(parts[0])]
    for part in parts[1:]:
        user, close, rest = part.partition(">")
        out.append(f"<@{user}>{escape(rest)}" if close and user.isalnum() else escape("<@" + part))
    return "".join(out)


def card_message(card: Card) -> tuple[str, list[JSON]]:
    """``(fallback text, blocks)`` for chat.postMessage / chat.update."""
    body = "\n".join(_mentions_kept(line) for line in card.lines)
    text = f"*{escape(card.title)}*\n{body}"
    if len(text) > MAX_SECTION_TEXT:
        text = text[: MAX_SECTION_TEXT - 1] + "…"
    blocks: list[JSON] = [
        {"type": "section", "block_id": "surveybot-card", "text": {"type": "mrkdwn", "text": text}}
    ]
    buttons = [b for row in card.rows for b in row]
    if buttons:
        elements = [
            {"type": "button", "action_id": f"{ACTION_PREFIX}{i}",
             "text": {"type": "plain_text", "text": b.label[:75]}, "value": b.payload}
            for i, b in enumerate(buttons)
        ]  # fmt: skip
        blocks.append({"type": "actions", "block_id": "surveybot-followup", "elements": elements})
    fallback = card.text
    return fallback[:MAX_FALLBACK_TEXT], blocks
