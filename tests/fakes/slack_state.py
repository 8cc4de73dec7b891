"""What the fake Slack knows: the workspace (users, including external Slack Connect users;
channels, including shared ones), every channel's messages with their threads and reactions,
and what the app did (posts, updates, ephemerals, response_url answers, Web API calls).
No I/O here: the Web API is in ``slack_methods``, Socket Mode in ``slack_socket``.
"""

from __future__ import annotations

import copy
import itertools
import pprint
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from tests.fakes.server import FakeServer
from tests.fakes.slack_blocks import JSON, SlackError


@dataclass
class FakeUser:
    id: str
    name: str
    locale: str = "en-US"
    cannot_dm: bool | str = False  # True -> "user_disabled"; a str is the exact error
    is_bot: bool = False
    team_id: str | None = None  # another workspace's id: an external (Slack Connect) user
    visible: bool = True  # external users: does users.info resolve them?


@dataclass
class Call:
    method: str
    at: float  # time.monotonic()
    args: JSON
    status: int = 200
    error: str | None = None


@dataclass
class Failure:
    remaining: int
    retry_after: int
    error: str


@dataclass
class ResponseUrl:
    kind: str  # "command" | "action" | "shortcut"
    channel: str
    user: str
    message_ts: str | None = None
    uses: int = 0


