"""`surveybot run` with no platform token, as a newcomer meets it: the real console script in a
subprocess, the terminal chat on its stdin/stdout and the HTTP API beside it."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.console_script import SURVEYBOT, surveybot

HANG_GUARD = 60.0  # seconds: only ends a test that would otherwise hang


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Terminal:
    """The console chat of a running `surveybot run`: type lines, read what it prints."""

    proc: asyncio.subprocess.Process
    port: int
    screen: str = ""
    read_up_to: int = field(default=0)

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())

    async def shows(self, text: str) -> str:
        """Everything printed since the last call, once it includes ``text``."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(HANG_GUARD):
            while text not in self.screen[self.read_up_to :]:
                chunk = await self.proc.stdout.read(4096)
                assert chunk, f"the process ended before showing {text!r}: {self.screen!r}"
                self.screen += chunk.decode()
        start = self.read_up_to
        self.read_up_to = self.screen.index(text, start) + len(text)
        return self.screen[start : self.read_up_to]

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def console_run(workdir: Path) -> AsyncIterator[Terminal]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYBOT_")}
    proc = await asyncio.create_subprocess_exec(
        SURVEYBOT, "run", cwd=workdir, env=env | {"SURVEYBOT_SERVER__PORT": str(port)},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    terminal = Terminal(proc, port)
    try:
        await terminal.shows("surveybot console chat.")
        async with httpx.AsyncClient() as client, asyncio.timeout(HANG_GUARD):
            while True:
                try:
                    if (await client.get(f"{terminal.api}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        yield terminal
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(HANG_GUARD):
            await proc.wait()


async def test_the_console_answers_the_question_it_shows_with_the_number_shown(
    workdir: Path,
) -> None:
    # an older preview left unfinished for this OS account
    assert surveybot("try", "csat", cwd=workdir, stdin="").returncode == 1
    async with console_run(workdir) as term, httpx.AsyncClient() as client:
        sent = await client.post(
            f"{term.api}/api/v1/surveys", json={"flow": "csat", "platform": "console", "user": "u1"}
        )
        assert sent.status_code == 202 and sent.json()["status"] == "sent", sent.text
        shown = await term.shows("2) No")
        assert "Were you satisfied with the help you received?" in shown and "1) Yes" in shown
        term.type("2")  # the number shown for No
        await term.shows("What went wrong")
        term.type("Slow reply")
        await term.shows("Thank you for your feedback!")
        view = (await client.get(f"{term.api}/api/v1/surveys/{sent.json()['session_id']}")).json()
        assert view["status"] == "completed"
        assert view["answers"] == {"satisfied": 0, "what_went_wrong": "Slow reply"}
    export = surveybot("export", cwd=workdir).stdout
    assert getpass.getuser() not in export  # the old preview got no answer meant for u1


async def test_the_console_explains_itself_and_keeps_logs_out_of_the_chat(workdir: Path) -> None:
    async with console_run(workdir) as term, httpx.AsyncClient() as client:
        term.type("/help")
        shown = await term.shows("/quit")
        assert "/start FLOW" in shown and "/skip" in shown and "ces, csat, nps" in shown
        term.type("/start")
        assert "Which survey? Type /start FLOW" in await term.shows("(flows: ces, csat, nps).")
        term.type("hello")
        await term.shows("No question is waiting for you.")
        term.type("/start nps")
        await term.shows("[0–10]")
        term.type("9")
        await term.shows("/skip")
        term.type("/skip")
        await term.shows("Thank you")
        term.type("/start nps")  # a customer-started survey is throttled like any other
        await term.shows("You already told us recently. Thank you!")
        term.type("/quit")
        await term.shows("the HTTP server keeps running")
        assert (await client.get(f"{term.api}/healthz")).status_code == 200
        assert " INFO " not in term.screen and "dispatcher started" not in term.screen
    log = (workdir / "surveybot.log").read_text(encoding="utf-8")
    assert "dispatcher started" in log and "stopped" in log


def test_run_in_a_folder_with_no_config_or_flows_says_to_init(tmp_path: Path) -> None:
    result = surveybot("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "no config.yaml here and no flows" in result.stderr
    assert "surveybot init" in result.stderr


def test_concurrent_previews_from_one_account_never_mix(workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYBOT_")}
    pipe = subprocess.PIPE
    runs = [
        subprocess.Popen([SURVEYBOT, "try", "nps"], cwd=workdir, env=env, stdin=pipe,
                         stdout=pipe, stderr=pipe, text=True)
        for _ in range(8)
    ]  # fmt: skip
    for i, proc in enumerate(runs):  # every score typed before any comment
        assert proc.stdin is not None
        proc.stdin.write(f"{i}\n")
        proc.stdin.flush()
    for i, proc in enumerate(runs):
        proc.communicate(f"comment {i}\n", timeout=HANG_GUARD)
    assert [p.returncode for p in runs] == [0] * 8
    by_session: dict[str, dict[str, object]] = {}
    for line in surveybot("export", cwd=workdir).stdout.splitlines():
        row = json.loads(line)
        by_session.setdefault(row["session_id"], {})[row["metric"]] = (
            row["text"] if row["metric"] == "text" else row["value"]
        )
    pairs = sorted((answers["text"], answers["nps"]) for answers in by_session.values())
    assert pairs == [(f"comment {i}", i) for i in range(8)]
