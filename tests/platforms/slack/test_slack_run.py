"""Acceptance (issue 4, "Done when"): `surveybot run` as a new admin runs it — Slack tokens in
the environment, SURVEYBOT_SLACK__API_BASE_URL pointing at a Slack-compatible API (the fake),
Socket Mode and HTTP mode. Staff start CSAT, NPS and CES with /survey; customers finish them in
their DMs in English, Greek and Lithuanian; `surveybot export` shows exactly the answers given.

The process is a real subprocess; every wait is on something the fake can observe, bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHIPPED_FLOWS
from tests.fakes.slack_api import FakeSlack
from tests.support.console_script import stop
from tests.support.slack_support import AMY, NIKOS, RUTA, STAFF, Mode, People, labels, populate

SURVEYBOT = Path(sys.executable).with_name("surveybot")
STARTUP = 60.0  # seconds a cold start (imports, migrations, connect) may take
STEP = 15.0  # seconds one reaction may take


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepting(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    return check


def write_config(directory: Path, mode: Mode, port: int) -> Path:
    shutil.copytree(SHIPPED_FLOWS, directory / "flows", ignore=shutil.ignore_patterns("*.py"))
    config = directory / "config.yaml"
    config.write_text(
        "flows_dir: flows\n"
        'storage: {url: "sqlite:///data/surveys.db"}\n'
        f"staff: {{slack: [{STAFF}]}}\n"
        f"slack: {{mode: {mode}}}\n"
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        "surveys: {remind_after: null}\n",
        encoding="utf-8",
    )
    (directory / "data").mkdir()
    return config


def environment(fake: FakeSlack, mode: Mode) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYBOT_")}
    env |= {
        "SURVEYBOT_SLACK_BOT_TOKEN": fake.bot_token,
        "SURVEYBOT_SLACK__API_BASE_URL": fake.base_url,
        "PYTHONUNBUFFERED": "1",
    }
    if mode == "socket":
        env["SURVEYBOT_SLACK_APP_TOKEN"] = fake.app_token
    else:
        env["SURVEYBOT_SLACK_SIGNING_SECRET"] = fake.signing_secret
    return env


@asynccontextmanager
async def surveybot_run(
    fake: FakeSlack, directory: Path, config: Path, mode: Mode, port: int
) -> AsyncIterator[Path]:
    """`surveybot run` until the block ends, then SIGTERM (killed if it does not stop)."""
    log = directory / "surveybot.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            str(SURVEYBOT), "run", "--config", str(config), "--log-level", "INFO",
            cwd=directory, env=environment(fake, mode), stdout=out, stderr=out,
        )  # fmt: skip
        try:
            ready: Callable[[], bool] = (
                (lambda: fake.connected) if mode == "socket" else accepting(port)
            )
            await fake.wait_for(
                lambda: ready() or process.returncode is not None, STARTUP, "surveybot run"
            )
            assert process.returncode is None, log.read_text()
            yield log
        finally:
            await stop(process, STEP)
    assert process.returncode == 0, log.read_text()


async def export(config: Path) -> list[dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        str(SURVEYBOT), "export", "--format", "jsonl", "--config", str(config),
        cwd=config.parent, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("SURVEYBOT_")},
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), STEP)
    assert process.returncode == 0, stderr.decode()
    return [json.loads(line) for line in stdout.decode().splitlines()]


class Customer:
    """One person in their DM with the bot, waiting for each reaction they expect to see."""

    def __init__(self, people: People, user: str) -> None:
        self.people, self.user, self.fake = people, user, people.fake

    def seen(self) -> int:
        return len(self.people.messages(self.user))

    async def sees(self, count: int) -> list[str]:
        await self.fake.wait_for(lambda: self.seen() >= count, STEP, f"{count} messages")
        return self.people.texts(self.user)

    async def tap(self, label: str) -> None:
        await self.people.tap(self.user, label)

    async def type(self, text: str) -> None:
        await self.people.type(self.user, text)


async def staff_sends(people: People, fake: FakeSlack, text: str) -> str:
    before = len(people.notices(STAFF))
    direct = await people.command(STAFF, text)
    await fake.wait_for(lambda: direct or len(people.notices(STAFF)) > before, STEP, "reply")
    return (direct or people.notices(STAFF)[before:])[0]


@pytest.mark.parametrize("mode", ["socket", "http"])
async def test_surveybot_run_with_slack(tmp_path: Path, mode: Mode) -> None:
    port = free_port()
    config = write_config(tmp_path, mode, port)
    async with FakeSlack() as fake:
        populate(fake)
        people = People(fake, mode, url=f"http://127.0.0.1:{port}/slack/events")
        amy, nikos, ruta = (Customer(people, u) for u in (AMY, NIKOS, RUTA))
        async with surveybot_run(fake, tmp_path, config, mode, port):
            # Amy (English), CSAT: "No", then what went wrong
            reply = await staff_sends(people, fake, f"csat <@{AMY}|amy> ticket_id=101")
            assert reply == f"Survey “csat” sent to <@{AMY}>.", reply
            assert await amy.sees(1) == ["Were you satisfied with the help you received?"]
            await amy.tap("No")
            assert (await amy.sees(2))[-1].startswith("We're sorry to hear that.")
            await amy.type("Nobody called back")
            assert (await amy.sees(3))[-1].startswith("Thank you for your feedback!")

            # Nikos (Greek), NPS: taps 10, then says why
            reply = await staff_sends(people, fake, f"nps <@{NIKOS}> ticket_id=102")
            assert reply == f"Survey “nps” sent to <@{NIKOS}>.", reply
            await nikos.sees(1)
            assert labels(people.question(NIKOS)) == [str(n) for n in range(11)]
            await nikos.tap("10")
            assert (await nikos.sees(2))[-1] == "Χαιρόμαστε πολύ! Τι σας άρεσε περισσότερο;"
            await nikos.type("Γρήγορη απάντηση")
            assert (await nikos.sees(3))[-1].startswith("Σας ευχαριστούμε που αφιερώσατε")

            # Ruta (Lithuanian), CES: types 6, skips the comment with the button
            reply = await staff_sends(people, fake, f"ces {RUTA} ticket_id=103")
            assert reply == f"Survey “ces” sent to <@{RUTA}>.", reply
            assert (await ruta.sees(1))[0].startswith("Kiek lengva buvo išspręsti")
            await ruta.type("6")
            assert (await ruta.sees(2))[-1].startswith("Ar norėtumėte ką nors pridurti?")
            await ruta.tap("Praleisti")
            assert (await ruta.sees(3))[-1].startswith("Dėkojame! Jūsų atsiliepimas")

        rows = await export(config)
    given = [
        (r["flow_id"], r["question_id"], r["value"], r["text"], r["user_id"], r["locale"],
         r["context"], r["triggered_by"], r["platform"])
        for r in rows
    ]  # fmt: skip
    staff = f"slack:{STAFF}"
    # the staff member who sent them is credited as agent
    t101, t102, t103 = ({"ticket_id": t, "agent": "stella"} for t in ("101", "102", "103"))
    assert given == [
        ("csat", "satisfied", 0, None, AMY, "en", t101, staff, "slack"),
        ("csat", "what_went_wrong", None, "Nobody called back", AMY, "en", t101,
         staff, "slack"),
        ("nps", "score", 10, None, NIKOS, "el", t102, staff, "slack"),
        ("nps", "promoter_reason", None, "Γρήγορη απάντηση", NIKOS, "el", t102,
         staff, "slack"),
        ("ces", "effort", 6, None, RUTA, "lt", t103, staff, "slack"),
    ]  # fmt: skip
