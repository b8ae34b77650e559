"""Run the real ``chaosmesh`` command as a user does (a bounded subprocess), for the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI_TIMEOUT = 120
# The console script pip installed next to the interpreter: what a user types.
CHAOSMESH_BIN = str(Path(sys.executable).with_name("chaosmesh"))


def chaosmesh(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = CLI_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``chaosmesh ARGS`` as a real process (the installed entry point), bounded."""
    full_env = dict(os.environ)
    full_env.pop("NO_COLOR", None)
    full_env.update(env or {})
    return subprocess.run(
        [CHAOSMESH_BIN, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
