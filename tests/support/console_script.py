"""The real `surveybot` console script, run as an admin runs it (a subprocess, without the
test environment's SURVEYBOT_* variables)."""

from __future__ import annotations

import os
import shutil
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
