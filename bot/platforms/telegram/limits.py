"""Flood control for outgoing Telegram requests: about 30 requests/s overall and 20/min per
group (PTB's AIORateLimiter), and messages to one private chat in bursts of 5, then about one a
second. A 429 pauses every request for its retry_after and is retried up to 3 times, then
surfaces as ``DeliveryError(retry_after=...)`` for the dispatcher to reschedule.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import AIORateLimiter

from bot.conversation.ratelimit import ChatPacer


class ChatRateLimiter(AIORateLimiter):
    """PTB's limiter (overall and per group) plus a limit on messages sent to one private
    chat: a burst of 5, then about one a second (edits and callback answers are not limited:
    they answer the customer's own pace)."""

    def __init__(self, per_chat_burst: int = 5) -> None:
        super().__init__(max_retries=3)
        self._chats = ChatPacer(per_second=1.0, burst=per_chat_burst)

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        if endpoint == "sendMessage" and _private(data.get("chat_id")):
            await self._chats.wait(str(data.get("chat_id")))
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )


def _private(chat_id: object) -> bool:
    """Private chats have positive ids; groups (negative) get PTB's group limiter."""
    try:
        return int(str(chat_id)) > 0
    except ValueError:
        return False
