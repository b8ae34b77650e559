"""What the pod lifecycle needs of one running replica, whatever runs it.

The pod controller never sends signals itself: it asks a replica to ``terminate`` (what
SIGTERM means to a container: stop now, in-flight requests are dropped unless the program
drains them), after the grace period to ``kill`` (SIGKILL: gone at once), and ``poll``s for
its end. A replica is ready when its own port accepts connections (the controller checks
that; it is the same for every kind of runtime).

Today every replica is a process of its own and ``subprocess.Popen`` is this interface as it
stands. Replicas hosted together in one process (several echo servers behind one
interpreter, each on its own port) implement the same methods per replica — ``terminate``
closes that replica's listener and its connections, ``kill`` drops them at once, ``poll``
reports that replica's end — so one replica can be stopped or killed without touching its
neighbours, and ``launch`` hands the spec to the host instead of starting a process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..workloads.spec import WorkloadSpec


class ReplicaProcess(Protocol):
    """One running replica, as the pod controller drives it."""

    @property
    def pid(self) -> int:
        """The OS process serving the replica (replicas hosted together share it)."""
        ...

    def poll(self) -> int | None:
        """The replica's exit code once it has ended, else None."""
        ...

    def terminate(self) -> None:
        """Ask the replica to stop (SIGTERM's meaning)."""
        ...

    def kill(self) -> None:
        """Stop the replica at once (SIGKILL's meaning)."""
        ...

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end; ``subprocess.TimeoutExpired`` after ``timeout`` s."""
        ...


# Starts the replica a spec describes (``workloads.launch`` for a process of its own).
Launcher = Callable[[WorkloadSpec], ReplicaProcess]
