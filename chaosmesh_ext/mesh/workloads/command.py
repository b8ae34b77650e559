"""The command workload: run the user's own program as a replica, and keep it running.

The program (``chaosmesh.io/command``, split like a shell would but run without one) gets
its port in ``PORT``, its pod's environment (``HOSTNAME``, ``POD_NAME``, ``POD_NAMESPACE``,
``SERVICE_VERSION``, the container's resolved ``env``) and the sidecar's (``spec``,
``container_env``, ``chaosmesh_ext._sidecar``). If it exits it is started again after a
backoff (0.5 s doubling to 30 s, back to 0.5 s after a run of 10 s or more), like a pod's
container restarts. SIGTERM stops it (its whole process group: SIGTERM, then SIGKILL after
the pod's grace period) and then this supervisor. If this supervisor is killed outright (a
pod deleted with grace period 0, or whose grace period ran out) the kernel kills the program
with it, as a container's processes die with the container.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from types import FrameType

from ..spawn import die_with_parent
from ._http import say

MIN_BACKOFF = 0.5
MAX_BACKOFF = 30.0
HEALTHY_RUN = 10.0  # a run this long resets the backoff
STOP_GRACE = 5.0  # SIGTERM, then SIGKILL after this long (unless the pod's grace says more)


def _signal_group(child: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(child.pid, sig)  # the program runs in its own session: its group id is its pid
    except (ProcessLookupError, PermissionError):
        pass


def _stop(child: subprocess.Popen[bytes], grace: float) -> None:
    if child.poll() is not None:
        return
    _signal_group(child, signal.SIGTERM)
    try:
        child.wait(grace)
    except subprocess.TimeoutExpired:
        _signal_group(child, signal.SIGKILL)
        child.wait(STOP_GRACE)


def supervise(argv: list[str], name: str, grace: float = STOP_GRACE) -> int:
    """Run ``argv`` until SIGTERM/SIGINT, restarting it with backoff; the exit code.
    ``grace``: how long a stopping program has between SIGTERM and SIGKILL."""
    stopping = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        if child is not None and child.poll() is None:
            _signal_group(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    backoff = MIN_BACKOFF
    # The kernel SIGKILLs the program if this supervisor is killed outright (a pod deleted
    # with grace period 0, or whose grace ran out): a container's processes die with it.
    preexec = die_with_parent(signal.SIGKILL)
    while not stopping.is_set():
        started = time.monotonic()
        try:
            child = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=preexec
            )
        except OSError as exc:
            # A program that is missing or not executable will not appear by retrying.
            say(name, f"cannot start {argv[0]!r}: {exc.strerror or exc}")
            return 127 if isinstance(exc, FileNotFoundError) else 126
        say(name, f"started pid {child.pid}: {' '.join(argv)}")
        # Until it exits, or we are told to stop: a program that ignores SIGTERM must not
        # keep this loop from its SIGKILL after the grace period.
        while (code := child.poll()) is None and not stopping.wait(0.1):
            pass
        if stopping.is_set():
            break
        ran = time.monotonic() - started
        if ran >= HEALTHY_RUN:
            backoff = MIN_BACKOFF
        say(name, f"exited with code {code} after {ran:.1f}s; restarting in {backoff:g}s")
        stopping.wait(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)
    if child is not None:
        _stop(child, grace)
    say(name, "stopped")
    return 0
