"""The two bots bench/pipeline_bench.py compares, each a real process talking to the fake Bot
API over HTTP: `surveybot run` (the installed console script; SQLite, Telegram polling, a temp
config.yaml) and bench/baseline_bot.py (python-telegram-bot ConversationHandler +
PicklePersistence). Also: how "limits off" is expressed in surveybot's settings today, the
fake's strict-limits mode when the fake has one, and platform calls counted from its records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.telegram_api import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
SURVEY_METHODS = ("sendMessage", "editMessageText", "editMessageReplyMarkup", "answerCallbackQuery")
READY_TIMEOUT = 90.0  # a safety bound on a bot's startup on a busy machine, not a measurement


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Limits:
    """Environment for surveybot that realises ``--limits``, and what it could not change."""

    mode: str
    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _fields(model: Any) -> dict[str, Any]:
    return dict(getattr(model, "model_fields", {}) or {})


def _model_of(info: Any) -> Any:
    """The pydantic model class a settings field holds (also through ``X | None``)."""
    candidates = [info.annotation, *getattr(info.annotation, "__args__", ())]
    return next((c for c in candidates if _fields(c)), None)


def surveybot_limits(mode: str) -> Limits:
    """Which settings turn surveybot's Telegram send limits off, detected from bot/settings.py:
    ``telegram.rate_limit.*`` (0 = off) when it exists, else ``surveys.send_rates`` (no
    ``per_second`` = unlimited). Limits applied in code, not in settings, are reported."""
    from bot.settings import Settings

    limits = Limits(mode)
    telegram = _model_of(Settings.model_fields["telegram"])
    rate_limit = _fields(telegram).get("rate_limit")
    surveys = _model_of(Settings.model_fields["surveys"])
    if rate_limit is not None and _model_of(rate_limit) is not None:
        keys = list(_fields(_model_of(rate_limit)))
        if mode == "off":
            limits.env = {f"SURVEYBOT_TELEGRAM__RATE_LIMIT__{k.upper()}": "0" for k in keys}
            limits.notes.append(f"limits off: telegram.rate_limit.{{{', '.join(keys)}}} = 0")
            if surveys is not None and "send_rates" in _fields(surveys):  # the dispatcher's own
                limits.env["SURVEYBOT_SURVEYS__SEND_RATES"] = json.dumps({"telegram": {}})
                limits.notes.append("and surveys.send_rates.telegram: {} (the dispatcher's)")
    elif surveys is not None and "send_rates" in _fields(surveys):
        if mode == "off":
            limits.env["SURVEYBOT_SURVEYS__SEND_RATES"] = json.dumps({"telegram": {}})
            limits.notes.append(
                "limits off = surveys.send_rates.telegram: {} (lifts the dispatcher's limit on "
                "survey sends). bot/settings.py has no telegram.rate_limit yet: the Telegram "
                "runner's ChatRateLimiter (PTB's AIORateLimiter, bot/platforms/telegram/limits.py: "
                "every call that names a chat, sendMessage and edits, paced at 30/s overall; "
                "20/min per group; 5 then ~1/s per private chat) is built in code and cannot be "
                "turned off from config today, so it still applies."
            )
    else:
        limits.notes.append("no rate-limit settings found in bot/settings.py: limits unchanged")
    return limits


def configured_rate(config: Path, env: dict[str, str]) -> float | None:
    """Messages/s surveybot is configured to send to different chats (None: unlimited), read
    with the environment the process gets: ``telegram.rate_limit.messages_per_second`` or
    ``surveys.send_rates.telegram.per_second``, whichever this version has."""
    from bot.settings import load_settings

    with environment(env):
        settings = load_settings(config)
    rate_limit = getattr(settings.telegram, "rate_limit", None)
    if rate_limit is not None:
        value = getattr(rate_limit, "messages_per_second", None)
    else:
        from bot.conversation.ratelimit import DEFAULT_RATES  # what the dispatcher adds

        rates = DEFAULT_RATES | dict(getattr(settings.surveys, "send_rates", {}))
        value = rates["telegram"].per_second if "telegram" in rates else None
    return float(value) if value else None


def new_fake(strict: bool) -> tuple[FakeTelegram, str | None]:
    """A FakeTelegram; with ``strict``, in the mode that answers 429 over Telegram's limits
    (``strict_limits()``), when this version of the fake has it. Returns how it was set."""
    fake = FakeTelegram()
    switch = getattr(fake, "strict_limits", None)
    if strict and callable(switch):
        switch()
        return fake, "fake.strict_limits() (30/s overall, 1/s per chat after a burst of 3)"
    return fake, None


def call_counts(fake: FakeTelegram, besides: Collection[int] = ()) -> Counter[str]:
    """Calls of the methods a survey costs (every attempt, whatever its answer), except those
    to the chats ``besides``."""
    skip = {str(c) for c in besides}
    return Counter(
        c.method
        for c in fake.calls
        if c.method in SURVEY_METHODS and str(c.params.get("chat_id")) not in skip
    )


def too_many_requests(fake: FakeTelegram, among: Collection[int] | None = None) -> int:
    """Calls answered 429 (only those to the chats ``among``, when given)."""
    keep = None if among is None else {str(c) for c in among}
    return sum(
        1
        for c in fake.calls
        if c.status == 429 and (keep is None or str(c.params.get("chat_id")) in keep)
    )


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` in os.environ for the duration (to read surveybot's settings as it will)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class BotProcess:
    """One bot as a subprocess; ready once it starts polling the fake. PTB's start_polling
    calls deleteWebhook, then getUpdates; the fake records a call when it answers it, and a
    long poll is answered only when an update comes, so deleteWebhook is the signal (updates
    sent from then on are delivered by the first getUpdates)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], workdir: Path, fake: FakeTelegram
    ) -> None:
        self.name, self.argv, self.env, self.workdir, self.fake = name, argv, env, workdir, fake
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = workdir / f"{name}.log"

    async def start(self) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYBOT_")}
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=self.workdir,
                env=clean | self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while not (self.fake.method_calls("deleteWebhook") or self.fake.method_calls("getUpdates")):
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start polling:\n{self.log_tail()}")
            await asyncio.sleep(0.02)

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the process has used so far (Linux /proc; else None)."""
        if self.proc is None or self.proc.returncode is not None:
            return None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def baseline(fake: FakeTelegram, workdir: Path) -> BotProcess:
    argv = [
        sys.executable,
        str(ROOT / "bench" / "baseline_bot.py"),
        "--token",
        fake.token,
        "--base-url",
        fake.base_url,
        "--data",
        str(workdir / "baseline.pickle"),
    ]
    return BotProcess("baseline", argv, {}, workdir, fake)


def surveybot_executable() -> str:
    beside = Path(sys.executable).with_name("surveybot")
    found = str(beside) if beside.exists() else shutil.which("surveybot")
    if found is None:
        raise SystemExit("the surveybot console script is not installed (pip install -e .)")
    return found


def write_config(workdir: Path, fake: FakeTelegram, port: int) -> Path:
    config = workdir / "config.yaml"
    config.write_text(
        f"flows_dir: {ROOT / 'flows'}\n"
        f'storage: {{url: "sqlite:///{workdir / "surveys.db"}"}}\n'
        "staff: {telegram: [], slack: []}\n"
        f'telegram: {{mode: polling, api_base_url: "{fake.base_url}"}}\n'
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        "surveys: {expires_after: 72h, remind_after: 24h, throttle: 30d}\n",
        encoding="utf-8",
    )
    return config


def surveybot(
    fake: FakeTelegram,
    workdir: Path,
    limits: Limits,
    port: int,
    api_token: str,
    no_queues: bool = False,
) -> BotProcess:
    """`surveybot run` on SQLite with Telegram polling against the fake. With a Telegram token
    set the console chat does not run; stdin is /dev/null regardless. ``no_queues``: the
    bench-only switch that turns the inbox and the outbox off (``SURVEYBOT_BENCH_NO_QUEUES``)."""
    config = write_config(workdir, fake, port)
    env = {"SURVEYBOT_TELEGRAM_TOKEN": fake.token, "SURVEYBOT_API_TOKEN": api_token, **limits.env}
    if no_queues:
        env["SURVEYBOT_BENCH_NO_QUEUES"] = "1"
    argv = [surveybot_executable(), "run", "--config", str(config)]
    return BotProcess("no-queues" if no_queues else "surveybot", argv, env, workdir, fake)
