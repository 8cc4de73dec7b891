"""Whether storage writes work, as the edges last found them.

An edge that cannot store an event does not acknowledge it (the platform redelivers) and
reports the failure here; ``GET /healthz`` answers 503 with the reason while it lasts. The
real error is logged once per failure streak, not once per retry, and its end is logged too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from storage.base import utcnow

log = logging.getLogger(__name__)


@dataclass
class WriteHealth:
    error: str | None = None  # "<error class>: <message>" of the failure under way
    since: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def failed(self, exc: BaseException, doing: str) -> None:
        """A write failed; the first failure of a streak is logged (one line)."""
        reason = f"{type(exc).__name__}: {exc}"
        if self.error is None:
            self.since = utcnow()
            log.error("storage write failed while %s: %s (retrying)", doing, reason)
        self.error = reason

    def worked(self) -> None:
        if self.error is not None:
            log.warning("storage writes work again (failing since %s)", self.since)
        self.error = None
        self.since = None
