"""The daemon's running replicas, and the wait until all of them serve (or one has crashed).

A replica counts as ready when its loopback port accepts a TCP connection. All replicas are
watched together, so a replica that crashes fails ``mesh up`` at once with its log, instead
of after the readiness timeout of whichever replica happened to be waited for first.

Two kinds of crash are seen: the replica's process exits (echo, httpbin, proxy, fortio), or,
for the ``command`` kind, whose supervisor restarts the user's program like a pod's
container, the supervisor logs that the program exited — a program that exits before it ever
served is in a crash loop (Kubernetes' CrashLoopBackOff), not slow to start.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .pods.model import Deletion
from .pods.runtime import ReplicaProcess

# What the command supervisor (workloads/command.py) logs when it starts the user's program
# and when the program exits.
_PROGRAM_EXITED = re.compile(r"exited with code (-?\d+)")
_PROGRAM_STARTED = re.compile(r": started pid \d+")
_LOG_TAIL = 800
_SCAN_LIMIT = 1 << 20  # bytes read per scan: a chatty program must not stall the monitor


@dataclass
class Replica:
    """One replica of a Deployment (a Pod), as the daemon started it, through its life:
    starting (its port does not accept yet), serving (ready), being deleted (``deletion``),
    ended (``process.poll()`` is not None)."""

    pod: str
    namespace: str
    deployment: str
    kind: str
    labels: dict[str, str]
    port: int
    process: ReplicaProcess
    started: str | None
    log_path: Path | None = None
    # Size of the (appended) log when this replica started: older lines are not its own.
    log_offset: int = field(default=0)
    # command kind: how often the supervisor restarted the program, and whether it runs now
    # (kept up to date by scan_log(), which reads only what was appended since).
    restarts: int = field(default=0)
    program_running: bool = field(default=True)
    # The pod's life, in wall-clock seconds: created (its creationTimestamp), serving since
    # its port first accepted (Ready from then on), ended (when its end was seen).
    created_at: float = field(default_factory=time.time)
    serving_since: float | None = field(default=None)
    ended_at: float | None = field(default=None)
    deletion: Deletion | None = field(default=None)
    _scanned: int = field(default=-1, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return self.process.poll()

    @property
    def ready(self) -> bool:
        """Running and serving (its port accepted), and for the command kind its program is
        not waiting to be restarted."""
        return self.alive and self.program_running and self.serving_since is not None

    @property
    def in_endpoints(self) -> bool:
        """Whether Envoy balances load to it: ready and not being deleted (as Istio leaves
        out a terminating pod's endpoint)."""
        return self.ready and self.deletion is None

    def scan_log(self) -> None:
        """Follow the command supervisor's restarts (as a pod's ``restartCount``)."""
        if self.kind != "command" or self.log_path is None:
            return
        start = self.log_offset if self._scanned < 0 else self._scanned
        try:
            with open(self.log_path, "rb") as handle:
                if os.fstat(handle.fileno()).st_size < start:
                    # Emptied by the log keeper (copy-truncate): all there is is new.
                    start = self.log_offset = 0
                handle.seek(start)
                chunk = handle.read(_SCAN_LIMIT)
        except OSError:
            return
        complete = chunk.rfind(b"\n") + 1  # a half-written line is read next time
        self._scanned = start + complete
        for line in chunk[:complete].decode(errors="replace").splitlines():
            if _PROGRAM_EXITED.search(line):
                self.restarts += 1
                self.program_running = False
            elif _PROGRAM_STARTED.search(line):
                self.program_running = True

    def log_since_start(self) -> str:
        if self.log_path is None:
            return ""
        try:
            with open(self.log_path, "rb") as handle:
                if os.fstat(handle.fileno()).st_size >= self.log_offset:
                    handle.seek(self.log_offset)  # else emptied by the log keeper: read it all
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def crash(self) -> str | None:
        """Why this replica cannot become ready, or None while it may still."""
        code = self.process.poll()
        if code is not None:
            return f"exited with code {code} before accepting connections"
        if self.kind == "command":
            found = _PROGRAM_EXITED.search(self.log_since_start())
            if found:
                return (
                    f"its program exited with code {found.group(1)} before accepting "
                    "connections (a crash loop)"
                )
        return None

    def describe_failure(self, why: str) -> str:
        tail = self.log_since_start()[-_LOG_TAIL:].rstrip()
        log = f" (log {self.log_path})" if self.log_path else ""
        text = (
            f"Deployment {self.namespace}/{self.deployment}: pod {self.pod} ({self.kind}) "
            f"did not start on 127.0.0.1:{self.port}: {why}{log}"
        )
        return f"{text}\n{tail}" if tail else text


def accepts(port: int) -> bool:
    """Whether a replica's loopback port accepts a connection now (its readiness)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.25):
            return True
    except OSError:
        return False


class ReplicaNotReady(RuntimeError):
    """A replica crashed or did not accept connections in time; the message says which."""


def wait_all_ready(
    replicas: list[Replica], timeout: float, cancel: threading.Event | None = None
) -> None:
    """Return once every replica's port accepts (each is then serving); raise as soon as any
    replica crashed, or when ``cancel`` is set (the daemon was told to stop while it was
    starting)."""
    deadline = time.monotonic() + timeout
    pending = list(replicas)
    delay = 0.005
    while pending:
        if cancel is not None and cancel.is_set():
            raise ReplicaNotReady("the mesh is stopping: gave up waiting for its workloads")
        for replica in list(pending):
            why = replica.crash()
            if why is not None:
                raise ReplicaNotReady(replica.describe_failure(why))
            if accepts(replica.port):
                replica.serving_since = replica.serving_since or time.time()
                pending.remove(replica)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise ReplicaNotReady(
                pending[0].describe_failure(f"not accepting connections after {timeout:g}s")
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
