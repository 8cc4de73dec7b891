"""Pure translation for Slack: prompts -> Block Kit, Slack payloads -> :class:`Inbound`,
`/survey` text -> a request, Slack errors -> :class:`DeliveryError`, refusals to staff.

Nothing here talks to Slack; ``bot/platforms/slack/adapter.py`` does, using these functions.
Block Kit limits (https://api.slack.com/reference/block-kit) are respected here: at most 25
elements in an actions block, button text within 75 characters, section text within 3000, unique
``action_id`` and ``block_id`` values within a message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.chat import Button, DeliveryError, Inbound, Prompt, Settled
from bot.conversation.triggers import BadArguments, parse_arguments, split_words
from bot.survey.texts import text_for

JSON = dict[str, Any]

ACTION_PREFIX = "surveybot-"  # every button this bot posts has an action_id starting so
MAX_ACTIONS = 25
MAX_BUTTON_TEXT = 75
MAX_SECTION_TEXT = 3000
MAX_FALLBACK_TEXT = 4000

USAGE = (
    "Usage: `/survey <flow> @person [key=value ...]`\n"
    "Sends a survey to that person in a direct message, for example "
    "`/survey csat @maria ticket_id=4711`.\n"
    "Flows: {flows}"
)


# ------------------------------------------------------------------------------- text


def escape(text: str) -> str:
    """Slack's three control characters (https://api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str, block_id: str) -> JSON:
    return {
        "type": "section",
        "block_id": block_id,
        "text": {"type": "mrkdwn", "text": _clip(text, MAX_SECTION_TEXT)},
    }


def _context(text: str, block_id: str) -> JSON:
    return {
        "type": "context",
        "block_id": block_id,
        "elements": [{"type": "mrkdwn", "text": _clip(text, MAX_SECTION_TEXT)}],
    }


def _question_text(text: str) -> str:
    """The question in bold, scale anchors ("0 = Not at all likely · …") below it."""
    first, _, rest = text.partition("\n")
    head = escape(first)
    if first.strip() and "*" not in first:
        head = f"*{head}*"
    return f"{head}\n{escape(rest)}" if rest else head


# ------------------------------------------------------------------------------- prompts


def _button(button: Button, action_id: str) -> JSON:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": _clip(button.label, MAX_BUTTON_TEXT)},
        "value": button.payload,
    }


def prompt_message(prompt: Prompt, mention_user: str | None = None) -> tuple[str, list[JSON]]:
    """``(fallback text, blocks)`` for chat.postMessage.

    A hint (e.g. "Please choose a number from 0 to 10") comes first, then the question, then
    the answer buttons in one actions block (0–10 fits; more than 25 options continue in
    further blocks), then Skip in a block of its own. A question without buttons says that
    the answer is typed. ``mention_user`` prefixes ``<@U…>`` when the survey is in a channel.
    """
    blocks: list[JSON] = []
    fallback: list[str] = []
    if prompt.hint:
        blocks.append(_section(f":point_right: _{escape(prompt.hint)}_", "surveybot-hint"))
        fallback.append(prompt.hint)
    body = _question_text(prompt.text) if prompt.kind in ("question", "reminder") else None
    body = body if body is not None else escape(prompt.text)
    if mention_user:
        body = f"<@{mention_user}> {body}"
    blocks.append(_section(body, "surveybot-text"))
    fallback.append(prompt.text)
    answers = [b for row in prompt.rows for b in row]
    for start in range(0, len(answers), MAX_ACTIONS):
        chunk = answers[start : start + MAX_ACTIONS]
        elements = [_button(b, f"{ACTION_PREFIX}{start + i}") for i, b in enumerate(chunk)]
        blocks.append(
            {"type": "actions", "block_id": f"surveybot-answers-{start}", "elements": elements}
        )
    if prompt.kind in ("question", "reminder") and not answers:
        blocks.append(_context(escape(text_for("hint_text", prompt.locale)), "surveybot-typed"))
    if prompt.skip is not None:
        elements = [_button(prompt.skip, f"{ACTION_PREFIX}skip")]
        blocks.append({"type": "actions", "block_id": "surveybot-skip", "elements": elements})
    text = "\n".join(fallback)
    if mention_user:
        text = f"<@{mention_user}> {text}"
    return _clip(text, MAX_FALLBACK_TEXT), blocks


