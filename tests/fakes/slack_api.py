"""A strict fake Slack (Web API, Socket Mode, response_url) for end-to-end tests.

The real slack-sdk / slack-bolt talk to it over HTTP and WebSocket on 127.0.0.1:
``AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)`` and
``AsyncSocketModeHandler(app, fake.app_token)``. Test code pushes events with
``await fake.slash_command(...)`` / ``click(...)`` / ``dm_message(...)`` and asserts on the
recorded ``posts``, ``updates``, ``ephemerals``, ``responses``, ``messages`` and ``acks``.
For HTTP mode the same payloads come from ``build_*`` methods and go through
``slash_command_http`` / ``block_actions_http`` / ``events_http`` (signed with ``signed_headers``).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import pprint
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlencode

import aiohttp
from aiohttp import WSMsgType, web

JSON = dict[str, Any]
T = TypeVar("T")

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


@dataclass
class FakeUser:
    id: str
    name: str
    locale: str = "en-US"
    cannot_dm: bool | str = False  # True -> "user_disabled"; a str is the exact error
    is_bot: bool = False


@dataclass
class Call:
    method: str
    at: float  # time.monotonic()
    args: JSON
    status: int = 200
    error: str | None = None


@dataclass
class _Failure:
    remaining: int
    retry_after: int
    error: str


@dataclass
class _ResponseUrl:
    kind: str  # "command" | "action"
    channel: str
    user: str
    message_ts: str | None = None
    uses: int = 0


class SlackHTTP(NamedTuple):
    """An HTTP request Slack would send to a Bolt app at /slack/events."""

    body: bytes
    headers: dict[str, str]


# ---------------------------------------------------------------- Block Kit validation


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


def _check_message(args: JSON, require: bool = True) -> tuple[str | None, list[JSON] | None]:
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


def _truthy(v: Any) -> bool:
    return v in (True, 1, "1", "true", "True")


# ---------------------------------------------------------------- HTTP-mode helpers


def signed_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """X-Slack-Signature (v0 HMAC-SHA256 over ``v0:{ts}:{body}``) and X-Slack-Request-Timestamp."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    sig = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}


def _http(body: bytes, content_type: str, secret: str, timestamp: int | None) -> SlackHTTP:
    return SlackHTTP(
        body, {"Content-Type": content_type, **signed_headers(body, secret, timestamp)}
    )


def slash_command_http(payload: JSON, secret: str, timestamp: int | None = None) -> SlackHTTP:
    body = urlencode(payload).encode()
    return _http(body, "application/x-www-form-urlencoded", secret, timestamp)


def block_actions_http(payload: JSON, secret: str, timestamp: int | None = None) -> SlackHTTP:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return _http(body, "application/x-www-form-urlencoded", secret, timestamp)


