"""``make`` finds a Python the way a new user's machine has it: through pyenv even when HOME
is not where pyenv lives (``scripts/find-python.sh``, what the Makefile's PYTHON runs).

A fake pyenv root holds "the running interpreter" as versions/X.Y.99; PATH has no pythonX.Y,
so only pyenv's root can lead to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "find-python.sh"
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
BASH = shutil.which("bash") or "/bin/bash"


def _fake_root(base: Path) -> Path:
    root = base / "pyenv"
    bin_dir = root / "versions" / f"{VERSION}.99" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / f"python{VERSION}").symlink_to(sys.executable)
    return root


def _bare_path(base: Path) -> str:
    """A PATH with the few programs the script needs and no Python at all."""
    tools = base / "tools"
    tools.mkdir()
    for program in ("ls", "sort", "dirname", "readlink"):
        found = shutil.which(program)
        assert found, program
        (tools / program).symlink_to(found)
    return str(tools)


def _find(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(SCRIPT), "3.99", VERSION],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_pyenv_root_is_searched_when_home_is_elsewhere(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    env = {"HOME": str(tmp_path / "fresh-home"), "PATH": _bare_path(tmp_path)}
    assert _find(env).returncode == 1  # neither PATH nor ~/.pyenv has one
    found = _find({**env, "PYENV_ROOT": str(root)})
    assert found.stdout.strip() == str(
        root / "versions" / f"{VERSION}.99" / "bin" / f"python{VERSION}"
    )


def test_the_root_of_the_pyenv_on_path_is_searched(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    (root / "libexec").mkdir()
    (root / "libexec" / "pyenv").write_text("#!/bin/sh\nexit 0\n")
    (root / "libexec" / "pyenv").chmod(0o755)
    (root / "bin").mkdir()
    (root / "bin" / "pyenv").symlink_to(root / "libexec" / "pyenv")  # as pyenv installs itself
    env = {
        "HOME": str(tmp_path / "fresh-home"),
        "PATH": os.pathsep.join([str(root / "bin"), _bare_path(tmp_path)]),
    }
    found = _find(env)
    assert found.stdout.strip().startswith(str(root / "versions")), found.stderr
