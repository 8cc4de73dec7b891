"""What the fake Bot API checks like Telegram does: parameters (form or JSON), message text
(HTML entities, length) and inline keyboards; errors carry Telegram's codes and descriptions."""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

JSONDict = dict[str, Any]
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
BUTTON_ACTIONS = (
    "url", "callback_data", "login_url", "switch_inline_query", "pay", "web_app", "copy_text",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "callback_game",
)  # fmt: skip
HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
             "a", "code", "pre", "blockquote", "tg-emoji"}  # fmt: skip


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


def bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


class Params:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = dict(raw)

    def get_str(self, name: str) -> str | None:
        return None if self.raw.get(name) is None else str(self.raw[name])

    def get_num(self, name: str, default: int = 0) -> float:
        try:
            return float(self.raw.get(name) or default)
        except (TypeError, ValueError):
            raise bad(f'field "{name}" must be a Number') from None

    def get_bool(self, name: str) -> bool:
        return self.raw.get(name) in (True, "true", "True", "1", 1)

    def get_obj(self, name: str) -> Any:  # JSON bodies carry objects, forms JSON strings
        value = self.raw.get(name)
        try:
            return json.loads(value) if isinstance(value, str) else value
        except ValueError:
            raise bad(f"can't parse {name} JSON object") from None

    def chat_id(self) -> int:  # "@channelusername" chats are not faked
        return int(value) if re.fullmatch(r"-?\d+", value := str(self.raw.get("chat_id"))) else 0


def visible_text(text: str | None, parse_mode: str | None) -> str:
    """Text as Telegram keeps it; HTML is checked like Telegram does, Markdown passes as is."""
    if text is None or not text.strip():
        raise bad("message text is empty")
    if (parse_mode or "").lower() == "html":
        stack: list[str] = []
        for tag in re.finditer(r"<(/?)([^\s<>/]*)[^<>]*>?", text):
            name, at = tag.group(2).lower(), len(text[: tag.start()].encode())
            if not tag.group(0).endswith(">") or name not in HTML_TAGS:
                raise bad(f"can't parse entities: Unsupported start tag \"{name}\" at byte "
                          f"offset {at}")  # fmt: skip
            if not tag.group(1):
                stack.append(name)
            elif stack and stack[-1] == name:
                stack.pop()
            else:
                raise bad(f"can't parse entities: Unmatched end tag at byte offset {at}, expected "
                          f'"</{stack[-1] if stack else ""}>", found "</{name}>"')  # fmt: skip
        if stack:
            raise bad(f"can't parse entities: Can't find end tag corresponding to start tag "
                      f'"{stack[-1]}"')  # fmt: skip
        text = html.unescape(re.sub(r"<[^<>]*>", "", text))
    if not text.strip():
        raise bad("message text is empty")
    if len(text) > 4096:
        raise bad("message is too long")
    return text


def check_markup(markup: Any, *, inline_only: bool = False) -> JSONDict | None:
    """Validate reply_markup like Telegram; returns the inline keyboard the message keeps."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if inline_only:
            raise bad("inline keyboard expected")
        return None  # reply keyboards etc. are accepted but not part of the Message
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    if sum(len(row) for row in rows) > 100:
        raise bad("reply markup is too long")
    for button in itertools.chain.from_iterable(rows):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise bad('can\'t parse inline keyboard button: Field "text" must be of type String')
        actions = [key for key in BUTTON_ACTIONS if key in button]
        if not actions:
            raise bad("can't parse inline keyboard button: Text buttons are unallowed in the "
                      "inline keyboard")  # fmt: skip
        if len(actions) > 1:
            raise bad(f"can't parse inline keyboard button: exactly one of the optional fields "
                      f"must be used, got {actions}")  # fmt: skip
        data = button.get("callback_data", "-")
        if not (isinstance(data, str) and 1 <= len(data.encode()) <= 64):
            raise bad("BUTTON_DATA_INVALID")
        if "url" in button and not re.match(r"(https?|tg)://\S+$", str(button["url"])):
            raise bad("BUTTON_URL_INVALID")
    rows = [row for row in rows if row]
    return {"inline_keyboard": rows} if rows else None
