"""Runs that share one embedded mesh: who starts it, who waits, and who stops it.

Two files in the state directory, next to the daemon's own lock:

- ``runs.lock``: a run holds it (``Sharing.turn``) while it starts or joins the mesh and
  while it leaves it. Two runs started together in one directory therefore never start two
  daemons: the second waits for its turn (and says that the other mesh is still starting),
  then finds the first one's mesh running and joins it.
- ``users.json``: the runs using the mesh that runs now, ``{"daemon": {pid, started},
  "stop_when_unused": bool, "users": [{pid, started, host, run_id, since}]}``.

The rule: a mesh is stopped by the *last* run that uses it, and only if a run started it.
A run that started the mesh records ``stop_when_unused: true``; a run that joins adds
itself; a run that leaves removes itself, and stops the mesh only when no live run is left
and the mesh is one a run started. A mesh started with ``chaosmesh mesh up`` (no record, or
a record naming another daemon) is the user's and no run ever stops it. A run killed with
kill -9 stays in the record until the next run prunes it (its process is gone), so a mesh
whose starter died is stopped by the last run that used it after that — never orphaned,
never stopped under a live run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chaosmesh_ext._process import ProcessId
from chaosmesh_ext.errors import MeshError

from .paths import StatePaths
from .state import DaemonId
from .xds_files import atomic_write

__all__ = ["Membership", "Sharing", "TurnTimeout", "User"]

RUNS_LOCK = "runs.lock"
USERS_JSON = "users.json"
POLL_S = 0.05


class TurnTimeout(MeshError, TimeoutError):
    """Another run held the state directory for longer than we wait."""


class TurnCancelled(MeshError, RuntimeError):
    """Stopped waiting for our turn: the run was interrupted."""


@dataclass(frozen=True)
class User:
    """One run using the mesh: its process and run id."""

    process: ProcessId
    run_id: str
    since: str = ""

    @classmethod
    def me(cls, run_id: str) -> User:
        return cls(ProcessId.current(), run_id, datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        return {**self.process.to_json(), "run_id": self.run_id, "since": self.since}

    @classmethod
    def from_json(cls, data: Any) -> User | None:
        process = ProcessId.from_json(data)
        if process is None:
            return None
        return cls(process, str(data.get("run_id") or ""), str(data.get("since") or ""))

    def same(self, other: User) -> bool:
        return (self.process, self.run_id) == (other.process, other.run_id)

    def running(self) -> bool:
        # Another host's process cannot be checked from here: count it as running.
        return self.process.running() is not False

    def __str__(self) -> str:
        return f"run {self.run_id or '?'} (pid {self.process.pid})"


@dataclass(frozen=True)
class Membership:
    """What joining told a run: who else uses the mesh, and who stops it."""

    stop_when_unused: bool  # a run started this mesh: the last run to leave stops it
    others: tuple[User, ...] = ()  # live runs using it besides this one
    gone: tuple[User, ...] = ()  # recorded runs whose process is gone (pruned now)


class Sharing:
    """The runs of one state directory (see the module docstring)."""

    def __init__(self, paths: StatePaths) -> None:
        self.root = paths.root
        self.lock_path = paths.root / RUNS_LOCK
        self.users_path = paths.root / USERS_JSON

    @contextlib.contextmanager
    def turn(
        self,
        timeout: float,
        cancel: threading.Event | None = None,
        on_wait: Callable[[], None] = lambda: None,
    ) -> Iterator[None]:
        """Hold ``runs.lock`` for the block; ``on_wait`` is called once if another run has it.

        Raises ``TurnTimeout`` after ``timeout`` seconds, ``TurnCancelled`` once ``cancel``
        is set. The kernel drops the lock with a killed process.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as handle:
            deadline = time.monotonic() + timeout
            told = False
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                if not told:
                    on_wait()
                    told = True
                if cancel is not None and cancel.is_set():
                    raise TurnCancelled(f"stopped waiting for the mesh in {self.root}")
                if time.monotonic() > deadline:
                    raise TurnTimeout(
                        f"another run kept the mesh in {self.root} busy for more than "
                        f"{timeout:.0f}s (starting or stopping it)"
                    )
                time.sleep(POLL_S)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---- the record (call these during a turn) --------------------------------------------
    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.users_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _users(self, record: dict[str, Any]) -> list[User]:
        found = (User.from_json(u) for u in record.get("users") or [])
        return [u for u in found if u is not None]

    def _write(self, daemon: DaemonId, stop_when_unused: bool, users: list[User]) -> None:
        atomic_write(
            self.users_path,
            json.dumps(
                {
                    "daemon": {"pid": daemon.pid, "started": daemon.started},
                    "stop_when_unused": stop_when_unused,
                    "users": [u.to_json() for u in users],
                },
                indent=2,
            ),
        )

    def _for(self, record: dict[str, Any], daemon: DaemonId) -> bool:
        recorded = record.get("daemon") or {}
        return (recorded.get("pid"), recorded.get("started")) == (daemon.pid, daemon.started)

    def join(self, daemon: DaemonId, user: User, started: bool) -> Membership:
        """Count ``user`` in: as the run that started ``daemon``, or as one more run."""
        record = self.read()
        if started or not self._for(record, daemon):
            # A new mesh: started by this run (stopped by the last run to leave), or found
            # running without a record of ours (`mesh up`: the user's, never stopped by us).
            self._write(daemon, started, [user])
            return Membership(started)
        users = self._users(record)
        live = [u for u in users if u.running() and not u.same(user)]
        gone = [u for u in users if not u.running()]
        stop = bool(record.get("stop_when_unused"))
        self._write(daemon, stop, [*live, user])
        return Membership(stop, tuple(live), tuple(gone))

    def leave(self, daemon: DaemonId, user: User | None) -> Membership:
        """Count ``user`` out; the answer says who still uses the mesh and who stops it."""
        record = self.read()
        if not self._for(record, daemon):
            return Membership(False)
        users = self._users(record)
        live = [u for u in users if u.running() and (user is None or not u.same(user))]
        gone = [u for u in users if not u.running()]
        stop = bool(record.get("stop_when_unused"))
        self._write(daemon, stop, live)
        return Membership(stop, tuple(live), tuple(gone))

    def keep(self, daemon: DaemonId) -> None:
        """Leave this mesh running when the last run leaves (``--keep-mesh``)."""
        record = self.read()
        if self._for(record, daemon):
            self._write(daemon, False, self._users(record))

    def forget(self, daemon: DaemonId) -> None:
        """The mesh stopped: its record goes with it."""
        if self._for(self.read(), daemon):
            self.users_path.unlink(missing_ok=True)