def settled_message(settled: Settled) -> tuple[str, list[JSON]]:
    """The tapped question after the answer: the question, then a context line
    ":white_check_mark: Your answer: 9" under it, no buttons."""
    blocks = [
        _section(_question_text(settled.question), "surveybot-text"),
        _context(f":white_check_mark: {escape(settled.answer)}", "surveybot-answer"),
    ]
    return _clip(settled.text, MAX_FALLBACK_TEXT), blocks


_ESCAPED_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]+)&gt;")


def notice_message(text: str) -> tuple[str, list[JSON]]:
    """A notice; a user mention in it (``<@U…>``) stays a mention, everything else is text."""
    body = _ESCAPED_MENTION.sub(r"<@\1>", escape(text))
    return _clip(text, MAX_FALLBACK_TEXT), [_section(body, "surveybot-notice")]


@dataclass(frozen=True)
class Profile:
    """What users.info tells about a person: their language and the name to credit them by."""

    locale: str | None = None
    name: str | None = None


def profile(user: JSON) -> Profile:
    """A users.info ``user`` object as a :class:`Profile` (display name, else real name)."""
    info = user.get("profile") or {}
    name = info.get("display_name") or info.get("real_name") or user.get("real_name")
    return Profile(locale=user.get("locale") or None, name=name or user.get("name") or None)


# ------------------------------------------------------------------------------- /survey

# Slack error codes after which retrying the same message cannot help.
PERMANENT: dict[str, str] = {
    "user_not_found": "there is no such user in this workspace",
    "users_not_found": "there is no such user in this workspace",
    "user_not_visible": "the bot cannot see this user",
    "cannot_dm_bot": "that is a bot, not a person",
    "cannot_dm": "the bot cannot message this person",
    "invalid_user_combination": "the bot cannot open a direct message with this person (a Slack "
    "Connect user from another organisation?): resolve their thread with ✅ instead",
    "user_disabled": "their account is deactivated",
    "account_inactive": "the account is deactivated",
    "user_is_restricted": "guests cannot be messaged by the bot",
    "messages_tab_disabled": "the app's Messages tab is turned off (see slack-manifest.yaml)",
    "restricted_action": "the workspace does not allow the bot to message this person",
    "channel_not_found": "the bot cannot find that conversation",
    "not_in_channel": "the bot is not a member of that channel",
    "is_archived": "that channel is archived",
    "missing_scope": "the Slack app lacks a permission: reinstall it from slack-manifest.yaml",
    "not_allowed_token_type": "SURVEYBOT_SLACK_BOT_TOKEN must be a bot token (xoxb-…)",
    "invalid_auth": "SURVEYBOT_SLACK_BOT_TOKEN was rejected",
    "not_authed": "no bot token was sent",
    "token_revoked": "the bot token was revoked",
    "token_expired": "the bot token expired",
    "account_inactive_or_deleted": "the account is deactivated",
    "team_access_not_granted": "the app is not installed in that workspace",
    "invalid_blocks": "Slack refused the message layout",
    "invalid_blocks_format": "Slack refused the message layout",
    "msg_too_long": "the message is too long",
    "no_text": "the message was empty",
}


_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|([^>]*))?>$")
_BARE_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")  # flow ids are lowercase


class CommandError(ValueError):
    """A `/survey` line that cannot be understood; the message is shown to the staff member."""


@dataclass(frozen=True)
class SurveyCommand:
    flow_id: str
    user_id: str
    user_name: str | None = None
    context: dict[str, str] = field(default_factory=dict)


def parse_survey_command(text: str) -> SurveyCommand | None:
    """``/survey <flow> <@U…> [key=value ...]``; None when there is nothing (or "help") to
    parse. The person may be a Slack mention (``<@U123>``, ``<@U123|maria>``, sent when the
    command escapes users) or a bare member ID (``U123``). Values may be quoted."""
    line = unescape(text).strip()
    if not line or line.lower() in ("help", "-h", "--help"):
        return None
    try:
        args = parse_arguments(split_words(line))
    except BadArguments as exc:
        if exc.why == "quotes":
            raise CommandError("I could not read that command (a quote is not closed).") from None
        raise CommandError(
            f"I could not read `{exc.item}`: context goes as key=value, e.g. ticket_id=4711."
        ) from None
    flows: list[str] = []
    people: list[tuple[str, str | None]] = []
    for token in args.words:
        mention = _MENTION.match(token)
        if mention:
            people.append((mention[1], mention[2] or None))
        elif _BARE_ID.match(token):
            people.append((token, None))
        elif token.startswith("@"):
            raise CommandError(
                f"I could not tell who `{token}` is. Pick the person from Slack's @-mention "
                "list so the name turns into a link, or paste their member ID (U…, from "
                "their profile: ⋮ → Copy member ID)."
            )
        else:
            flows.append(token)
    if not flows:
        raise CommandError("Which survey? Name a flow first, e.g. `/survey csat @maria`.")
    if len(flows) > 1:
        extra = ", ".join(f"`{f}`" for f in flows[1:])
        raise CommandError(
            f"I did not understand {extra}. Context goes as key=value, e.g. ticket_id=4711."
        )
    if not people:
        raise CommandError(f"Who should get it? Mention the person: `/survey {flows[0]} @maria`.")
    if len(set(p for p, _ in people)) > 1:
        raise CommandError("One person at a time, please: send one `/survey` per person.")
    user_id, user_name = people[0]
    return SurveyCommand(flows[0], user_id, user_name, dict(args.context))


