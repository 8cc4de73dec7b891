"""Slack's HTTP side of a Bolt app: requests signed like Slack signs them (v0 HMAC-SHA256),
built from the fake's payloads, for tests that post to ``/slack/events`` themselves."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, NamedTuple
from urllib.parse import urlencode

import aiohttp

JSON = dict[str, Any]


class SlackHTTP(NamedTuple):
    """An HTTP request Slack would send to a Bolt app at /slack/events."""

    body: bytes
    headers: dict[str, str]


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