def events_http(
    payload: JSON,
    secret: str,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    timestamp: int | None = None,
) -> SlackHTTP:
    req = _http(json.dumps(payload).encode(), "application/json", secret, timestamp)
    if retry_num is not None:
        req.headers.update(
            {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        )
    return req


async def send_http(url: str, req: SlackHTTP) -> tuple[int, str]:
    """POST a SlackHTTP request to a Bolt app; returns (status, body text)."""
    async with aiohttp.ClientSession() as s, s.post(url, data=req.body, headers=req.headers) as r:
        return r.status, await r.text()


# ---------------------------------------------------------------- the fake


class FakeSlack:
    def __init__(self) -> None:
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
        self.envelopes: list[JSON] = []
        self.acks: dict[str, JSON] = {}
        self.ack_delays: dict[str, float] = {}
        self.protocol_errors: list[str] = []
        self._ids = itertools.count(1)
        self._dms: dict[str, str] = {}
        self._failures: dict[str, _Failure] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._pushed_at: dict[str, float] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.connect_timeout = 5.0  # how long a push waits for a Socket Mode client
        self.user(self.bot_user_id, "surveybot", is_bot=True)
        self.channel("C0STAFF", "staff")

    # ---------------- lifecycle
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/response/{rid}", self._response_url)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

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

    def channel(self, id: str, name: str) -> str:
        self.channels[id] = {"id": id, "name": name, "is_im": id.startswith("D")}
        return id

    def dm_channel(self, user_id: str) -> str:
        """The bot's DM channel with user_id (created like conversations.open would)."""
        if user_id not in self._dms:
            self._dms[user_id] = self.channel(f"D{next(self._ids):08d}", "directmessage")
        return self._dms[user_id]

    def bot_messages(self, channel: str) -> list[JSON]:
        return [m for m in self.messages[channel] if m.get("bot_id") == self.bot_id]

    def fail_next(
        self, method: str, n: int = 1, retry_after: int = 1, error: str = "ratelimited"
    ) -> None:
        """Next n calls of method fail: HTTP 429 + Retry-After for "ratelimited", else 200."""
        self._failures[method] = _Failure(n, retry_after, error)

    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self._ids):06d}"

    def _find(self, channel: str, ts: str) -> JSON | None:
        return next((m for m in self.messages.get(channel, []) if m["ts"] == ts), None)

    # ---------------- Web API
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: JSON = dict(request.query)
        if request.content_type == "application/json" and request.can_read_body:
            args.update(await request.json())
        elif request.can_read_body:
            args.update(await request.post())
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else args.pop("token", None)
        args.pop("token", None)
        call = Call(method, time.monotonic(), args)
        self.calls.append(call)
        fail = self._failures.get(method)
        if fail is not None and fail.remaining > 0:
            fail.remaining -= 1
            call.error = fail.error
            if fail.error == "ratelimited":
                call.status = 429
                body = {"ok": False, "error": "ratelimited"}
                return web.json_response(
                    body, status=429, headers={"Retry-After": str(fail.retry_after)}
                )
            return web.json_response({"ok": False, "error": fail.error})
        try:
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                raise SlackError("unknown_method", req_method=method)
            wanted, other = (
                (self.app_token, self.bot_token)
                if method == "apps.connections.open"
                else (self.bot_token, self.app_token)
            )
            if not token:
                raise SlackError("not_authed")
            if token == other:
                raise SlackError("not_allowed_token_type")
            if token != wanted:
                raise SlackError("invalid_auth")
            result: JSON = {"ok": True, **handler(args)}
        except SlackError as e:
            call.error = e.body["error"]
            result = e.body
        return web.json_response(result)

    def _channel(self, value: Any) -> str:
        cid = str(value or "")
        if cid.startswith(("U", "W")) and cid in self.users:  # posting to a user id -> app DM
            return self.dm_channel(cid)
        if cid not in self.channels:
            raise SlackError("channel_not_found")
        return cid

    def _m_auth_test(self, args: JSON) -> JSON:
        return {
            "url": "https://fake-team.slack.com/", "team": "Fake Team", "user": "surveybot",
            "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }  # fmt: skip

    def _m_apps_connections_open(self, args: JSON) -> JSON:
        ticket = secrets.token_hex(8)
        self._tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self.port}/socket?ticket={ticket}&app_id={self.app_id}"}

    def _m_users_info(self, args: JSON) -> JSON:
        u = self.users.get(str(args.get("user", "")))
        if u is None:
            raise SlackError("user_not_found")
        user: JSON = {
            "id": u.id, "team_id": self.team_id, "name": u.name, "real_name": u.name.title(),
            "deleted": False, "is_bot": u.is_bot, "is_app_user": False, "tz": "Europe/Athens",
            "profile": {"display_name": u.name, "real_name": u.name.title()},
        }  # fmt: skip
        if _truthy(args.get("include_locale")):
            user["locale"] = u.locale
        return {"user": user}

    def _m_conversations_open(self, args: JSON) -> JSON:
        if args.get("channel"):
            return {"channel": {"id": self._channel(args["channel"])}, "no_op": True}
        ids = [x.strip() for x in str(args.get("users", "")).split(",") if x.strip()]
        if len(ids) != 1:  # the fake only does 1:1 DMs
            raise SlackError("users_list_not_supplied" if not ids else "not_supported_by_fake")
        u = self.users.get(ids[0])
        if u is None:
            raise SlackError("user_not_found")
        if u.is_bot and u.id != self.bot_user_id:
            raise SlackError("cannot_dm_bot")
        if u.cannot_dm:
            raise SlackError(u.cannot_dm if isinstance(u.cannot_dm, str) else "user_disabled")
        existed = u.id in self._dms
        chan = {"id": self.dm_channel(u.id), "is_im": True, "user": u.id}
        return {"channel": chan, "no_op": existed, "already_open": existed}

    def _m_chat_postMessage(self, args: JSON) -> JSON:
        cid = self._channel(args.get("channel"))
        text, blocks = _check_message(args)
        msg = self._add_message(cid, text or "", blocks, thread_ts=args.get("thread_ts"))
        self.posts.append({"channel": cid, **copy.deepcopy(msg)})
        return {"channel": cid, "ts": msg["ts"], "message": msg}

    def _add_message(
        self, cid: str, text: str, blocks: list[JSON] | None, thread_ts: Any = None
    ) -> JSON:
        msg: JSON = {
            "type": "message", "text": text, "user": self.bot_user_id, "bot_id": self.bot_id,
            "app_id": self.app_id, "team": self.team_id, "ts": self._ts(),
        }  # fmt: skip
        if blocks:
            msg["blocks"] = blocks
        if thread_ts:
            msg["thread_ts"] = str(thread_ts)
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

    def _m_chat_update(self, args: JSON) -> JSON:
        cid = self._channel(args.get("channel"))
        text, blocks = _check_message(args)
        msg = self._replace(cid, str(args.get("ts", "")), text, blocks, "chat.update")
        return {"channel": cid, "ts": msg["ts"], "text": msg["text"], "message": msg}

    def _m_chat_postEphemeral(self, args: JSON) -> JSON:
        cid = self._channel(args.get("channel"))
        uid = str(args.get("user", ""))
        if uid not in self.users:
            raise SlackError("user_not_in_channel")
        text, blocks = _check_message(args)
        return {"message_ts": self._ephemeral(cid, uid, text, blocks, "chat.postEphemeral")}

    def _ephemeral(self, cid: str, uid: str, text: Any, blocks: Any, via: str) -> str:
        ts = self._ts()
        self.ephemerals.append(
            {"channel": cid, "user": uid, "text": text or "", "blocks": blocks, "message_ts": ts,
             "via": via}
        )  # fmt: skip
        return ts

    # ---------------- response_url
    def _new_response_url(self, kind: str, cid: str, uid: str, ts: str | None = None) -> str:
        rid = secrets.token_hex(8)
        self._response_urls[rid] = _ResponseUrl(kind, cid, uid, ts)
        return f"{self.url}/response/{rid}"

    async def _response_url(self, request: web.Request) -> web.Response:
        ru = self._response_urls.get(request.match_info["rid"])
        if ru is None:
            return web.Response(status=404, text="expired_url")
        ru.uses += 1
        if ru.uses > 5:  # Slack: at most 5 uses within 30 minutes
            return web.Response(status=404, text="used_url")
        try:
            body: JSON = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self.responses.append({**vars(ru), "body": body})
        try:
            text, blocks = _check_message(body, require=not _truthy(body.get("delete_original")))
            if _truthy(body.get("delete_original")) and ru.message_ts:
                if self._find(ru.channel, ru.message_ts) is None:
                    raise SlackError("message_not_found")
                msgs = self.messages[ru.channel]
                msgs[:] = [m for m in msgs if m["ts"] != ru.message_ts]
            elif _truthy(body.get("replace_original")) and ru.message_ts:
                self._replace(ru.channel, ru.message_ts, text or "", blocks or [], "response_url")
            elif body.get("response_type") == "in_channel":
                msg = self._add_message(ru.channel, text or "", blocks, body.get("thread_ts"))
                self.posts.append(
                    {"channel": ru.channel, "via": "response_url", **copy.deepcopy(msg)}
                )
            else:
                self._ephemeral(ru.channel, ru.user, text, blocks, "response_url")
        except SlackError as e:
            return web.Response(
                status=400 if e.body["error"] != "message_not_found" else 404, text=e.body["error"]
            )
        return web.Response(text="ok")

    # ---------------- payload builders (shared by Socket Mode and HTTP mode)
    def _user(self, uid: str) -> FakeUser:
        if uid not in self.users:
            raise KeyError(f"unknown user {uid!r}: register it with fake.user() first")
        return self.users[uid]

    def _trigger_id(self) -> str:
        return f"{next(self._ids)}.{self.team_id}.{secrets.token_hex(16)}"

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
        return {
            "type": "block_actions",
            "user": {"id": u.id, "username": u.name, "name": u.name, "team_id": self.team_id},
            "api_app_id": self.app_id, "token": "verification-token",
            "container": {"type": "message", "message_ts": ts, "channel_id": cid,
                          "is_ephemeral": False},
            "trigger_id": self._trigger_id(), "team": {"id": self.team_id, "domain": "fake-team"},
            "enterprise": None, "is_enterprise_install": False,
            "channel": {"id": cid, "name": self.channels.get(cid, {}).get("name", "")},
            "message": copy.deepcopy(msg), "state": {"values": {}},
            "response_url": self._new_response_url("action", cid, u.id, ts), "actions": [action],
        }  # fmt: skip

    def build_dm_message(self, user_id: str, text: str, channel_id: str | None = None) -> JSON:
        """An event_callback for a user's DM to the bot; the message is added to `messages`."""
        u = self._user(user_id)
        cid = channel_id or self.dm_channel(user_id)
        ts = self._ts()
        rich = [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]
        event: JSON = {
            "client_msg_id": str(uuid.uuid4()), "type": "message", "text": text, "user": u.id,
            "ts": ts, "team": self.team_id, "channel": cid, "event_ts": ts, "channel_type": "im",
            "blocks": [{"type": "rich_text", "block_id": secrets.token_hex(3), "elements": rich}],
        }  # fmt: skip
        self.messages[cid].append({k: v for k, v in event.items() if k != "channel_type"})
        auth = {"enterprise_id": None, "team_id": self.team_id, "user_id": self.bot_user_id,
                "is_bot": True, "is_enterprise_install": False}  # fmt: skip
        return {
            "token": "verification-token", "team_id": self.team_id, "api_app_id": self.app_id,
            "event": event, "type": "event_callback", "event_time": int(time.time()),
            "event_id": f"Ev{secrets.token_hex(5).upper()}", "authorizations": [auth],
            "is_ext_shared_channel": False, "event_context": "4-" + secrets.token_hex(16),
        }  # fmt: skip

    # ---------------- Socket Mode
    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:  # tickets are single use
            self.protocol_errors.append(f"websocket connect with bad ticket {ticket!r}")
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        try:
            debug = {
                "host": "applink-fake",
                "build_number": 1,
                "approximate_connection_time": 18060,
            }
            info = {"app_id": self.app_id}
            hello = {"type": "hello", "num_connections": len(self._sockets), "debug_info": debug}
            await ws.send_json({**hello, "connection_info": info})
            async for m in ws:
                if m.type == WSMsgType.TEXT:
                    self._on_ack(m.data)
        finally:
            self._sockets.remove(ws)
        return ws

    def _on_ack(self, raw: str) -> None:
        try:
            data = json.loads(raw)
            eid = data["envelope_id"]
        except (ValueError, KeyError, TypeError):
            self.protocol_errors.append(f"unexpected socket message: {raw!r}")
            return
        if eid not in self._pushed_at:
            self.protocol_errors.append(f"ack for unknown envelope {eid}")
        elif eid in self.acks:
            self.protocol_errors.append(f"duplicate ack for envelope {eid}")
        else:
            self.acks[eid] = data.get("payload") or {}
            self.ack_delays[eid] = time.monotonic() - self._pushed_at[eid]
            env = next(e for e in self.envelopes if e["envelope_id"] == eid)
            p = self.acks[eid]
            if env["type"] == "slash_commands" and (p.get("text") or p.get("blocks")):
                cid, uid = env["payload"]["channel_id"], env["payload"]["user_id"]
                self._ephemeral(cid, uid, p.get("text"), p.get("blocks"), "ack")

    @property
    def connected(self) -> bool:
        return any(not ws.closed for ws in self._sockets)

    async def _send(self, envelope: JSON) -> JSON:
        await self.wait_for(
            lambda: self.connected, self.connect_timeout, "a Socket Mode connection"
        )
        ws = [w for w in self._sockets if not w.closed][-1]
        self.envelopes.append(envelope)
        self._pushed_at[envelope["envelope_id"]] = time.monotonic()
        await ws.send_json(envelope)
        return envelope

    async def _push(self, kind: str, payload: JSON, accepts_response: bool) -> JSON:
        env: JSON = {"envelope_id": str(uuid.uuid4()), "payload": payload, "type": kind,
                     "accepts_response_payload": accepts_response}  # fmt: skip
        if kind == "events_api":
            env.update(retry_attempt=0, retry_reason="")
        return await self._send(env)

    async def slash_command(
        self, user_id: str, text: str, command: str = "/survey", channel_id: str = "C0STAFF"
    ) -> JSON:
        payload = self.build_slash_command(user_id, text, command, channel_id)
        return await self._push("slash_commands", payload, True)

    async def click(
        self,
        user_id: str,
        message_ts_or_message: str | JSON,
        action_id: str,
        value: str | None = None,
        channel_id: str | None = None,
        must_exist: bool = True,
    ) -> JSON:
        payload = self.build_block_actions(
            user_id, message_ts_or_message, action_id, value, channel_id, must_exist
        )
        return await self._push("interactive", payload, False)

    async def dm_message(self, user_id: str, text: str, channel_id: str | None = None) -> JSON:
        return await self._push(
            "events_api", self.build_dm_message(user_id, text, channel_id), False
        )

    async def redeliver(self, envelope: JSON, reason: str = "timeout") -> JSON:
        """Send the same payload again under a new envelope_id (events_api: retry_attempt + 1)."""
        env = copy.deepcopy(envelope)
        env["envelope_id"] = str(uuid.uuid4())
        if env["type"] == "events_api":
            env.update(retry_attempt=int(env.get("retry_attempt") or 0) + 1, retry_reason=reason)
        return await self._send(env)

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask connected clients to reconnect, like Slack does before rotating sockets."""
        for ws in [w for w in self._sockets if not w.closed]:
            await ws.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
            )

    # ---------------- waiting
    async def wait_ack(self, envelope_id: str | JSON, timeout: float = 5) -> JSON:  # noqa: ASYNC109
        eid = envelope_id if isinstance(envelope_id, str) else envelope_id["envelope_id"]
        await self.wait_for(lambda: eid in self.acks, timeout, f"ack of envelope {eid}")
        return self.acks[eid]

    async def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 5,  # noqa: ASYNC109
        what: str = "",
    ) -> T:
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what or predicate}\n{self.dump()}"
                )
            await asyncio.sleep(0.01)

    def dump(self) -> str:
        unacked = [e["envelope_id"] for e in self.envelopes if e["envelope_id"] not in self.acks]
        state = {
            "calls": [f"{c.method} -> {c.error or c.status}" for c in self.calls[-30:]],
            "messages": dict(self.messages), "ephemerals": self.ephemerals,
            "responses": self.responses, "acks": self.acks, "unacked": unacked,
            "protocol_errors": self.protocol_errors, "connected": self.connected,
        }  # fmt: skip
        return "FakeSlack state:\n" + pprint.pformat(state, width=120, compact=True)
