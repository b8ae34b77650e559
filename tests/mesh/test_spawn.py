"""A process the mesh starts dies with the process that started it, even one started from a
short-lived thread (the kernel ties the parent-death signal to the forking *thread*)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import kill_all_mentioning, pids_mentioning, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")

# A parent that starts a child through spawn.popen from a thread that then ends (as an API
# request's thread does), prints the child's pid and waits to be killed.
PARENT = """
import sys, threading, time
from chaosmesh_ext.mesh import spawn

token = sys.argv[1]
started = []
thread = threading.Thread(
    target=lambda: started.append(
        spawn.popen([sys.executable, "-c", "import time; time.sleep(600)", token + "/child"])
    )
)
thread.start()
thread.join()
print(started[0].pid, flush=True)
time.sleep(600)
"""


def test_a_child_started_from_an_ended_thread_dies_with_its_killed_parent(
    tmp_path: Path,
) -> None:
    token = f"spawn-child-{tmp_path.name}"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, token], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        # The thread that forked it has ended: the child must still run.
        assert pids_mentioning(f"{token}/child") == [child]
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        wait_until(
            lambda: not pids_mentioning(f"{token}/child"), timeout=10, what="the orphan gone"
        )
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        kill_all_mentioning(token)
