"""The Slack Web API methods the fake implements, with Slack's token rules and error names:
auth.test, apps.connections.open, users.info, conversations.open, conversations.replies,
chat.postMessage (``thread_ts`` threads), chat.update, chat.postEphemeral; plus the
``response_url`` endpoint of commands, clicks and shortcuts. ``fail_next`` forces errors
(``ratelimited``: HTTP 429 with Retry-After).
"""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

from aiohttp import web

from tests.fakes.slack_blocks import JSON, SlackError, check_message, truthy
from tests.fakes.slack_events import SlackEvents
from tests.fakes.slack_state import Call, Failure


class SlackMethods(SlackEvents):
    def __init__(self) -> None:
        super().__init__()
        self._failures: dict[str, Failure] = {}
        self._tickets: set[str] = set()

    def fail_next(
        self, method: str, n: int = 1, retry_after: int = 1, error: str = "ratelimited"
    ) -> None:
        """Next n calls of method fail: HTTP 429 + Retry-After for "ratelimited", else 200."""
        self._failures[method] = Failure(n, retry_after, error)

    # ---------------- Web API
    async def _api(self, request: web.Request) -> web.Response:
        """One Web API call: token checks, forced failures, then ``_m_<method>``."""
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
        if u is None or not u.visible:
            raise SlackError("user_not_found")
        user: JSON = {
            "id": u.id, "team_id": u.team_id or self.team_id, "name": u.name,
            "real_name": u.name.title(), "deleted": False, "is_bot": u.is_bot,
            "is_app_user": False, "tz": "Europe/Athens",
            "profile": {"display_name": u.name, "real_name": u.name.title()},
        }  # fmt: skip
        if u.team_id:
            user["is_stranger"] = True
        if truthy(args.get("include_locale")):
            user["locale"] = u.locale
        return {"user": user}

    def _m_conversations_open(self, args: JSON) -> JSON:
        if args.get("channel"):
            return {"channel": {"id": self._channel(args["channel"])}, "no_op": True}
        ids = [x.strip() for x in str(args.get("users", "")).split(",") if x.strip()]
        if len(ids) != 1:  # the fake only does 1:1 DMs
            raise SlackError("users_list_not_supplied" if not ids else "not_supported_by_fake")
        u = self.users.get(ids[0])
        if u is None or not u.visible:
            raise SlackError("user_not_found")
        if u.is_bot and u.id != self.bot_user_id:
            raise SlackError("cannot_dm_bot")
        if u.cannot_dm:
            raise SlackError(u.cannot_dm if isinstance(u.cannot_dm, str) else "user_disabled")
        existed = u.id in self._dms
        chan = {"id": self.dm_channel(u.id), "is_im": True, "user": u.id}
        return {"channel": chan, "no_op": existed, "already_open": existed}

    def _m_conversations_replies(self, args: JSON) -> JSON:
        cid = self._channel(args.get("channel"))
        ts = str(args.get("ts", ""))
        root = self._find(cid, ts)
        if root is None:
            raise SlackError("thread_not_found")
        thread = self.thread(cid, root.get("thread_ts") or root["ts"])
        return {"messages": copy.deepcopy(thread), "has_more": False,
                "response_metadata": {"next_cursor": ""}}  # fmt: skip

    def _m_chat_postMessage(self, args: JSON) -> JSON:
        cid = self._channel(args.get("channel"))
        text, blocks = check_message(args)
        msg = self._add_message(cid, text or "", blocks, thread_ts=args.get("thread_ts"))
        self.posts.append({"channel": cid, **copy.deepcopy(msg)})
        return {"channel": cid, "ts": msg["ts"], "message": msg}

    def _m_chat_update(self, args: JSON) -> JSON:
        cid = self._channel(args.get("channel"))
        text, blocks = check_message(args)
        msg = self._replace(cid, str(args.get("ts", "")), text, blocks, "chat.update")
        return {"channel": cid, "ts": msg["ts"], "text": msg["text"], "message": msg}

    def _m_chat_postEphemeral(self, args: JSON) -> JSON:
        cid = self._channel(args.get("channel"))
        uid = str(args.get("user", ""))
        if uid not in self.users:
            raise SlackError("user_not_in_channel")
        text, blocks = check_message(args)
        if args.get("thread_ts"):
            self._thread_root(cid, args["thread_ts"])
        ts = self._ephemeral(cid, uid, text, blocks, "chat.postEphemeral")
        if args.get("thread_ts"):
            self.ephemerals[-1]["thread_ts"] = str(args["thread_ts"])
        return {"message_ts": ts}

    # ---------------- response_url
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
            text, blocks = check_message(body, require=not truthy(body.get("delete_original")))
            if truthy(body.get("delete_original")) and ru.message_ts:
                if self._find(ru.channel, ru.message_ts) is None:
                    raise SlackError("message_not_found")
                msgs = self.messages[ru.channel]
                msgs[:] = [m for m in msgs if m["ts"] != ru.message_ts]
            elif truthy(body.get("replace_original")) and ru.message_ts:
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
