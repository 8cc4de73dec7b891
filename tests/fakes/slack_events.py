"""Payloads Slack sends to an app, built from the fake's state exactly as Slack shapes them:
slash commands, block_actions clicks, message shortcuts (``message_action``), and Events API
callbacks for DMs, channel messages, thread replies and ``reaction_added``. Building a message
event also posts the message in the fake channel, so the app can read it back
(``conversations.replies``). The same payloads go over Socket Mode or HTTP.
"""

from __future__ import annotations

import copy
import secrets
import time
import uuid
from typing import Any

from tests.fakes.slack_blocks import JSON
from tests.fakes.slack_state import FakeUser, ResponseUrl, SlackState


class SlackEvents(SlackState):
    def __init__(self) -> None:
        super().__init__()
        self._response_urls: dict[str, ResponseUrl] = {}

    def _new_response_url(self, kind: str, cid: str, uid: str, ts: str | None = None) -> str:
        rid = secrets.token_hex(8)
        self._response_urls[rid] = ResponseUrl(kind, cid, uid, ts)
        return f"{self.url}/response/{rid}"

    def _trigger_id(self) -> str:
        return f"{next(self._ids)}.{self.team_id}.{secrets.token_hex(16)}"

    def _user_obj(self, u: FakeUser) -> JSON:
        return {
            "id": u.id,
            "username": u.name,
            "name": u.name,
            "team_id": u.team_id or self.team_id,
        }

    def _channel_obj(self, cid: str) -> JSON:
        return {"id": cid, "name": self.channels.get(cid, {}).get("name", "")}

    # ---------------- interactivity
    def build_slash_command(
        self, user_id: str, text: str, command: str = "/survey", channel_id: str = "C0STAFF"
    ) -> dict[str, str]:
        u = self._user(user_id)
        if channel_id not in self.channels:
            self.channel(channel_id, f"channel-{channel_id.lower()}")
        return {
            "token": "verification-token", "team_id": self.team_id, "team_domain": "fake-team",
            "channel_id": channel_id, "channel_name": self.channels[channel_id]["name"],
            "user_id": u.id, "user_name": u.name, "command": command, "text": text,
            "api_app_id": self.app_id, "is_enterprise_install": "false",
            "response_url": self._new_response_url("command", channel_id, u.id),
            "trigger_id": self._trigger_id(),
        }  # fmt: skip

    def build_block_actions(
        self,
        user_id: str,
        message_ts_or_message: str | JSON,
        action_id: str,
        value: str | None = None,
        channel_id: str | None = None,
        must_exist: bool = True,
    ) -> JSON:
        """A block_actions payload for a click on the *current* version of a bot message."""
        u = self._user(user_id)
        ref = message_ts_or_message
        ts = ref if isinstance(ref, str) else str(ref["ts"])
        cid = channel_id or (None if isinstance(ref, str) else ref.get("channel"))
        cands = (
            [cid]
            if cid
            else [c for c, ms in self.messages.items() if any(m["ts"] == ts for m in ms)]
        )
        msg = self._find(cands[0], ts) if cands else None
        if msg is None or not cands:
            raise LookupError(f"no message ts={ts} in channel {cid}\n{self.dump()}")
        cid = cands[0]
        found: tuple[str, JSON] | None = None
        for b in msg.get("blocks", []):
            els = b.get("elements", []) if b["type"] == "actions" else [b.get("accessory") or {}]
            for el in els:
                if el.get("action_id") == action_id:
                    found = (b.get("block_id", ""), el)
        if found is None and must_exist:
            raise LookupError(f"message {ts} has no element action_id={action_id!r}: {msg}")
        block_id, el = found or (
            "",
            {"type": "button", "text": {"type": "plain_text", "text": "?"}, "value": value},
        )
        if value is not None and found is not None and el.get("value") != value:
            raise ValueError(f"button {action_id!r} has value {el.get('value')!r}, not {value!r}")
        action: JSON = {
            "type": el.get("type", "button"), "block_id": block_id, "action_id": action_id,
            "text": el.get("text"), "value": el.get("value"), "action_ts": f"{time.time():.6f}",
        }  # fmt: skip
        if "style" in el:
            action["style"] = el["style"]
        container = {"type": "message", "message_ts": ts, "channel_id": cid, "is_ephemeral": False}
        if msg.get("thread_ts"):
            container["thread_ts"] = msg["thread_ts"]
        return {
            "type": "block_actions", "user": self._user_obj(u),
            "api_app_id": self.app_id, "token": "verification-token", "container": container,
            "trigger_id": self._trigger_id(), "team": {"id": self.team_id, "domain": "fake-team"},
            "enterprise": None, "is_enterprise_install": False,
            "channel": self._channel_obj(cid), "message": copy.deepcopy(msg),
            "state": {"values": {}},
            "response_url": self._new_response_url("action", cid, u.id, ts), "actions": [action],
        }  # fmt: skip

    def build_shortcut(self, user_id: str, channel_id: str, ts: str, callback_id: str) -> JSON:
        """A message shortcut ("…" menu on a message) the user picked: ``message_action``."""
        u = self._user(user_id)
        msg = self._find(channel_id, ts)
        if msg is None:
            raise LookupError(f"no message ts={ts} in channel {channel_id}\n{self.dump()}")
        return {
            "type": "message_action", "token": "verification-token", "callback_id": callback_id,
            "action_ts": f"{time.time():.6f}", "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": "fake-team"}, "user": self._user_obj(u),
            "channel": self._channel_obj(channel_id), "is_enterprise_install": False,
            "enterprise": None, "message_ts": ts, "message": copy.deepcopy(msg),
            "response_url": self._new_response_url("shortcut", channel_id, u.id),
        }  # fmt: skip

    # ---------------- Events API
    def event_callback(self, event: JSON, channel: str | None = None) -> JSON:
        """Wrap an event the way the Events API delivers it."""
        auth = {"enterprise_id": None, "team_id": self.team_id, "user_id": self.bot_user_id,
                "is_bot": True, "is_enterprise_install": False}  # fmt: skip
        shared = bool(channel and self.channels.get(channel, {}).get("is_ext_shared"))
        return {
            "token": "verification-token", "team_id": self.team_id, "api_app_id": self.app_id,
            "event": event, "type": "event_callback", "event_time": int(time.time()),
            "event_id": f"Ev{secrets.token_hex(5).upper()}", "authorizations": [auth],
            "is_ext_shared_channel": shared, "event_context": "4-" + secrets.token_hex(16),
        }  # fmt: skip

    def _message_event(
        self, u: FakeUser, cid: str, text: str, channel_type: str, thread_ts: Any = None
    ) -> JSON:
        msg = self._add_message(cid, text, None, thread_ts, author=u)
        rich = [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]
        msg["client_msg_id"] = str(uuid.uuid4())
        msg["blocks"] = [{"type": "rich_text", "block_id": secrets.token_hex(3), "elements": rich}]
        event = copy.deepcopy(msg) | {"channel": cid, "event_ts": msg["ts"],
                                      "channel_type": channel_type}  # fmt: skip
        if u.team_id:
            event["user_team"] = event["source_team"] = u.team_id
        return self.event_callback(event, cid)

    def build_dm_message(self, user_id: str, text: str, channel_id: str | None = None) -> JSON:
        """An event_callback for a user's DM to the bot; the message is added to `messages`."""
        u = self._user(user_id)
        return self._message_event(u, channel_id or self.dm_channel(user_id), text, "im")

    def build_channel_message(
        self, user_id: str, channel_id: str, text: str, thread_ts: str | None = None
    ) -> JSON:
        """A user's message in a channel (a reply in the thread ``thread_ts`` when given)."""
        if channel_id not in self.channels:
            raise KeyError(f"unknown channel {channel_id!r}: register it with fake.channel()")
        u = self._user(user_id)
        return self._message_event(u, channel_id, text, "channel", thread_ts)

    def build_reaction(
        self, user_id: str, channel_id: str, ts: str, name: str, *, removed: bool = False
    ) -> JSON:
        """``reaction_added`` (or ``reaction_removed``) by a user on a message; the message's
        ``reactions`` change like Slack's."""
        u = self._user(user_id)
        msg = self._find(channel_id, ts)
        if msg is None:
            raise LookupError(f"no message ts={ts} in channel {channel_id}\n{self.dump()}")
        reactions: list[JSON] = msg.setdefault("reactions", [])
        entry = next((r for r in reactions if r["name"] == name), None)
        if entry is None:
            entry = {"name": name, "users": [], "count": 0}
            reactions.append(entry)
        if removed and u.id in entry["users"]:
            entry["users"].remove(u.id)
        elif not removed and u.id not in entry["users"]:
            entry["users"].append(u.id)
        entry["count"] = len(entry["users"])
        msg["reactions"] = [r for r in reactions if r["count"]]
        if not msg["reactions"]:
            del msg["reactions"]
        event = {
            "type": "reaction_removed" if removed else "reaction_added", "user": u.id,
            "reaction": name, "item_user": msg["user"], "event_ts": self._ts(),
            "item": {"type": "message", "channel": channel_id, "ts": ts},
        }  # fmt: skip
        return self.event_callback(event, channel_id)
