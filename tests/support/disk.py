"""A real full disk for tests: a small tmpfs of the test's own, and a filler file that takes its
last byte. Mounting needs root; without it (or where mounting is refused) the test is skipped
with the reason."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

TMPFS_SIZE = "16m"  # a migrated database and its WAL take well under 1 MB


@contextmanager
def mounted_tmpfs(disk: Path, size: str = TMPFS_SIZE) -> Iterator[Path]:
    """Mount a ``size`` tmpfs on ``disk`` (created), unmounted whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill up needs root")
    disk.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the tmpfs has no byte left; returns it (unlink = space back)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 4096, 1):  # big chunks, then what is left
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as err:
                    assert err.errno == errno.ENOSPC, err
                    break
    finally:
        os.close(fd)
    return filler
