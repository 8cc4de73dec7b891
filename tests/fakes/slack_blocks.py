"""What the fake Slack checks like Slack does: Block Kit (block and element types, lengths,
duplicate ids) and message arguments, with Slack's error names (``invalid_blocks`` with
json-pointer messages, ``no_text``, ``msg_too_long``)."""

from __future__ import annotations

import json
from typing import Any

JSON = dict[str, Any]

MAX_BLOCKS, MAX_TEXT, MAX_SECTION_TEXT, MAX_ACTIONS = 50, 40000, 3000, 25
MAX_BUTTON_TEXT, MAX_BUTTON_VALUE, MAX_ID = 75, 2000, 255
ELEMENT_TYPES = {
    "button", "static_select", "multi_static_select", "overflow", "datepicker", "timepicker",
    "checkboxes", "radio_buttons", "users_select", "conversations_select", "channels_select",
    "plain_text_input", "image",
}  # fmt: skip
BLOCK_TYPES = {"section", "actions", "context", "divider", "header", "image", "input", "rich_text"}


class SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.body: JSON = {"ok": False, "error": error, **extra}


def _text(errs: list[str], obj: Any, ptr: str, limit: int, plain: bool = False) -> None:
    kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        errs.append(f"must be a {' or '.join(kinds)} text object [json-pointer:{ptr}]")
        return
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        errs.append(f"must be more than 0 characters [json-pointer:{ptr}/text]")
    elif len(text) > limit:
        errs.append(f"must be less than {limit + 1} characters [json-pointer:{ptr}/text]")


def _element(errs: list[str], el: Any, ptr: str, action_ids: set[str]) -> None:
    if not isinstance(el, dict) or el.get("type") not in ELEMENT_TYPES:
        errs.append(f"unsupported element type [json-pointer:{ptr}/type]")
        return
    if el["type"] == "button":
        _text(errs, el.get("text"), f"{ptr}/text", MAX_BUTTON_TEXT, plain=True)
        if len(str(el.get("value", ""))) > MAX_BUTTON_VALUE:
            errs.append(
                f"must be less than {MAX_BUTTON_VALUE + 1} characters [json-pointer:{ptr}/value]"
            )
        if el.get("style") not in (None, "primary", "danger"):
            errs.append(f"must be one of primary, danger [json-pointer:{ptr}/style]")
    if "action_id" in el:
        aid = el["action_id"]
        if not isinstance(aid, str) or not aid or len(aid) > MAX_ID:
            errs.append(f"must be 1-{MAX_ID} characters [json-pointer:{ptr}/action_id]")
        elif aid in action_ids:
            errs.append(f"action_id already exists: {aid} [json-pointer:{ptr}/action_id]")
        action_ids.add(str(aid))


def validate_blocks(blocks: Any) -> list[str]:
    """Slack-style error strings for a blocks array (empty list means valid)."""
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    errs: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errs.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for i, b in enumerate(blocks):
        p = f"/blocks/{i}"
        if not isinstance(b, dict) or b.get("type") not in BLOCK_TYPES:
            errs.append(f"unsupported block type [json-pointer:{p}/type]")
            continue
        if "block_id" in b:
            bid = b["block_id"]
            if not isinstance(bid, str) or not bid or len(bid) > MAX_ID:
                errs.append(f"must be 1-{MAX_ID} characters [json-pointer:{p}/block_id]")
            elif bid in block_ids:
                errs.append(f"block_id already exists: {bid} [json-pointer:{p}/block_id]")
            block_ids.add(str(bid))
        kind = b["type"]
        if kind == "section":
            if "text" not in b and "fields" not in b:
                errs.append(f"must provide text or fields [json-pointer:{p}]")
            if "text" in b:
                _text(errs, b["text"], f"{p}/text", MAX_SECTION_TEXT)
            for j, f in enumerate(b.get("fields", [])[:11]):
                _text(errs, f, f"{p}/fields/{j}", 2000)
            if len(b.get("fields", [])) > 10:
                errs.append(f"no more than 10 items allowed [json-pointer:{p}/fields]")
            if "accessory" in b:
                _element(errs, b["accessory"], f"{p}/accessory", action_ids)
        elif kind == "actions":
            els = b.get("elements")
            if not isinstance(els, list) or not els:
                errs.append(f"must provide at least 1 element [json-pointer:{p}/elements]")
                continue
            if len(els) > MAX_ACTIONS:
                errs.append(f"no more than {MAX_ACTIONS} items allowed [json-pointer:{p}/elements]")
            for j, el in enumerate(els):
                _element(errs, el, f"{p}/elements/{j}", action_ids)
        elif kind == "header":
            _text(errs, b.get("text"), f"{p}/text", 150, plain=True)
        elif kind == "context":
            els = b.get("elements")
            if not isinstance(els, list) or not 1 <= len(els) <= 10:
                errs.append(f"must provide 1-10 elements [json-pointer:{p}/elements]")
            else:
                for j, el in enumerate(els):
                    if not (isinstance(el, dict) and el.get("type") == "image"):
                        _text(errs, el, f"{p}/elements/{j}", MAX_SECTION_TEXT)
        elif kind == "input":
            _text(errs, b.get("label"), f"{p}/label", 2000, plain=True)
            _element(errs, b.get("element"), f"{p}/element", action_ids)
    return errs


def check_message(args: JSON, require: bool = True) -> tuple[str | None, list[JSON] | None]:
    text, blocks = args.get("text"), args.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            raise SlackError("invalid_blocks_format") from None
    if blocks is not None:
        if errs := validate_blocks(blocks):
            raise SlackError(
                "invalid_blocks",
                errors=errs,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errs]},
            )
    if require and not text and not blocks and not args.get("attachments"):
        raise SlackError("no_text")
    if text is not None and len(str(text)) > MAX_TEXT:
        raise SlackError("msg_too_long")
    return (None if text is None else str(text)), blocks


def truthy(v: Any) -> bool:
    return v in (True, 1, "1", "true", "True")
