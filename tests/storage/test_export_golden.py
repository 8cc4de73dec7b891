"""`surveybot export` writes exactly the bytes it always wrote.

A fixed set of answers (three languages, a Slack thread and a Telegram group, a skipped
question, a choice, free text with commas, quotes and a line break, times in other zones, two
answers in the same microsecond) is stored through the Storage protocol on each backend, then
exported by the real console script as jsonl and as csv. The golden files under
``tests/storage/golden/`` were written by the code as it was before the storage layer was
reorganised (one schema definition, shared row mappers); any change in what an analyst's
spreadsheet receives makes this fail (the ``thread_id`` column, after ``chat_id``, was added on
purpose with the Slack thread surveys). Regenerate them only for an intended format change:
``SURVEYBOT_WRITE_GOLDEN=1 pytest tests/storage/test_export_golden.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.survey.engine import Answer, SessionState
from storage import open_storage
from storage.base import SessionRecord, Storage
from tests.support.storage_backends import BACKENDS

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
SURVEYBOT = shutil.which("surveybot", path=str(Path(sys.executable).parent)) or "surveybot"
T0 = datetime(2024, 5, 6, 9, 30, 0, 250000, tzinfo=UTC)
ATHENS = timezone(timedelta(hours=3))
VILNIUS = timezone(timedelta(hours=2))


def _session(
    sid: str, flow: str, platform: str, user: str, locale: str, **extra: object
) -> SessionRecord:
    context = extra.pop("context", {"ticket_id": "T-1", "agent": "ann"})
    assert isinstance(context, dict)
    values: dict[str, object] = {
        "id": sid, "flow_id": flow, "flow_version": f"{flow}-v1", "platform": platform,
        "user_id": user, "locale": locale, "context": context, "triggered_by": "golden",
        "status": "active", "state": SessionState(locale=locale, context=context, current=0),
        "created_at": T0, "updated_at": T0,
    }  # fmt: skip
    return SessionRecord.model_validate(values | extra)


SESSIONS = [
    _session(
        "nps-telegram-el",
        "nps",
        "telegram",
        "1001",
        "el",
        user_name="Μαρία",
        context={"ticket_id": "4711", "agent": "maria", "customer_name": "Μαρία Π."},
    ),
    _session(
        "nps-slack-thread",
        "nps",
        "slack",
        "U0CUST01",
        "en",
        chat_id="C0SUPPORT",
        thread_id="1714000000.000500",
        context={"agent": "bob", "note": 'said "thanks, bye"\nthen left'},
    ),
    _session(
        "csat-group-lt",
        "csat",
        "telegram",
        "2002",
        "lt",
        chat_id="-100123",
        user_name="Jonas",
        context={},
    ),
    _session(
        "ces-console", "ces", "console", "console-1", "en", context={"z_last": "1", "a_first": "2"}
    ),
    _session("Tie-Upper", "csat", "slack", "U0TIE", "en"),
    _session("tie-lower", "csat", "slack", "U0TIE2", "en"),
    _session("never-answered", "nps", "telegram", "3003", "en"),
]
# (session id, answer, when): committed in this order, each on the session's next version
ANSWERS: list[tuple[str, Answer, datetime]] = [
    ("nps-telegram-el", Answer(question_id="score", question_index=0, metric="nps", value=10,
                               scale_min=0, scale_max=10), T0.astimezone(ATHENS)),
    ("nps-telegram-el", Answer(question_id="promoter_reason", question_index=1, metric="text",
                               text="Πολύ γρήγορη εξυπηρέτηση, ευχαριστώ!"),
     T0 + timedelta(minutes=1)),
    ("nps-slack-thread", Answer(question_id="score", question_index=0, metric="nps", value=3,
                                scale_min=0, scale_max=10), T0 + timedelta(minutes=2)),
    ("nps-slack-thread", Answer(question_id="detractor_reason", question_index=1,
                                metric="text", text='Slow, "polite" but\nslow; 3/10 ✗'),
     T0 + timedelta(minutes=3)),
    ("csat-group-lt", Answer(question_id="satisfied", question_index=0, metric="csat", value=1),
     (T0 + timedelta(hours=1)).astimezone(VILNIUS)),
    ("csat-group-lt", Answer(question_id="why", question_index=1, metric="text", skipped=True),
     T0 + timedelta(hours=1, minutes=1)),
    ("ces-console", Answer(question_id="effort", question_index=0, metric="ces", value=6,
                           scale_min=1, scale_max=7), T0 + timedelta(days=1)),
    ("ces-console", Answer(question_id="topic", question_index=1, metric="choice",
                           option="billing"), T0 + timedelta(days=1, seconds=30)),
    ("tie-lower", Answer(question_id="rating", question_index=0, metric="csat", value=4,
                         scale_min=1, scale_max=5), T0 + timedelta(days=2)),
    ("Tie-Upper", Answer(question_id="rating", question_index=0, metric="csat", value=2,
                         scale_min=1, scale_max=5), T0 + timedelta(days=2)),
]  # fmt: skip


async def seed(storage: Storage) -> None:
    for record in SESSIONS:
        await storage.create_session(record)
    versions = {record.id: 0 for record in SESSIONS}
    for sid, answer, when in ANSWERS:
        state = SessionState(locale="en", current=answer.question_index + 1)
        result = await storage.commit(
            sid, versions[sid], state=state, status="active", now=when, answer=answer
        )
        assert result.ok
        versions[sid] += 1


@pytest.fixture(params=list(BACKENDS))
async def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with BACKENDS[request.param](tmp_path) as url:
        storage = open_storage(url)
        await storage.open()
        try:
            await seed(storage)
        finally:
            await storage.close()
        yield url


def export(url: str, fmt: str, directory: Path, *options: str) -> bytes:
    config = directory / "config.yaml"
    config.write_text(f"flows_dir: {ROOT / 'flows'}\nstorage: {{url: '{url}'}}\n")
    target = directory / f"export.{fmt}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYBOT_")}
    result = subprocess.run(
        [SURVEYBOT, "export", "--format", fmt, "--output", str(target), "--config", str(config),
         *options],
        cwd=directory, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return target.read_bytes()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_an_analysts_export_is_byte_identical_to_the_golden_file(
    seeded: str, fmt: str, tmp_path: Path
) -> None:
    written = export(seeded, fmt, tmp_path)
    golden = GOLDEN / f"export.{fmt}"
    if os.environ.get("SURVEYBOT_WRITE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(written)
    assert written == golden.read_bytes()
