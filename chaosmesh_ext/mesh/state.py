"""The embedded mesh's state directory: ``mesh.json``, the lock, and the pids it started.

``mesh.json`` (keys in docs/CONTRACTS.md) is written atomically by the daemon and read by
``mesh status/url/down`` and by other layers. The daemon holds an exclusive ``flock`` on
``mesh.lock`` for its lifetime, so "is a mesh up here?" has one answer even after a crash
(the kernel drops the lock with the process) and two daemons never share a directory.
Stopping is by recorded pid only, and only if that pid still runs the process we started
(its start time is recorded too, so a recycled pid is never signalled).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from chaosmesh_ext._process import alive, start_time

from .paths import DEFAULT_STATE_DIR, StatePaths
from .xds_files import atomic_write

__all__ = [
    "DEFAULT_STATE_DIR",
    "AlreadyRunning",
    "DaemonId",
    "StateDir",
    "acquire_lock",
    "alive",
    "start_time",
    "stop_pid",
]


class DaemonId(NamedTuple):
    """One process as the kernel knows it: its pid and its start time (``/proc/<pid>/stat``
    field 22), so a recycled pid is never mistaken for it."""

    pid: int
    started: str | None

    def alive(self) -> bool:
        return alive(self.pid, self.started)


@dataclass(frozen=True)
class StateDir(StatePaths):
    """A state directory's ``mesh.json`` and lock (its file layout is ``paths.StatePaths``)."""

    def read(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.mesh_json.read_text())
            return data
        except (OSError, ValueError):
            return None

    def write(self, state: dict[str, Any]) -> None:
        """Replace mesh.json whole: readers (``mesh status``, the metrics exporter, which
        re-reads it when its mtime changes) see the old file or the new one, never half.

        Each write has its own temp file in the same directory, so writers in several
        threads never rename one another's half-written file.
        """
        atomic_write(self.mesh_json, json.dumps(state, indent=2, sort_keys=True))

    def clear(self) -> None:
        for path in (self.mesh_json, self.pid_path, self.lock_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock for a moment (raises ``AlreadyRunning`` if a daemon has
        it): cleaning up after a dead daemon must not race a daemon that is starting."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AlreadyRunning(f"a mesh is starting or running in {self.root}") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def is_locked(self) -> bool:
        """True while a live daemon holds the lock."""
        if not self.lock_path.exists():
            return False
        with open(self.lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False


class AlreadyRunning(RuntimeError):
    """Another daemon holds this state directory."""


def acquire_lock(state: StateDir) -> IO[str]:
    """Take the directory's lock for this process's lifetime (keep the handle open)."""
    state.root.mkdir(parents=True, exist_ok=True)
    handle = open(state.lock_path, "a+")  # noqa: SIM115 - held until the daemon exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise AlreadyRunning(f"a mesh is already running in {state.root}") from None
    state.pid_path.write_text(str(os.getpid()))
    return handle


def stop_pid(pid: int, started: str | None = None, timeout: float = 5.0) -> bool:
    """SIGTERM ``pid`` (only if it is still the recorded process), SIGKILL after ``timeout``.

    Returns True when the process is gone.
    """
    if not alive(pid, started):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid, started):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if not alive(pid, started):
            return True
        time.sleep(0.05)
    return not alive(pid, started)
