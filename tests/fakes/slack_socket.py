"""Socket Mode as Slack runs it: single-use connection tickets, ``hello``, envelopes the app
must acknowledge, ``disconnect`` before rotating sockets, and Slack's redelivery.

Redelivery: an ``events_api`` envelope not acknowledged within ``ack_timeout`` (Slack: 3 s) is
sent again under a new envelope id with ``retry_attempt`` + 1 and ``retry_reason`` "timeout",
after ``retry_delays[n]`` (Slack: at once, then after 1 and 5 minutes; 3 retries in all). A
retry waits for a connection, so an app that crashed and reconnects gets it. Slash commands,
clicks and shortcuts are never redelivered: unacknowledged in time, they land in ``expired``
(the person saw Slack's timeout error).
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid

import aiohttp
from aiohttp import WSMsgType, web

from tests.fakes.slack_blocks import JSON
from tests.fakes.slack_methods import SlackMethods

SOCKET_RETRY_REASON = "timeout"


class SlackSocket(SlackMethods):
    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[JSON] = []
        self.acks: dict[str, JSON] = {}
        self.ack_delays: dict[str, float] = {}
        self.expired: list[JSON] = []  # interactive envelopes not acknowledged in time
        self.connect_timeout = 5.0  # how long a push waits for a Socket Mode client
        self.ack_timeout = 3.0  # Slack's 3 seconds
        self.retry_delays: tuple[float, ...] = (0.0, 60.0, 300.0)  # before retry 1, 2, 3
        self._sockets: list[web.WebSocketResponse] = []
        self._pushed_at: dict[str, float] = {}
        self._acked = asyncio.Event()
        self._watchers: set[asyncio.Task[None]] = set()

    # ---------------- the connection
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
            debug = {"host": "applink-fake", "build_number": 1,
                     "approximate_connection_time": 18060}  # fmt: skip
            hello = {"type": "hello", "num_connections": len(self._sockets), "debug_info": debug}
            await ws.send_json({**hello, "connection_info": {"app_id": self.app_id}})
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
            self._acked.set()
            self._acked = asyncio.Event()
            env = next(e for e in self.envelopes if e["envelope_id"] == eid)
            p = self.acks[eid]
            if env["type"] == "slash_commands" and (p.get("text") or p.get("blocks")):
                cid, uid = env["payload"]["channel_id"], env["payload"]["user_id"]
                self._ephemeral(cid, uid, p.get("text"), p.get("blocks"), "ack")

    @property
    def connected(self) -> bool:
        return any(not ws.closed for ws in self._sockets)

    async def _send(self, envelope: JSON, connect_timeout: float | None = None) -> JSON:
        wait = self.connect_timeout if connect_timeout is None else connect_timeout
        await self.wait_for(lambda: self.connected, wait, "a Socket Mode connection")
        ws = [w for w in self._sockets if not w.closed][-1]
        self.envelopes.append(envelope)
        self._pushed_at[envelope["envelope_id"]] = time.monotonic()
        await ws.send_json(envelope)
        task = asyncio.ensure_future(self._watch(envelope))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return envelope

    async def _watch(self, envelope: JSON) -> None:
        """Slack's side of the 3 s rule for one envelope."""
        eid = envelope["envelope_id"]
        deadline = time.monotonic() + self.ack_timeout
        while eid not in self.acks and (left := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(self._acked.wait(), left)
            except TimeoutError:
                pass
        if eid in self.acks:
            return
        if envelope["type"] != "events_api":
            self.expired.append(envelope)
            return
        attempt = int(envelope.get("retry_attempt") or 0)
        if attempt >= len(self.retry_delays):
            return  # Slack gives up on this event
        await asyncio.sleep(self.retry_delays[attempt])
        if not self._event_acked(envelope):  # a late ack meanwhile: handled after all
            await self.redeliver(envelope, SOCKET_RETRY_REASON, connect_timeout=24 * 3600)

    def _event_acked(self, envelope: JSON) -> bool:
        event_id = (envelope.get("payload") or {}).get("event_id")
        if event_id is None:
            return False  # nothing names it: only its own ack (checked already) would count
        same = [e for e in self.envelopes if (e.get("payload") or {}).get("event_id") == event_id]
        return any(e["envelope_id"] in self.acks for e in same)

    @property
    def retrying(self) -> int:
        """Deliveries Slack is still watching or going to retry (0: all settled)."""
        return sum(1 for task in self._watchers if not task.done())

    async def stop_watching(self) -> None:
        for task in list(self._watchers):
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)

    async def _push(self, kind: str, payload: JSON, accepts_response: bool) -> JSON:
        env: JSON = {"envelope_id": str(uuid.uuid4()), "payload": payload, "type": kind,
                     "accepts_response_payload": accepts_response}  # fmt: skip
        if kind == "events_api":
            env.update(retry_attempt=0, retry_reason="")
        return await self._send(env)

    async def push_event(self, payload: JSON) -> JSON:
        """Send an Events API payload (from a ``build_*`` method) in a new envelope."""
        return await self._push("events_api", payload, False)

    async def push_malformed(self, kind: str) -> JSON | str:
        """Send what a Socket Mode client must survive: ``not_json`` (a text frame that is
        not JSON), ``no_payload`` (an events_api envelope without its payload) or
        ``event_without_type`` (an event_callback whose event has no type). Returns what was
        sent; envelopes are watched and retried like any other."""
        if kind == "not_json":
            raw = '{"envelope_id": "broken", "payload": '
            await self.wait_for(lambda: self.connected, self.connect_timeout, "a connection")
            await [w for w in self._sockets if not w.closed][-1].send_str(raw)
            return raw
        env: JSON = {"envelope_id": str(uuid.uuid4()), "type": "events_api", "retry_attempt": 0,
                     "accepts_response_payload": False, "retry_reason": ""}  # fmt: skip
        if kind == "event_without_type":
            env["payload"] = self.event_callback({"user": self.bot_user_id, "ts": self._ts()})
        elif kind != "no_payload":
            raise ValueError(f"unknown kind {kind!r}: not_json, no_payload, event_without_type")
        return await self._send(env)

    # ---------------- what people do, over Socket Mode
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

    async def shortcut(self, user_id: str, channel_id: str, ts: str, callback_id: str) -> JSON:
        """The user runs the message shortcut ``callback_id`` on message ``ts``."""
        payload = self.build_shortcut(user_id, channel_id, ts, callback_id)
        return await self._push("interactive", payload, False)

    async def dm_message(self, user_id: str, text: str, channel_id: str | None = None) -> JSON:
        return await self._push(
            "events_api", self.build_dm_message(user_id, text, channel_id), False
        )

    async def channel_message(self, user_id: str, channel_id: str, text: str) -> JSON:
        """The user posts ``text`` in a channel (a new thread root)."""
        payload = self.build_channel_message(user_id, channel_id, text)
        return await self._push("events_api", payload, False)

    async def thread_reply(self, user_id: str, channel_id: str, thread_ts: str, text: str) -> JSON:
        """The user replies ``text`` in the thread of ``thread_ts``."""
        payload = self.build_channel_message(user_id, channel_id, text, thread_ts)
        return await self._push("events_api", payload, False)

    async def react(self, user_id: str, channel_id: str, ts: str, name: str) -> JSON:
        """The user adds the reaction ``name`` (e.g. "white_check_mark") to message ``ts``."""
        payload = self.build_reaction(user_id, channel_id, ts, name)
        return await self._push("events_api", payload, False)

    async def unreact(self, user_id: str, channel_id: str, ts: str, name: str) -> JSON:
        payload = self.build_reaction(user_id, channel_id, ts, name, removed=True)
        return await self._push("events_api", payload, False)

    async def redeliver(
        self,
        envelope: JSON,
        reason: str = SOCKET_RETRY_REASON,
        connect_timeout: float | None = None,
    ) -> JSON:
        """Send the same payload again under a new envelope_id (events_api: retry_attempt + 1)."""
        env = copy.deepcopy(envelope)
        env["envelope_id"] = str(uuid.uuid4())
        if env["type"] == "events_api":
            env.update(retry_attempt=int(env.get("retry_attempt") or 0) + 1, retry_reason=reason)
        return await self._send(env, connect_timeout)

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask connected clients to reconnect, like Slack does before rotating sockets."""
        for ws in [w for w in self._sockets if not w.closed]:
            await ws.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
            )

    async def close_sockets(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)

    async def wait_ack(self, envelope_id: str | JSON, timeout: float = 5) -> JSON:  # noqa: ASYNC109
        eid = envelope_id if isinstance(envelope_id, str) else envelope_id["envelope_id"]
        await self.wait_for(lambda: eid in self.acks, timeout, f"ack of envelope {eid}")
        return self.acks[eid]

    def _state(self) -> JSON:
        unacked = [e["envelope_id"] for e in self.envelopes if e["envelope_id"] not in self.acks]
        return super()._state() | {"acks": self.acks, "unacked": unacked,
                                   "connected": self.connected}  # fmt: skip
