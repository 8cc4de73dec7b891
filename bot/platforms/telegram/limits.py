"""Flood control for outgoing Telegram requests: about 30 requests/s overall and 20/min per
group (PTB's AIORateLimiter), and messages to one private chat in bursts of 5, then about one a
second. A 429 pauses every request for its retry_after and is retried up to 3 times, then
surfaces as ``DeliveryError(retry_after=...)`` for the dispatcher to reschedule.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.ext import AIORateLimiter


class ChatRateLimiter(AIORateLimiter):
    """PTB's limiter (overall and per group) plus a limit on messages sent to one private
    chat: a burst of 5, then about one a second (edits and callback answers are not limited:
    they answer the customer's own pace)."""

    def __init__(self, per_chat_burst: int = 5) -> None:
        super().__init__(max_retries=3)
        self._burst = per_chat_burst
        self._chats: OrderedDict[int, AsyncLimiter] = OrderedDict()

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        call = super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        limiter = self._chat_limiter(data.get("chat_id")) if endpoint == "sendMessage" else None
        if limiter is None:
            return await call
        async with limiter:
            return await call

    def _chat_limiter(self, chat_id: object) -> AsyncLimiter | None:
        try:
            chat = int(str(chat_id))
        except ValueError:
            return None
        if chat <= 0:  # groups: PTB's group limiter
            return None
        if chat not in self._chats:
            if len(self._chats) >= 4096:
                self._chats.popitem(last=False)
            self._chats[chat] = AsyncLimiter(self._burst, self._burst)
        self._chats.move_to_end(chat)
        return self._chats[chat]
