"""Acceptance (issue 3, "Done when"): `surveybot run` as a new user runs it — a config.yaml, the
token in the environment, ``telegram.api_base_url`` pointing at a Bot API server (the fake) —
completes CSAT, NPS and CES surveys in en, el and lt started by every trigger (deep link,
invite token, staff /survey in a group and in private, an invite link for a customer the bot
cannot write to, the HTTP API, `surveybot send`), survives a ``kill -9`` in the middle of two
surveys, and `surveybot export` shows exactly the answers given. Every wait is bounded; the
bot process is always reaped.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.conftest import SHIPPED_FLOWS
from tests.fakes.telegram_api import FakeTelegram
from tests.support.console_script import stop
from tests.support.telegram_harness import (
    ANNA,
    DMITRI,
    ELENI,
    GROUP,
    RASA,
    STAFF,
    Person,
    add_people,
    button,
    labels,
)

SURVEYBOT = str(Path(sys.executable).parent / "surveybot")
STARTUP = 60.0  # seconds a cold start (imports, migrations) may take on a slow machine
COMMAND = 120.0  # seconds a one-shot CLI command may take


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Installation:
    """A directory with config.yaml and flows/, as `surveybot init` leaves it, plus the
    environment a new user sets."""

    def __init__(self, root: Path, fake: FakeTelegram, *, webhook: bool = False) -> None:
        self.root, self.fake, self.port = root, fake, free_port()
        self.webhook = webhook
        hook = f"http://127.0.0.1:{self.port}/telegram/webhook"
        telegram = f"{{mode: webhook, webhook_url: '{hook}'}}" if webhook else "{mode: polling}"
        shutil.copytree(SHIPPED_FLOWS, root / "flows")
        (root / "config.yaml").write_text(
            "flows_dir: flows\n"
            'storage: {url: "sqlite:///data/surveys.db"}\n'
            f"staff: {{telegram: [{STAFF}]}}\n"
            f"telegram: {telegram}\n"
            f"server: {{host: 127.0.0.1, port: {self.port}}}\n",
            encoding="utf-8",
        )
        (root / "data").mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYBOT_")}
        self.env |= {
            "SURVEYBOT_TELEGRAM_TOKEN": fake.token,
            "SURVEYBOT_TELEGRAM__API_BASE_URL": fake.base_url,
            "SURVEYBOT_CONFIG": str(root / "config.yaml"),
        }
        if webhook:
            self.env["SURVEYBOT_TELEGRAM_WEBHOOK_SECRET"] = "acceptance-Secret_1"
        self.runs = 0

    async def command(self, *args: str) -> str:
        """A one-shot `surveybot ...`; its stdout (fails with its stderr)."""
        proc = await asyncio.create_subprocess_exec(
            SURVEYBOT, *args, cwd=self.root, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), COMMAND)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, f"surveybot {' '.join(args)}: {err.decode()}"
        return out.decode()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[asyncio.subprocess.Process]:
        """`surveybot run` until the block ends (SIGTERM) or the test kills it."""
        self.runs += 1
        ready = "setWebhook" if self.webhook else "deleteWebhook"  # polling deletes it first
        polls = len(self.fake.method_calls(ready))
        log = (self.root / f"run-{self.runs}.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            SURVEYBOT, "run", cwd=self.root, env=self.env, stdout=log, stderr=log
        )
        try:
            await self.fake.wait_for(  # after setMyCommands
                lambda: proc.returncode is not None or len(self.fake.method_calls(ready)) > polls,
                STARTUP,
            )
            assert proc.returncode is None, self.log(self.runs)
            yield proc
        finally:
            if proc.returncode is None:
                assert await stop(proc), f"no clean stop\n{self.log(self.runs)}"
                assert proc.returncode == 0, self.log(self.runs)
            log.close()

    def log(self, run: int) -> str:
        return (self.root / f"run-{run}.log").read_text(encoding="utf-8", errors="replace")

    async def api_survey(self, body: dict[str, str]) -> httpx.Response:
        url = f"http://127.0.0.1:{self.port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            for _ in range(500):  # the HTTP server binds beside the bot: up in a moment
                try:
                    await client.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
            return await client.post("/api/v1/surveys", json=body)


async def test_surveybot_run_completes_every_flow_in_three_languages_across_kill_9(
    tmp_path: Path,
) -> None:
    async with FakeTelegram() as fake:
        add_people(fake)
        site = Installation(tmp_path, fake)

        def person(user_id: int, chat: int | None = None) -> Person:
            return Person(fake, fake.users[user_id], chat or user_id)

        anna, eleni, rasa, dmitri, maria = map(person, (ANNA, ELENI, RASA, DMITRI, STAFF))
        rasa_in_group, eleni_in_group, maria_in_group = (
            person(RASA, GROUP), person(ELENI, GROUP), person(STAFF, GROUP)
        )  # fmt: skip
        wait = 30.0

        async with site.running() as first:
            # 1. deep link, English CSAT: "No", then a comment
            anna.says("/start csat")
            csat = await anna.receives(wait)
            await anna.taps(csat, "No")
            await anna.receives(wait)
            anna.says("Slow replies")
            assert (await anna.receives(wait))["text"].startswith("Thank you for your feedback!")

            # 2. invite token from `surveybot invite`, Greek NPS: the question arrives ...
            printed = await site.command("invite", "nps", "--ctx", "ticket_id=77")
            link = re.search(r"https://t\.me/surveybot_test_bot\?start=(\S+)", printed)
            assert link, printed
            eleni.says(f"/start {link[1]}")
            nps_el = await eleni.receives(wait)
            assert nps_el["text"].startswith("Πόσο πιθανό είναι να μας συστήσετε")

            # 3. staff reply in the group, Lithuanian CES: 6, then the comment question ...
            complaint = rasa_in_group.says("Sveiki, mano užsakymas vėluoja")
            maria_in_group.says("/survey ces ticket_id=78",
                                reply_to=complaint["message"]["message_id"])  # fmt: skip
            ces_lt = await rasa_in_group.receives(wait)
            assert ces_lt["text"].startswith("Rasa, Kiek lengva buvo išspręsti")
            await rasa_in_group.taps(ces_lt, "6")
            comment = await rasa_in_group.receives(wait)
            assert comment["text"] == "Rasa, Ar norėtumėte ką nors pridurti?"

            # ... and the bot dies mid-survey, with no chance to clean up
            first.kill()
            await first.wait()
            assert first.returncode == -signal.SIGKILL
            rasa_in_group.says("Viskas gerai")  # typed while the bot is down

        async with site.running():
            # 3. ... the comment typed during the outage is answered after the restart
            done = await rasa_in_group.receives(wait)
            if done["text"] == comment["text"]:  # at least once: killed before it recorded
                done = await rasa_in_group.receives(wait)  # the send; a repeat is harmless
            assert done["text"].startswith("Rasa, Dėkojame! Jūsų atsiliepimas")
            # 2. ... Eleni taps the keyboard the killed process sent, then comments
            await eleni.taps(nps_el, "9")
            assert (await eleni.receives(wait))["text"].startswith("Χαιρόμαστε πολύ!")
            eleni.says("Πολύ ευγενικοί")
            assert (await eleni.receives(wait))["text"].startswith("Σας ευχαριστούμε")

            # 4. staff in private to a user id: English NPS, 10 and /skip
            maria.says(f"/survey nps {ANNA} agent=maria")
            nps_en = await anna.receives(wait)
            assert labels(nps_en)[1] == ["6", "7", "8", "9", "10"]
            assert (await maria.receives(wait))["text"] == f"Survey “nps” sent to {ANNA}."
            await anna.taps(nps_en, "10")
            await anna.receives(wait)
            anna.says("/skip")
            assert (await anna.receives(wait))["text"].startswith("Thank you for taking")

            # 5. staff to someone who never started the bot: an invite link, Lithuanian CES
            maria.says(f"/survey ces {DMITRI}")
            invite = await maria.receives(wait)
            token = re.search(r"\?start=(\S+)$", invite["text"])
            assert token, invite["text"]
            dmitri.says(f"/start {token[1]}")
            ces_dm = await dmitri.receives(wait)
            await dmitri.taps(ces_dm, "7")
            await dmitri.receives(wait)
            dmitri.says("Ačiū")
            assert (await dmitri.receives(wait))["text"].startswith("Dėkojame!")

            # 6. deep link, Greek CES, typed "3", comment skipped with the button
            eleni.says("/start ces")
            await eleni.receives(wait)
            eleni.says("3")
            skip = await eleni.receives(wait)
            await eleni.taps(skip, "Παράλειψη")
            assert (await eleni.receives(wait))["text"].startswith("Σας ευχαριστούμε!")

            # 7. staff reply in the group, Greek CSAT: "Ναι"
            eleni_in_group.caught_up()
            hello = eleni_in_group.says("Καλησπέρα, λύθηκε, ευχαριστώ")
            maria_in_group.says("/survey csat", reply_to=hello["message"]["message_id"])
            csat_el = await eleni_in_group.receives(wait)
            assert csat_el["text"].startswith("Eleni, Μείνατε ικανοποιημένοι")
            await eleni_in_group.taps(csat_el, "Ναι")
            await eleni_in_group.receives(wait)

            # 8. deep link, Lithuanian CSAT, typed "taip"
            rasa.says("/start csat")
            await rasa.receives(wait)
            rasa.says("taip")
            assert (await rasa.receives(wait))["text"].startswith("Dėkojame už atsiliepimą!")

            # 9. the helpdesk's HTTP API, Lithuanian NPS: 0 and a reason
            body = {"flow": "nps", "platform": "telegram", "user": str(RASA), "locale": "lt-LT"}
            accepted = await site.api_survey(body)
            assert accepted.status_code == 202, accepted.text
            nps_lt = await rasa.receives(wait)
            await rasa.taps(nps_lt, "0")
            await rasa.receives(wait)
            rasa.says("Per brangu")
            assert (await rasa.receives(wait))["text"].startswith("Dėkojame, kad skyrėte")

            # 10. `surveybot send` from a shell beside the running bot, English CES
            sent = await site.command("send", "ces", "--to", f"telegram:{ANNA}")
            assert sent.startswith(f"sent ces to telegram:{ANNA}")
            ces_en = await anna.receives(wait)
            await anna.taps(ces_en, "5")
            await anna.receives(wait)
            anna.says("Quick and friendly")
            assert (await anna.receives(wait))["text"].startswith("Thank you! Your feedback")

        exported = await site.command("export", "--format", "jsonl")

    rows = [json.loads(line) for line in exported.splitlines() if line.strip()]
    got = sorted(
        (r["flow_id"], r["locale"], r["user_id"], r["chat_id"], r["triggered_by"],
         r["question_id"], r["value"], r["text"])
        for r in rows
    )  # fmt: skip
    start, staff, group = "telegram:start", f"telegram:{STAFF}", str(GROUP)
    a, e, r, d = str(ANNA), str(ELENI), str(RASA), str(DMITRI)
    assert got == sorted([
        ("csat", "en", a, None, start, "satisfied", 0, None),
        ("csat", "en", a, None, start, "what_went_wrong", None, "Slow replies"),
        ("nps", "el", e, None, start, "score", 9, None),
        ("nps", "el", e, None, start, "promoter_reason", None, "Πολύ ευγενικοί"),
        ("ces", "lt", r, group, staff, "effort", 6, None),
        ("ces", "lt", r, group, staff, "comment", None, "Viskas gerai"),
        ("nps", "en", a, None, staff, "score", 10, None),
        ("ces", "lt", d, None, start, "effort", 7, None),
        ("ces", "lt", d, None, start, "comment", None, "Ačiū"),
        ("ces", "el", e, None, start, "effort", 3, None),
        ("csat", "el", e, group, staff, "satisfied", 1, None),
        ("csat", "lt", r, None, start, "satisfied", 1, None),
        ("nps", "lt", r, None, "api", "score", 0, None),
        ("nps", "lt", r, None, "api", "detractor_reason", None, "Per brangu"),
        ("ces", "en", a, None, "cli", "effort", 5, None),
        ("ces", "en", a, None, "cli", "comment", None, "Quick and friendly"),
    ])  # fmt: skip
    contexts = {(x["flow_id"], x["user_id"], x["triggered_by"]): x["context"] for x in rows}
    assert contexts[("nps", e, start)] == {"ticket_id": "77"}
    assert contexts[("ces", r, staff)] == {"ticket_id": "78", "agent": "Maria"}  # who sent it
    assert contexts[("nps", a, staff)] == {"agent": "maria"}


async def test_surveybot_run_in_webhook_mode_behind_its_http_server(tmp_path: Path) -> None:
    async with FakeTelegram() as fake:
        add_people(fake)
        site = Installation(tmp_path, fake, webhook=True)
        eleni = Person(fake, fake.users[ELENI], ELENI)
        async with site.running():
            assert fake.webhook_url == f"http://127.0.0.1:{site.port}/telegram/webhook"
            assert fake.webhook_secret == "acceptance-Secret_1"
            eleni.says("/start csat")  # Telegram POSTs it to the webhook, with the secret
            question = await eleni.receives(30)
            tap = fake.tap(fake.users[ELENI], question, button(question, "Όχι"))
            await eleni.receives(30)
            fake.redeliver(tap["update_id"])  # a webhook retry: changes nothing
            eleni.says("Καμία απάντηση για δύο μέρες")
            assert (await eleni.receives(30))["text"].startswith("Σας ευχαριστούμε")
            async with httpx.AsyncClient() as client:
                forged = await client.post(fake.webhook_url, json={"update_id": 1})
            assert forged.status_code == 403
        exported = await site.command("export", "--format", "jsonl")
    assert {s for _, s in fake.webhook_deliveries} == {200}
    rows = [json.loads(line) for line in exported.splitlines()]
    assert [(r["question_id"], r["value"], r["text"], r["locale"]) for r in rows] == [
        ("satisfied", 0, None, "el"),
        ("what_went_wrong", None, "Καμία απάντηση για δύο μέρες", "el"),
    ]
