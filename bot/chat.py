"""Platform-neutral, frozen types that cross the adapter boundary.

Adapters turn platform payloads into :class:`Inbound` and render :class:`Prompt`; nothing in
here knows about Telegram or Slack; :class:`Adapter` is what the runtime asks of a platform.
A button carries a compact payload (``sb1:<session id>:<question index>:<value>``) that fits
Telegram's 64-byte callback_data.
"""

from __future__ import annotations

import re
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

Platform = Literal["telegram", "slack", "console"]
PLATFORMS: tuple[Platform, ...] = ("telegram", "slack", "console")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Address(_Frozen):
    """Who a survey is for and where it is asked. ``chat_id`` None = the customer's DM."""

    platform: Platform
    user_id: str = Field(min_length=1, max_length=64)
    chat_id: str | None = Field(default=None, max_length=64)
    user_name: str | None = None  # shown when the survey is posted in a group
    # where in the chat: a Slack thread (its root's ts) or a Telegram forum topic
    # (message_thread_id); None = the chat itself (or Telegram's "General" topic)
    thread_id: str | None = Field(default=None, max_length=64)


class Button(_Frozen):
    label: str
    payload: str


class Prompt(_Frozen):
    """One message to show a customer: a question (with buttons or not), thanks or a notice."""

    kind: Literal["question", "thanks", "notice", "reminder"]
    session_id: str
    text: str
    question_id: str | None = None
    rows: tuple[tuple[Button, ...], ...] = ()  # the answers' buttons
    skip: Button | None = None  # the Skip button of an optional question
    hint: str | None = None
    mention: str | None = None  # display name of the addressed customer, in group chats
    locale: str = "en"

    @property
    def buttons(self) -> tuple[Button, ...]:
        """Every button in display order, the Skip button last."""
        answers = tuple(b for row in self.rows for b in row)
        return (*answers, self.skip) if self.skip is not None else answers


class Card(_Frozen):
    """A message to staff, never to a customer (a detractor alert): a title, lines of text and
    buttons. Posted once, then edited in place as things change (``Adapter.edit_card``)."""

    title: str
    lines: tuple[str, ...] = ()
    rows: tuple[tuple[Button, ...], ...] = ()

    @property
    def text(self) -> str:
        return "\n".join((self.title, *self.lines))


class Settled(_Frozen):
    """A tapped question once it has its answer, shown in place of the message with buttons:
    the question as it was asked and the answer line ("Your answer: 9"), kept apart so that
    each platform lays them out its own way."""

    question: str
    answer: str

    @property
    def text(self) -> str:
        """Both as one plain text, the answer in a paragraph of its own."""
        return f"{self.question}\n\n{self.answer}"


class Inbound(_Frozen):
    """Something a person did: tapped a button, typed text, or typed /skip."""

    platform: Platform
    kind: Literal["tap", "text", "skip"]
    user_id: str
    chat_id: str | None = None
    event_id: str | None = None  # platform delivery id; duplicates are ignored
    locale: str | None = None
    payload: str | None = None  # tap
    text: str | None = None  # text
    message_id: str | None = None  # the message that carried the tapped button
    user_name: str | None = None
    ref: str | None = None  # opaque adapter handle (callback query id, response_url, ...)
    thread_id: str | None = None  # the Slack thread / Telegram topic it happened in
    reply_to: str | None = None  # the bot's message this one replies to (Telegram's replies)
    # typed in a thread where people also talk among themselves (a Slack support thread):
    # it answers only a question that waits for typed text, and is otherwise left alone
    ambient: bool = False


class RawEvent(_Frozen):
    """A platform event exactly as it arrived, before anything parsed it: what the inbox stores
    before the platform is acknowledged. Edges build it with pure functions that never raise,
    so even an event nothing can parse is stored (and later quarantined), never refused."""

    platform: Platform
    event_id: str  # the platform's delivery id: a redelivery is a duplicate
    key: str  # ordering key: one customer's events are handled one after another, in order
    body: str  # the raw JSON text (or whatever text came, for a poison event)
    user_id: str | None = None  # whose event, when known (`surveybot erase` removes it)


