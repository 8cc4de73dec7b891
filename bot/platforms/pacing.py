"""Recently seen delivery ids, for adapters whose platform redelivers (the posting pace is
the sender's: :mod:`bot.conversation.budget`)."""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    """A bounded set of delivery ids seen by this process (duplicates and retries)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """True the first time ``key`` is seen."""
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True