class SlackState(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.team_id, self.app_id = "T0FAKE", "A0FAKE"
        self.bot_user_id, self.bot_id = "U0BOT", "B0BOT"
        self.bot_token = "xoxb-1-" + secrets.token_hex(12)
        self.app_token = "xapp-1-A0FAKE-" + secrets.token_hex(12)
        self.signing_secret = secrets.token_hex(16)
        self.users: dict[str, FakeUser] = {}
        self.channels: dict[str, JSON] = {}
        self.messages: defaultdict[str, list[JSON]] = defaultdict(list)
        self.posts: list[JSON] = []
        self.updates: list[JSON] = []
        self.ephemerals: list[JSON] = []
        self.responses: list[JSON] = []
        self.calls: list[Call] = []
        self.protocol_errors: list[str] = []
        self._ids = itertools.count(1)
        self._dms: dict[str, str] = {}
        self.user(self.bot_user_id, "surveybot", is_bot=True)
        self.channel("C0STAFF", "staff")

    # ---------------- registry
    def user(
        self,
        id: str,
        name: str,
        locale: str = "en-US",
        cannot_dm: bool | str = False,
        is_bot: bool = False,
    ) -> FakeUser:
        u = FakeUser(id, name, locale, cannot_dm, is_bot)
        self.users[id] = u
        return u

    def external_user(
        self,
        id: str,
        name: str,
        team_id: str = "T0EXTERNAL",
        locale: str = "en-US",
        *,
        visible: bool = False,
        dm: bool = False,
    ) -> FakeUser:
        """A Slack Connect user from another organisation. As Slack does for people the app
        cannot see, ``users.info`` answers ``user_not_found`` unless ``visible``, and
        ``conversations.open`` fails (``user_not_found``; ``invalid_user_combination`` when
        visible) unless ``dm``."""
        u = FakeUser(id, name, locale, False if dm else "invalid_user_combination",
                     team_id=team_id, visible=visible)  # fmt: skip
        self.users[id] = u
        return u

    def channel(self, id: str, name: str, *, shared: bool = False) -> str:
        """A channel; ``shared``: a Slack Connect channel shared with another organisation."""
        self.channels[id] = {"id": id, "name": name, "is_im": id.startswith("D"),
                             "is_ext_shared": shared}  # fmt: skip
        return id

    def dm_channel(self, user_id: str) -> str:
        """The bot's DM channel with user_id (created like conversations.open would)."""
        if user_id not in self._dms:
            self._dms[user_id] = self.channel(f"D{next(self._ids):08d}", "directmessage")
        return self._dms[user_id]

    # ---------------- reading
    def bot_messages(self, channel: str) -> list[JSON]:
        return [m for m in self.messages[channel] if m.get("bot_id") == self.bot_id]

    def thread(self, channel: str, thread_ts: str) -> list[JSON]:
        """The root message and its replies, oldest first (what conversations.replies gives)."""
        return [m for m in self.messages.get(channel, [])
                if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]  # fmt: skip

    def message(self, channel: str, ts: str) -> JSON | None:
        return self._find(channel, ts)

    # ---------------- internals
    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self._ids):06d}"

    def _find(self, channel: str, ts: str) -> JSON | None:
        return next((m for m in self.messages.get(channel, []) if m["ts"] == ts), None)

    def _user(self, uid: str) -> FakeUser:
        if uid not in self.users:
            raise KeyError(f"unknown user {uid!r}: register it with fake.user() first")
        return self.users[uid]

    def _thread_root(self, cid: str, thread_ts: Any) -> JSON:
        """The root of the thread ``thread_ts`` names (a reply's ts names its thread)."""
        root = self._find(cid, str(thread_ts))
        if root is None:
            raise SlackError("thread_not_found")
        if root.get("thread_ts") and root["thread_ts"] != root["ts"]:
            root = self._find(cid, root["thread_ts"]) or root
        return root

    def _add_message(
        self, cid: str, text: str, blocks: list[JSON] | None, thread_ts: Any = None,
        author: FakeUser | None = None,
    ) -> JSON:  # fmt: skip
        """Store a message (the bot's unless ``author``); a reply updates its thread's root."""
        ts = self._ts()
        if author is None:
            msg: JSON = {
                "type": "message", "text": text, "user": self.bot_user_id, "bot_id": self.bot_id,
                "app_id": self.app_id, "team": self.team_id, "ts": ts,
            }  # fmt: skip
        else:
            msg = {"type": "message", "text": text, "user": author.id, "ts": ts,
                   "team": author.team_id or self.team_id}  # fmt: skip
        if blocks:
            msg["blocks"] = blocks
        if thread_ts:
            root = self._thread_root(cid, thread_ts)
            root["thread_ts"] = msg["thread_ts"] = root["ts"]
            msg["parent_user_id"] = root["user"]
            root["reply_count"] = root.get("reply_count", 0) + 1
            root["latest_reply"] = ts
            users = root.setdefault("reply_users", [])
            if msg["user"] not in users:
                users.append(msg["user"])
        self.messages[cid].append(msg)
        return msg

    def _replace(self, cid: str, ts: str, text: str | None, blocks: Any, via: str) -> JSON:
        msg = self._find(cid, ts)
        if msg is None:
            raise SlackError("message_not_found")
        if msg.get("bot_id") != self.bot_id:
            raise SlackError("cant_update_message")
        if text is not None:
            msg["text"] = text
        if blocks is not None:
            msg.pop("blocks", None)
            if blocks:
                msg["blocks"] = blocks
        msg["edited"] = {"user": self.bot_user_id, "ts": self._ts()}
        self.updates.append({"channel": cid, "via": via, **copy.deepcopy(msg)})
        return msg

    def _ephemeral(self, cid: str, uid: str, text: Any, blocks: Any, via: str) -> str:
        ts = self._ts()
        self.ephemerals.append(
            {"channel": cid, "user": uid, "text": text or "", "blocks": blocks, "message_ts": ts,
             "via": via}
        )  # fmt: skip
        return ts

    def _state(self) -> JSON:
        return {
            "calls": [f"{c.method} -> {c.error or c.status}" for c in self.calls[-30:]],
            "messages": dict(self.messages), "ephemerals": self.ephemerals,
            "responses": self.responses, "protocol_errors": self.protocol_errors,
        }  # fmt: skip

    def dump(self) -> str:
        return "FakeSlack state:\n" + pprint.pformat(self._state(), width=120, compact=True)
