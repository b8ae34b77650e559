"""``make`` finds a Python the way a new user's machine has it: through pyenv even when HOME
is not where pyenv lives (``scripts/find-python.sh``, what the Makefile's PYTHON runs).

A fake pyenv root holds a "Python 3.98" (a script that runs, which is all the search asks of
an interpreter); nothing else on the machine has that version, so only pyenv's root leads to it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "find-python.sh"
VERSION = "3.98"
SYSTEM_PATH = "/usr/bin:/bin"  # the script's own tools (bash, ls, sort, readlink)


def _fake_root(base: Path) -> Path:
    root = base / "pyenv"
    bin_dir = root / "versions" / f"{VERSION}.1" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / f"python{VERSION}"
    python.write_text("#!/bin/sh\nexit 0\n")
    python.chmod(0o755)
    return root


def _find(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), "3.99", VERSION],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_pyenv_root_is_searched_when_home_is_elsewhere(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    env = {"HOME": str(tmp_path / "fresh-home"), "PATH": SYSTEM_PATH}
    assert _find(env).returncode == 1  # neither PATH nor ~/.pyenv has one
    found = _find({**env, "PYENV_ROOT": str(root)})
    assert found.stdout.strip() == str(
        root / "versions" / f"{VERSION}.1" / "bin" / f"python{VERSION}"
    )


def test_the_root_of_the_pyenv_on_path_is_searched(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    (root / "libexec").mkdir()
    (root / "libexec" / "pyenv").write_text("#!/bin/sh\nexit 0\n")
    (root / "libexec" / "pyenv").chmod(0o755)
    (root / "bin").mkdir()
    (root / "bin" / "pyenv").symlink_to(root / "libexec" / "pyenv")  # as pyenv installs itself
    env = {"HOME": str(tmp_path / "fresh-home"), "PATH": f"{root / 'bin'}:{SYSTEM_PATH}"}
    found = _find(env)
    assert found.stdout.strip().startswith(str(root / "versions")), found.stderr
