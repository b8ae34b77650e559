"""A real, small filesystem that tests can fill up: a tmpfs of a few MiB mounted on a directory.

Mounting needs root. Outside CI a test that needs it is skipped, saying so; CI runs as root,
so there (``CI=true``, as ``.ci/run`` sets it) not being able to mount fails the test instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tools import in_ci

FILLER = ".filler"


def _cannot(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI runs as root and must run this test: {reason}")
    pytest.skip(f"needs a real full filesystem: {reason}")


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "8m") -> Iterator[Path]:
    """Mount a ``size`` tmpfs on ``path`` (created) for the block; unmounted after, by path."""
    if os.geteuid() != 0:
        _cannot("mounting a small tmpfs needs root (CI runs as root)")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        _cannot(f"mount -t tmpfs failed: {done.stderr.strip() or done.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30, check=False)


def fill(directory: Path) -> Path:
    """Take every free byte of ``directory``'s filesystem with one file; returns it."""
    filler = directory / FILLER
    fd = os.open(filler, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for chunk in (1 << 20, 4 << 10, 1):
            block = b"\0" * chunk
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def free_bytes(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize
