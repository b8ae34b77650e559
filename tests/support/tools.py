"""The one way a test gets an external program (kubectl, prometheus, chromium).

Outside CI a missing program skips the test with the exact command that installs it; under
``CI=true`` (how ``.ci/run`` runs the suite) it fails the test naming the program, so a broken
install step can never turn into a green run of skipped tests.

Which Debian package provides each program is read from the Makefile's ``SYSTEM_TOOLS``
(``program:package`` pairs): ``make install`` installs exactly those, and
``tests/test_tools.py`` checks that the programs the tests ask for here are that same set.
"""

from __future__ import annotations

import os
import re
import shutil
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = ROOT / "Makefile"
_SYSTEM_TOOLS = re.compile(r"^SYSTEM_TOOLS\s*:?=\s*(?P<pairs>.*)$", re.MULTILINE)


@cache
def makefile_tools() -> dict[str, str]:
    """``{program: Debian package}`` as the Makefile's ``SYSTEM_TOOLS`` lists them."""
    found = _SYSTEM_TOOLS.search(MAKEFILE.read_text())
    if found is None:
        raise AssertionError(f"{MAKEFILE}: no SYSTEM_TOOLS line")
    tools: dict[str, str] = {}
    for pair in found["pairs"].split():
        program, _, package = pair.partition(":")
        tools[program] = package or program
    return tools


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_tool(program: str) -> str:
    """The path of ``program``; skip (or, under CI=true, fail) when it is not installed."""
    tools = makefile_tools()
    if program not in tools:
        # A test needs a program `make install` does not provide: that is the suite's bug.
        raise AssertionError(
            f"{program!r} is not in the Makefile's SYSTEM_TOOLS ({' '.join(sorted(tools))}): "
            "add it there so make install provides it"
        )
    path = shutil.which(program)
    if path:
        return path
    install = f"as root: apt-get install -y {tools[program]} (or make install)"
    if in_ci():
        pytest.fail(f"CI=true: {program} is not installed (make install failed?); {install}")
    pytest.skip(f"{program} is not installed; {install}")
