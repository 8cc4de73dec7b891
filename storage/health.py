"""Whether storage writes work, for ``/healthz`` (:meth:`storage.base.Storage.health`).

Each backend reports the outcome of its writes here. The first failure is logged once, with the
database's own error ("database or disk is full", "attempt to write a readonly database"), and
so is the recovery; repeated failures in between log nothing more, so a full disk does not fill
the log too. Refusals that are part of the contract (a unique key already taken) are not
failures: the backend passes only errors about the database itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from storage.base import StorageHealth, utcnow

log = logging.getLogger("storage")


class HealthTracker:
    def __init__(self, name: str, clock: Callable[[], datetime] = utcnow) -> None:
        self.name = name  # what the log says: "sqlite", "postgres"
        self.clock = clock
        self._state = StorageHealth()

    def ok(self) -> None:
        if not self._state.ok:
            log.warning("%s storage writes work again (failing since %s)", self.name,
                        self._state.failing_since)  # fmt: skip
            self._state = StorageHealth()

    def failed(self, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if self._state.ok:
            log.error("%s storage write failed: %s", self.name, error)
            self._state = StorageHealth(ok=False, error=error, failing_since=self.clock())
        elif error != self._state.error:
            log.error("%s storage write still failing, now: %s", self.name, error)
            self._state = self._state.model_copy(update={"error": error})

    def snapshot(self) -> StorageHealth:
        return self._state
