"""Processes as the kernel knows them: a pid *and* its start time, so a recycled pid is
never mistaken for the process that was recorded.

Shared by the embedded mesh (the pids its ``mesh.json`` records, its users) and the change
ledger (which run — which process — made a change, and whether it still runs). Linux reads
``/proc``; elsewhere only ``kill(pid, 0)`` answers and start times are unknown.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["ProcessId", "alive", "start_time"]


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/pid/stat), None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return text.rsplit(")", 1)[1].split()[19]


def alive(pid: int, started: str | None = None) -> bool:
    """Whether ``pid`` runs, and is the same process as recorded when ``started`` is given."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return False
        # A zombie still "exists" for kill(0); treat it as gone.
        if fields[0] == "Z":
            return False
        if started is not None and fields[19] != started:
            return False
    return True


class ProcessId(NamedTuple):
    """One process on one machine: pid, kernel start time and host name."""

    pid: int
    started: str | None
    host: str

    @classmethod
    def current(cls) -> ProcessId:
        pid = os.getpid()
        return cls(pid, start_time(pid), socket.gethostname())

    @classmethod
    def from_json(cls, data: Any) -> ProcessId | None:
        if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
            return None
        started = data.get("started")
        return cls(
            data["pid"], str(started) if started is not None else None, str(data.get("host") or "")
        )

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "started": self.started, "host": self.host}

    def running(self) -> bool | None:
        """True/False on this machine; None when it ran on another host (cannot tell)."""
        if self.host and self.host != socket.gethostname():
            return None
        return alive(self.pid, self.started)
