"""A fresh install made by `surveybot init`, for the tests that drive the console script."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.console_script import surveybot


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    result = surveybot("init", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "demo"