def delivery_error(error: str, status: int, headers: dict[str, Any]) -> DeliveryError:
    """A failed Web API call as the runtime's DeliveryError: HTTP 429 carries Retry-After;
    errors in PERMANENT cannot be helped by retrying; anything else may pass later."""
    if status == 429 or error == "ratelimited":
        raw = {k.lower(): v for k, v in headers.items()}.get("retry-after", "1")
        raw = raw[0] if isinstance(raw, list) else raw
        try:
            retry_after = float(raw)
        except (TypeError, ValueError):
            retry_after = 1.0
        return DeliveryError(f"Slack rate limit (retry after {raw} s)", retry_after=retry_after,
                             scope="platform")  # fmt: skip
    if error in PERMANENT:
        return DeliveryError(f"{PERMANENT[error]} (Slack: {error})", permanent=True)
    return DeliveryError(f"Slack error: {error}")


# ------------------------------------------------------------------------------- payloads


@dataclass(frozen=True)
class Incoming:
    """What a person did, as the runtime will see it (the adapter adds locale and ref), and
    where to answer: the conversation and, for clicks and commands, the response_url."""

    inbound: Inbound
    channel: str | None
    response_url: str | None = None


def chat_of(channel: str | None) -> str | None:
    """Sessions in a DM are addressed with chat_id None; DM channel ids start with D."""
    return None if channel is None or channel.startswith("D") else channel


def from_click(body: JSON) -> Incoming:
    """A block_actions payload: a tap whose payload is the button's value (forged or not)."""
    action = (body.get("actions") or [{}])[0]
    container = body.get("container") or {}
    user = body.get("user") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    thread = container.get("thread_ts") or (body.get("message") or {}).get("thread_ts")
    value = action.get("value")
    inbound = Inbound(
        platform="slack", kind="tap", user_id=str(user.get("id", "")), chat_id=chat_of(channel),
        payload=value if isinstance(value, str) else None,
        message_id=container.get("message_ts") or (body.get("message") or {}).get("ts"),
        user_name=user.get("username") or user.get("name"),
        thread_id=str(thread) if thread else None,
    )  # fmt: skip
    return Incoming(inbound, channel, body.get("response_url"))


def from_skip_command(command: JSON) -> Incoming:
    """/skip, typed in the DM with the bot (Slack clients treat "/skip" as a command)."""
    channel = str(command.get("channel_id") or "") or None
    trigger = command.get("trigger_id")
    inbound = Inbound(
        platform="slack", kind="skip", user_id=str(command.get("user_id", "")),
        chat_id=chat_of(channel), event_id=f"slack:cmd:{trigger}" if trigger else None,
        text="/skip", user_name=command.get("user_name"),
    )  # fmt: skip
    return Incoming(inbound, channel, command.get("response_url"))


def from_message(body: JSON) -> Incoming | None:
    """An Events API message: a person's new message in their DM with the bot is an answer
    (typed /skip included: the engine reads it); edits, deletions, bot messages and other
    channels are not (None)."""
    event = body.get("event") or {}
    if (
        event.get("type") != "message"
        or event.get("channel_type") != "im"
        or event.get("subtype")
        or event.get("bot_id")
        or not event.get("user")
    ):
        return None
    channel = str(event.get("channel") or "") or None
    text = unescape(str(event.get("text") or "")).strip()
    event_id = body.get("event_id")
    inbound = Inbound(
        platform="slack", kind="text",
        user_id=str(event["user"]), chat_id=chat_of(channel), text=text,
        event_id=f"slack:{event_id}" if event_id else None,
    )  # fmt: skip
    return Incoming(inbound, channel)
