"""The Storage contract every backend implements, and the records that cross it.

Everything a restart must not lose lives behind this protocol: flow versions, sessions (with the
engine state), answers (one per session and question), processed platform event ids, invite
tokens, scheduled jobs, the inbox (raw platform events, stored before the platform is
acknowledged) and the outbox (messages owed to customers). Recording an answer is one
transaction (:meth:`Storage.commit`), which can also mark the inbox event that carried it done
and insert the messages it makes owed. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from bot.chat import Address
from bot.survey.engine import Answer, SessionState
from storage.followup_records import Followup as Followup
from storage.followup_records import FollowupStore
from storage.records import InboxEvent as InboxEvent  # re-exported: records of the protocol
from storage.records import InboxRef as InboxRef
from storage.records import InboxStatus as InboxStatus
from storage.records import Lane as Lane
from storage.records import OutboxMessage as OutboxMessage
from storage.records import OutboxStatus as OutboxStatus
from storage.records import StorageHealth as StorageHealth

if TYPE_CHECKING:
    from storage.reporting import ReportQuery, ReportRows

SessionStatus = Literal["scheduled", "active", "completed", "expired", "failed"]
CommitResult = Literal["ok", "duplicate", "conflict"]
JobKind = Literal["send", "remind", "expire"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SessionRecord(_Frozen):
    id: str
    flow_id: str
    flow_version: str
    platform: str
    user_id: str
    chat_id: str | None = None
    user_name: str | None = None
    thread_id: str | None = None  # Slack thread (root ts) / Telegram forum topic; None: none
    locale: str
    context: dict[str, str] = Field(default_factory=dict)
    triggered_by: str = "unknown"
    status: SessionStatus = "active"
    state: SessionState
    version: int = 0  # bumped by every commit: optimistic concurrency between workers
    idempotency_key: str | None = None
    created_at: datetime
    updated_at: datetime
    send_at: datetime | None = None
    sent_at: datetime | None = None
    expires_at: datetime | None = None
    completed_at: datetime | None = None
    reminded: bool = False
    error: str | None = None
    prompted: int | None = None  # index of the question whose prompt was last delivered
    prompt_message_id: str | None = None  # platform id of that message

    @property
    def address(self) -> Address:
        return Address(
            platform=self.platform,
            user_id=self.user_id,
            chat_id=self.chat_id,
            user_name=self.user_name,
            thread_id=self.thread_id,
        )


class CommitOutcome(_Frozen):
    """What :meth:`Storage.commit` or :meth:`Storage.update_session` did. On ``ok``,
    ``version`` is the session's new version: storage alone decides it, and callers use this
    value rather than working it out themselves."""

    result: CommitResult
    version: int | None = None

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    @classmethod
    def of(cls, applied: bool, version: int) -> CommitOutcome:
        """``ok`` at ``version`` when the guarded write applied, else ``conflict``."""
        return cls(result="ok", version=version) if applied else cls(result="conflict")


class Job(_Frozen):
    id: int | None = None
    kind: JobKind
    session_id: str
    run_at: datetime
    attempts: int = 0
    last_error: str | None = None


class ExportRow(_Frozen):
    """One answer, with the columns `surveybot export` writes."""

    session_id: str
    flow_id: str
    flow_version: str
    question_id: str
    metric: str
    value: int | str | None
    text: str | None
    platform: str
    user_id: str
    chat_id: str | None
    thread_id: str | None  # where in the chat it was asked: a Slack thread, a Telegram topic
    locale: str
    context: dict[str, str]
    triggered_by: str
    answered_at: datetime

    def as_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["answered_at"] = iso(self.answered_at)
        return data


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a Z, microseconds kept: sorts lexicographically in SQL."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@runtime_checkable
class Storage(FollowupStore, Protocol):
    """Backends: storage.sqlite (default) and storage.postgres. The follow-ups of alerted
    answers: :class:`~storage.followup_records.FollowupStore`."""

    url: str
    # Writes submitted in one event-loop turn commit together, row writes (inbox events stored,
    # outbox rows marked sent) before claims, so a claim submitted beside a write sees it
    # (SQLite's group commit). False: each write is its own transaction (PostgreSQL's pool).
    groups_writes: bool
    # One process owns the inbox (SQLite: `surveybot run` is its only worker), so the events
    # pending in it are known to that process; False: several workers may share it
    # (PostgreSQL). The inbox handles an event before storing it only where this is True.
    one_process: bool

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None: ...

    # flows ---------------------------------------------------------------------------------
    async def save_flow_version(self, flow_id: str, version: str, definition: str) -> None:
        """Remember a flow definition (JSON) by its content version; idempotent."""

    async def load_flow_version(self, flow_id: str, version: str) -> str | None: ...

    # sessions ------------------------------------------------------------------------------
    async def create_session(
        self,
        record: SessionRecord,
        *,
        inbox_id: InboxRef | None = None,
        outbox: Sequence[OutboxMessage] = (),
        jobs: Sequence[Job] = (),
    ) -> SessionRecord:
        """Insert; with an idempotency key already used, return the existing session instead.
        In the same transaction: the inbox row ``inbox_id`` is marked done, or the event
        ``inbox_id`` (not stored yet) is stored done (either way: its session exists); the
        ``outbox`` messages and the ``jobs`` (its send, reminder and expiry) are inserted
        (only if the session is new: the first creation already owed them)."""

    async def get_session(self, session_id: str) -> SessionRecord | None: ...

    async def session_by_key(self, idempotency_key: str) -> SessionRecord | None: ...

    async def active_session(
        self, platform: str, user_id: str, chat_id: str | None, thread_id: str | None = None
    ) -> SessionRecord | None:
        """The newest active session for this user in this chat (None = DM) and thread."""

    async def last_asked(self, platform: str, user_id: str, flow_id: str) -> datetime | None:
        """When this customer was last sent (or scheduled) this flow: for throttling."""

    async def commit(
        self,
        session_id: str,
        expected_version: int,
        *,
        state: SessionState,
        status: SessionStatus,
        now: datetime,
        answer: Answer | None = None,
        event_id: str | None = None,
        inbox_id: InboxRef | None = None,
        outbox: Sequence[OutboxMessage] = (),
    ) -> CommitOutcome:
        """One transaction: the answer, the new state, the event id, the inbox row
        ``inbox_id`` marked done (or the event ``inbox_id``, not stored yet, stored done) and
        the ``outbox`` messages inserted, if the session is still at ``expected_version``; the
        outcome carries the session's new version.

        ``duplicate``: the event id was processed before, or the question already has an
        answer; ``conflict``: someone else moved the session first. Either way nothing changed
        (the inbox row stays as it was: the caller decides, e.g. :meth:`inbox_done`).
        """

    async def update_session(
        self,
        session_id: str,
        expected_version: int,
        *,
        outbox: Sequence[OutboxMessage] = (),
        **changes: Any,
    ) -> CommitOutcome:
        """Change bookkeeping fields (status, sent_at, expires_at, reminded, error, chat_id,
        prompted, prompt_message_id) if the session is still at ``expected_version``; the
        outcome carries the new version (``conflict`` if it moved). The ``outbox`` messages
        (a first question, a reminder, webhook events) are inserted in the same transaction,
        only if the change applied."""

    async def claim_event(
        self,
        event_id: str,
        now: datetime,
        *,
        inbox_id: InboxRef | None = None,
        outbox: Sequence[OutboxMessage] = (),
    ) -> bool:
        """Mark a platform event processed; False if it already was. Only when this claim is
        the first, in the same transaction: the inbox row ``inbox_id`` marked done (or the
        event stored done) and the
        ``outbox`` messages inserted (a notice the event owes, sent once)."""

    # invites -------------------------------------------------------------------------------
    async def create_invite(
        self, token: str, flow_id: str, context: dict[str, str], now: datetime
    ) -> None: ...

    async def consume_invite(self, token: str, now: datetime) -> tuple[str, dict[str, str]] | None:
        """Use an invite token once: ``(flow_id, context)``, or None if unknown or used."""

    # jobs ----------------------------------------------------------------------------------
    async def add_job(self, job: Job) -> int: ...

    async def claim_jobs(self, now: datetime, limit: int, lease: timedelta) -> list[Job]:
        """Due jobs, each leased to the caller so no other worker runs it meanwhile."""

    async def finish_job(self, job_id: int) -> None: ...

    async def retry_job(self, job_id: int, run_at: datetime, error: str) -> None: ...

    async def pending_jobs(self, session_id: str) -> list[Job]: ...

    # data ----------------------------------------------------------------------------------
    def export_rows(
        self, flow_id: str | None = None, since: datetime | None = None
    ) -> AsyncIterator[ExportRow]: ...

    async def erase_user(self, platform: str, user_id: str) -> tuple[int, int]:
        """Delete a customer's answers and sessions, with their jobs, inbox events (raw
        payloads with a ``user_id``) and outbox messages: ``(answers, sessions)`` removed."""

    # --- inbox (issue 11): raw events, stored before the platform is acknowledged ----------
    async def inbox_put(self, events: Sequence[InboxEvent]) -> int:
        """Store events in one transaction; how many were new (an event already there, by
        platform and event id, is ignored). Raises if they could not be stored: then do not
        acknowledge the platform, so it delivers again."""

    async def inbox_claim(self, limit: int, lease: timedelta, now: datetime) -> list[InboxEvent]:
        """Lease up to ``limit`` due pending events, oldest first, counting an attempt each.
        Only the oldest unfinished event of a key is handed out, and none while another of
        that key is leased: one customer's events are handled one at a time, in order. A
        lease that runs out (a crashed worker) makes the event claimable again; several
        workers may claim at once (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)."""

    async def inbox_done(self, inbox_id: int, now: datetime) -> None:
        """Handled (also possible inside :meth:`commit` / :meth:`create_session`)."""

    async def inbox_keep(self, event: InboxEvent) -> int | None:
        """Store an event its handler holds (the inbox's fast path) in the state ``event``
        gives (done; pending and leased; pending with a retry time), also if it is stored and
        pending already. Its row id; None if it was done already. Raises if not stored."""

    async def inbox_pending_keys(
        self, keys: Collection[tuple[str, str]] | None = None
    ) -> set[tuple[str, str]]:
        """The ``(platform, key)`` pairs — of ``keys``, or all — with a pending event (waiting,
        leased or waiting for a retry)."""

    async def inbox_failed(self, inbox_id: int, error: str, retry_at: datetime | None) -> None:
        """Handling failed: try again at ``retry_at``, or quarantine it (None): a quarantined
        event no longer holds up its key."""

    async def inbox_quarantined(self, limit: int = 100) -> list[InboxEvent]:
        """Quarantined events, oldest first (`surveybot inbox`)."""

    async def inbox_retry(self, inbox_id: int, now: datetime) -> bool:
        """Put a quarantined event back in line with fresh attempts; False if not quarantined."""

    async def inbox_drop(self, inbox_id: int) -> bool:
        """Delete a quarantined event; False if there is no such quarantined event."""

    async def inbox_prune(self, before: datetime) -> int:
        """Delete events handled before ``before`` (retention); how many."""

    # --- outbox (issue 11): messages owed to customers -------------------------------------
    async def outbox_put(self, messages: Sequence[OutboxMessage]) -> int:
        """Queue messages (one transaction); how many. Usually they come with :meth:`commit`."""

    async def outbox_claim(
        self, limit: int, lease: timedelta, now: datetime, lanes: Sequence[Lane] | None = None
    ) -> list[OutboxMessage]:
        """Lease up to ``limit`` due messages of ``lanes`` (None: the chat lanes), interactive
        before bulk, counting an attempt each. Per stream (``OutboxMessage.stream``: a chat's
        new messages, or its edits) only the oldest pending one, none while another of that
        stream is leased: one at a time, in order. SKIP LOCKED on PG."""

    async def outbox_sent(
        self,
        outbox_id: int,
        platform_message_id: str | None,
        at: datetime,
        *,
        linger: bool = False,
    ) -> None:
        """Delivered. ``linger``: nothing waits for this mark, so where storage groups writes
        it may wait a moment for the next write to go with (``groups_writes``)."""

    def flush(self) -> None:
        """Write what lingers (``outbox_sent(linger=True)``) now, not with the next write."""

    async def outbox_retry(self, outbox_id: int, at: datetime, error: str) -> None:
        """Sending failed for now: due again at ``at`` (the chat's later messages wait)."""

    async def outbox_dead(self, outbox_id: int, error: str) -> None:
        """Sending failed for good: no more attempts (the chat's later messages go on)."""

    async def outbox_recent(
        self, limit: int = 50, status: OutboxStatus | None = None, lane: Lane | None = None
    ) -> list[OutboxMessage]:
        """The newest messages (with this status, in this lane), newest first."""

    async def outbox_redeliver(
        self, outbox_id: int, now: datetime, lane: Lane | None = None
    ) -> bool:
        """A dead or sent message (of ``lane``) back in line, due ``now``, fresh attempts."""

    async def outbox_prune(self, before: datetime) -> int:
        """Delete messages sent before ``before``; how many."""

    async def queue_counts(self) -> dict[str, int]:
        """Rows per queue and status: ``inbox.pending``, ``inbox.done``,
        ``inbox.quarantined``, ``outbox.pending``, ``outbox.sent``, ``outbox.dead``."""

    def health(self) -> StorageHealth:
        """Whether the last write worked (no I/O: for ``/healthz``). A failing write is
        logged once with the database's own error; a later success clears it."""

    # --- reporting (issue 6) ---------------------------------------------------------------
    async def report_rows(self, query: ReportQuery) -> ReportRows:
        """Run every statement of ``storage.followup_report.report_statements(query,
        <dialect>)`` (in any order, or concurrently) and file each row, as a dict of column
        name to value, under its ``section`` column."""

    # --- copy (issue 7) --------------------------------------------------------------------
    # `surveybot db copy` (storage.copy.copy_storage) moves an installation between backends
    # through these. Rows are ``column -> value`` dicts of plain values and datetimes; times
    # may come as ISO text and JSON as text: each loader converts to its own column types.
    async def schema_version(self) -> int:
        """The number of the last migration applied."""

    async def copy_tables(self) -> list[str]:
        """Every data table, each after the tables it references (bookkeeping excluded)."""

    def dump_rows(self, table: str) -> AsyncIterator[dict[str, Any]]:
        """Every row of ``table``."""

    async def load_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> int:
        """Insert rows dumped by any backend (same columns in each) in one transaction;
        counters (job ids) continue after the highest id loaded. Returns how many."""

    async def count_rows(self, table: str) -> int: ...

    async def clear_tables(self) -> None:
        """Delete every row of every data table (``db copy --force``); the schema stays."""
