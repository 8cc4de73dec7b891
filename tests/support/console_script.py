"""The real `surveybot` console script, run as an admin runs it (a subprocess, without the
test environment's SURVEYBOT_* variables)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

SURVEYBOT = shutil.which("surveybot", path=str(Path(sys.executable).parent)) or "surveybot"


def surveybot(
    *args: str, cwd: Path, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SURVEYBOT_")}
    return subprocess.run(
        [SURVEYBOT, *args], cwd=cwd, input=stdin, capture_output=True, text=True,
        env=clean | (env or {}), timeout=60,
    )  # fmt: skip


async def stop(process: asyncio.subprocess.Process, grace: float = 30.0) -> bool:
    """SIGTERM, and SIGKILL if it has not exited within ``grace`` seconds; True when it
    stopped by itself (or had already exited)."""
    if process.returncode is not None:
        return True
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        process.kill()
        await process.wait()
        return False
    return True