class Sent(_Frozen):
    """What an adapter reports after sending: the platform's chat and message ids."""

    chat_id: str
    message_id: str


class DeliveryError(Exception):
    """Raised by ``Adapter.send`` when a message could not be delivered.

    ``permanent`` means retrying cannot help (blocked bot, unknown user);
    ``retry_after`` is the platform's flood-control wait in seconds, when it gave one, and
    ``scope`` what that wait concerns: the one chat, or every call to the platform.
    """

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None,
        scope: Literal["chat", "platform"] = "chat",
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.scope = scope


_PAYLOAD = re.compile(r"^sb1:([A-Za-z0-9_-]{8,24}):(\d{1,3}):([A-Za-z0-9_-]{1,16})$")


def encode_payload(session_id: str, question_index: int, value: str) -> str:
    payload = f"sb1:{session_id}:{question_index}:{value}"
    if not _PAYLOAD.match(payload) or len(payload.encode()) > 64:
        raise ValueError(f"payload does not fit: {payload!r}")
    return payload


def decode_payload(payload: str | None) -> tuple[str, int, str] | None:
    """``(session_id, question_index, value)`` or None for anything malformed."""
    if not payload:
        return None
    match = _PAYLOAD.match(payload)
    if not match:
        return None
    return match[1], int(match[2]), match[3]


# An alert's buttons: sf1:<session id>:<follow-up id>:<action>. The session id (unguessable)
# must match the follow-up's, so a payload made up elsewhere names nothing.
FollowupAction = Literal["own", "done"]
_FOLLOWUP = re.compile(r"^sf1:([A-Za-z0-9_-]{8,24}):(\d{1,12}):(own|done)$")


def encode_followup(session_id: str, followup_id: int, action: FollowupAction) -> str:
    payload = f"sf1:{session_id}:{followup_id}:{action}"
    if not _FOLLOWUP.match(payload) or len(payload.encode()) > 64:
        raise ValueError(f"payload does not fit: {payload!r}")
    return payload


def is_followup(payload: str | None) -> bool:
    """Whether a button press belongs to an alert (not to a survey): by its prefix."""
    return bool(payload) and str(payload).startswith("sf1:")


def decode_followup(payload: str | None) -> tuple[str, int, FollowupAction] | None:
    """``(session_id, followup_id, action)`` or None for anything malformed."""
    match = _FOLLOWUP.match(payload or "")
    if not match:
        return None
    return match[1], int(match[2]), "own" if match[3] == "own" else "done"


@runtime_checkable
class Adapter(Protocol):
    """What the runtime asks of a chat platform. Adapters only translate: incoming platform
    events become :class:`Inbound` for ``Runtime.handle``, and the runtime calls back here to
    show prompts. An adapter never decides which question comes next, never touches storage."""

    platform: Platform

    async def send(self, address: Address, prompt: Prompt) -> Sent:
        """Show a prompt; raise :class:`DeliveryError` when it cannot."""

    async def settle(self, inbound: Inbound, settled: Settled) -> None:
        """Replace the tapped message by the question and the chosen answer, without
        buttons. Errors such as "message is not modified" are swallowed and logged; the
        platform's flood control (429) is raised as :class:`DeliveryError` for the sender."""

    async def acknowledge(self, inbound: Inbound, notice: str | None = None) -> None:
        """Answer what the person did. For a tap: the platform's ack (an alert or ephemeral
        message when ``notice`` is given). For typed text, ``notice`` is sent as a reply."""

    async def locale_of(self, address: Address) -> str | None:
        """The customer's language as the platform knows it (e.g. "el-GR"), if it does."""

    async def post_card(self, address: Address, card: Card) -> Sent:
        """Post a staff card (an alert) in a channel or group (topic, thread); raise
        :class:`DeliveryError` when it cannot."""

    async def edit_card(self, address: Address, message_id: str, card: Card) -> None:
        """Replace a posted card in place (Telegram editMessageText, Slack chat.update).
        "Not modified" is not an error; anything else raises :class:`DeliveryError`."""
