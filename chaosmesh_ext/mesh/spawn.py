"""Start the mesh's processes so that they die with the process that started them.

A daemon killed outright (kill -9, the OOM killer) runs no clean-up: without help its Envoy,
Prometheus and workloads would live on as orphans, holding ports and answering requests
nobody is watching. On Linux every process started here asks the kernel for a parent-death
signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so the daemon's death takes them down.

The kernel sends that signal when the *thread* that forked the child exits, not the
process. The daemon starts processes from short-lived threads (an API request applying
manifests, Envoy's watchdog), so every start goes through one long-lived thread of its own
(``popen``): the children then die exactly when the process does.

Elsewhere (no ``prctl``) processes start as plain ``subprocess.Popen`` children.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["die_with_parent", "popen"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel for ``sig`` when the parent dies (Linux), or None.

    If the parent is already gone when the child gets there (it died between fork and
    prctl), the child exits at once instead of running as an orphan.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class _Spawner(threading.Thread):
    """The one thread that forks the mesh's children (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(name="chaosmesh-spawner", daemon=True)
        self.requests: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]] = queue.Queue()

    def run(self) -> None:
        while True:
            start, answer = self.requests.get()
            try:
                answer.put((True, start()))
            except BaseException as exc:  # handed back to the caller, raised there
                answer.put((False, exc))


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def _in_spawner(start: Callable[[], Any]) -> Any:
    global _spawner
    with _spawner_lock:
        if _spawner is None or not _spawner.is_alive():
            _spawner = _Spawner()
            _spawner.start()
        spawner = _spawner
    answer: queue.Queue[Any] = queue.Queue(maxsize=1)
    spawner.requests.put((start, answer))
    ok, value = answer.get()
    if not ok:
        raise value
    return value


def popen(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(args, **kwargs)`` whose process dies with this one (Linux)."""
    preexec = die_with_parent()
    if preexec is None:
        return subprocess.Popen(args, **kwargs)
    if "preexec_fn" in kwargs:
        raise ValueError("spawn.popen sets preexec_fn itself")
    return _in_spawner(lambda: subprocess.Popen(args, preexec_fn=preexec, **kwargs))  # type: ignore[no-any-return]
