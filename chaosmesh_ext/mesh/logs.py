"""The state directory's logs, kept under one total size (the log cap, 64 MiB by default).

Every log the embedded mesh writes is rotated by size, keeping one older generation
(``NAME.1``), so a mesh that runs for hours at 1000 requests a second uses a fixed amount of
disk. The cap is shared out (``LogBudget``): Envoy's JSON access log (``access.jsonl``, which
the metrics exporter follows) gets 3/8, its Istio-format text twin (``access.log``) 1/4, and
every other log 3/8 between them, in equal parts: Envoy's own log and its start-up output, the
daemon's log, Prometheus' log and one log per workload replica. A file is rotated once it
passes half its part, so it and its ``.1`` stay within the part.

How each writer is made to let go of a full file:

- Envoy's files (both access logs and ``envoy.log``): renamed to ``.1``, then Envoy's admin
  ``/reopen_logs`` makes it open a new file at the path (Envoy has no rotation of its own and
  writes to the old file until it reopens). Whoever follows ``access.jsonl`` reads the old file
  to its end before the new one; a rename waits until the follower has switched to the newest
  file (``hold``), so no generation is ever renamed away unread.
- The daemon's own log (its stdout and stderr): renamed, and a new file put on both.
- Logs written by child processes that cannot be told to reopen (workload replicas, a
  ``command`` workload's own program, Prometheus, Envoy's start-up output): copied to ``.1``
  and truncated in place (copy-truncate); they are opened for appending, so the next line goes
  to the start of the emptied file. A line written between the copy and the truncation is
  lost: these logs hold a few lines per start and stop (more only when a ``command``
  program logs each request).

Logs of replicas that no longer run (a deleted pod's) are removed oldest first when the logs'
part is full. Prometheus' database (``prometheus/data``, only with ``--prometheus``) is not a
log and not counted: its 2 h retention bounds it.

The logs may pass the cap by what is written between two checks (every ``CHECK_INTERVAL``
s), and are back within it at the next check: an older generation that would keep them over
is deleted.
Settings: ``mesh up --log-cap``, ``CHAOSMESH_LOG_CAP``, or the experiment configuration key
``mesh_log_cap`` (a number of bytes, or ``64MB``, ``512KiB``, ``1G`` ...).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosmesh_ext.errors import MeshError

from .paths import ACCESS_JSONL, ACCESS_LOG, DAEMON_LOG, ENVOY_LOG, PROMETHEUS_LOG, StatePaths

log = logging.getLogger(__name__)


class LogCapError(MeshError, ValueError):
    """A log cap setting that is not a size, or too small; the message names the setting."""


LOG_CAP_ENV = "CHAOSMESH_LOG_CAP"
CONFIG_KEY = "mesh_log_cap"
DEFAULT_LOG_CAP = 64 * 1024 * 1024
MIN_LOG_CAP = 1024 * 1024
CHECK_INTERVAL = 0.5

ROTATED_SUFFIX = ".1"

# Envoy writes these and reopens them on /reopen_logs.
ENVOY_FILES = (ACCESS_JSONL, ACCESS_LOG, ENVOY_LOG)
# Parts of the cap, in eighths: the two access logs carry the traffic; the rest share 3/8.
_JSONL_EIGHTHS, _TEXT_EIGHTHS = 3, 2

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def parse_size(value: Any, setting: str = "log cap") -> int:
    """``64MB``, ``64MiB``, ``512k``, ``1G`` or a number of bytes -> bytes.

    Raises ``LogCapError`` naming ``setting`` for anything else, or a size under 1 MiB (too
    small to hold one generation of each log).
    """
    if isinstance(value, bool):
        raise LogCapError(f"{setting}: expected a size such as 64MB, got {value!r}")
    if isinstance(value, int | float):
        size = int(value)
    else:
        found = _SIZE.match(str(value).lower())
        if not found or found.group(2) not in _UNITS:
            raise LogCapError(
                f"{setting}: expected a size such as 64MB, 512MiB or a number of bytes, "
                f"got {value!r}"
            )
        size = int(float(found.group(1)) * _UNITS[found.group(2)])
    if size < MIN_LOG_CAP:
        raise LogCapError(f"{setting}: {value!r} is under the minimum of 1MiB")
    return size


def log_cap_of(
    configuration: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> int:
    """The log cap: configuration ``mesh_log_cap``, else ``CHAOSMESH_LOG_CAP``, else 64 MiB."""
    raw = (configuration or {}).get(CONFIG_KEY)
    if raw not in (None, ""):
        return parse_size(raw, f"configuration {CONFIG_KEY}")
    env = os.environ if environ is None else environ
    if env.get(LOG_CAP_ENV):
        return parse_size(env[LOG_CAP_ENV], LOG_CAP_ENV)
    return DEFAULT_LOG_CAP


def format_size(size: float) -> str:
    """Bytes as people read them: ``64.0 MiB``, ``512 KiB``, ``900 B``."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{int(size)} B"


# --------------------------------------------------------------------------------------------
# The budget (pure)


@dataclass(frozen=True)
class LogBudget:
    """How the cap is shared out: the size at which each kind of log is rotated."""

    cap: int

    @property
    def access_jsonl_limit(self) -> int:
        return self.cap * _JSONL_EIGHTHS // 16  # the file and its .1 within 3/8 of the cap

    @property
    def access_log_limit(self) -> int:
        return self.cap * _TEXT_EIGHTHS // 16

    @property
    def others_part(self) -> int:
        return self.cap - 2 * (self.access_jsonl_limit + self.access_log_limit)

    def other_limit(self, files: int) -> int:
        """Rotation size of each of ``files`` other logs (each with its .1 in equal parts)."""
        return max(1, self.others_part // (2 * max(1, files)))

    def limit_of(self, name: str, other_files: int) -> int:
        if name == ACCESS_JSONL:
            return self.access_jsonl_limit
        if name == ACCESS_LOG:
            return self.access_log_limit
        return self.other_limit(other_files)


def stale_to_remove(stale: Iterable[tuple[Path, int, float]], used: int, part: int) -> list[Path]:
    """Which logs of replicas that no longer run to delete, oldest first, until ``used`` (the
    bytes of every log in the logs' part) fits in ``part``. ``stale``: (path, size, mtime)."""
    out = []
    for path, size, _ in sorted(stale, key=lambda item: item[2]):
        if used <= part:
            break
        out.append(path)
        used -= size
    return out


# --------------------------------------------------------------------------------------------
# Rotating one file (I/O)


def log_size(path: Path) -> int:
    """The size of a log file, 0 when there is none."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def rotated(path: Path) -> Path:
    return path.with_name(path.name + ROTATED_SUFFIX)


def rotate_by_rename(path: Path) -> bool:
    """``path`` -> ``path.1`` (replacing the older one); the writer must reopen ``path``."""
    try:
        os.replace(path, rotated(path))
    except FileNotFoundError:
        return False
    return True


def copy_truncate(path: Path, chunk: int = 1 << 20) -> bool:
    """Copy ``path`` to ``path.1`` and empty it in place, for a writer that appends (O_APPEND)
    and cannot be told to reopen. Lines written between the last copy and the truncation are
    lost (the copy catches up until the file stops growing, a few times at most)."""
    target = rotated(path)
    try:
        with open(path, "rb") as source, open(target, "wb") as copy:
            for _ in range(3):
                shutil.copyfileobj(source, copy, chunk)
                if os.fstat(source.fileno()).st_size <= source.tell():
                    break
            os.truncate(path, 0)
    except FileNotFoundError:
        return False
    return True


def rotate_own_output(path: Path) -> bool:
    """Rotate this process's log when its stdout and stderr are ``path`` (the daemon's log).

    Renamed to ``path.1`` and a new file put on both descriptors; nothing written is lost.
    Does nothing (False) when stdout is something else, e.g. a terminal (``--foreground``).
    """
    try:
        ours = os.fstat(1)
        on_disk = path.stat()
    except OSError:
        return False
    if (ours.st_dev, ours.st_ino) != (on_disk.st_dev, on_disk.st_ino):
        return False
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.replace(path, rotated(path))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)
    return True


# --------------------------------------------------------------------------------------------
# The keeper: a thread checking every log of one state directory


@dataclass
class LogUsage:
    cap: int
    used: int
    rotations: int

    def to_json(self) -> dict[str, int]:
        return {"cap_bytes": self.cap, "used_bytes": self.used, "rotations": self.rotations}


class LogKeeper:
    """Keeps the logs of state directory ``root`` within ``cap`` bytes, in its own thread.

    ``reopen``: makes Envoy reopen its files (admin ``/reopen_logs``); raises while Envoy
    is down, and a restarted Envoy opens new files by itself. ``hold``: file name -> "may not
    be renamed yet" (the metrics exporter is still reading an older generation of it).
    ``live_logs``: the workload logs of replicas that run now (others may be removed).
    """

    def __init__(
        self,
        root: Path,
        cap: int = DEFAULT_LOG_CAP,
        reopen: Callable[[], None] | None = None,
        hold: Mapping[str, Callable[[], bool]] | None = None,
        live_logs: Callable[[], Iterable[Path]] | None = None,
        interval: float = CHECK_INTERVAL,
    ) -> None:
        self.root = Path(root)
        self.paths = StatePaths(self.root)
        self.budget = LogBudget(cap)
        self.reopen = reopen
        self.hold = dict(hold or {})
        self.live_logs = live_logs or (lambda: ())
        self.interval = interval
        self.rotations = 0
        self.rotated_by_name: Counter[str] = Counter()  # file name -> rotations (or removals)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- what there is ---------------------------------------------------------------------

    def _others(self) -> tuple[list[Path], list[Path]]:
        """(live logs of the others' part, stale workload logs)."""
        paths = self.paths
        prometheus_log = paths.prometheus / PROMETHEUS_LOG
        live = [paths.envoy_log, paths.envoy_out, paths.daemon_log, prometheus_log]
        live = [p for p in live if p.exists()]
        running = {Path(p).resolve() for p in self.live_logs()}
        stale: list[Path] = []
        logs_dir = paths.workload_logs
        if logs_dir.is_dir():
            for path in sorted(logs_dir.glob("*.log")):
                (live if path.resolve() in running else stale).append(path)
        return live, stale

    def files(self) -> list[Path]:
        """Every log and rotated generation under the cap."""
        out = [self.paths.access_jsonl, self.paths.access_log]
        live, stale = self._others()
        out += live + stale
        return [p for base in out for p in (base, rotated(base)) if p.exists()]

    def usage(self) -> LogUsage:
        return LogUsage(self.budget.cap, sum(log_size(p) for p in self.files()), self.rotations)

    # -- one round -------------------------------------------------------------------------

    def check(self) -> int:
        """Rotate what is over its limit and drop stale logs; returns how many files moved."""
        with self._lock:
            return self._check()

    def _check(self) -> int:
        moved = 0
        live, stale = self._others()
        reopen = False
        for name in ENVOY_FILES:
            path = self.root / name
            size = log_size(path)
            limit = self.budget.limit_of(name, len(live))
            if size <= limit:
                moved += _drop_older_past(path, 2 * limit)
                continue
            held = self.hold.get(name)
            # Bounded disk wins over a follower stuck for a whole generation: past twice the
            # limit the file is rotated anyway.
            if held is not None and held() and size <= 2 * limit:
                continue
            if rotate_by_rename(path):
                self.rotated_by_name[name] += 1
                moved += 1
                reopen = True
        if reopen or self._envoy_files_missing():
            self._reopen()
        limit = self.budget.other_limit(len(live))
        for path in live:
            if log_size(path) <= limit:
                moved += _drop_older_past(path, 2 * limit)
                continue
            ours = path.name == DAEMON_LOG and rotate_own_output(path)
            if ours or copy_truncate(path):
                self.rotated_by_name[path.name] += 1
                moved += 1
        part = self.budget.others_part
        used = sum(log_size(p) + log_size(rotated(p)) for p in live + stale)
        sizes = [(p, log_size(p) + log_size(rotated(p)), _mtime(p)) for p in stale]
        for path in stale_to_remove(sizes, used, part):
            for victim in (path, rotated(path)):
                with contextlib.suppress(FileNotFoundError):
                    victim.unlink()
            self.rotated_by_name[path.name] += 1
            moved += 1
        self.rotations += moved
        return moved

    def _envoy_files_missing(self) -> bool:
        """A file renamed whose reopen did not happen yet (Envoy was busy or restarting)."""
        return any(
            not (self.root / name).exists() and rotated(self.root / name).exists()
            for name in ENVOY_FILES
        )

    def _reopen(self) -> None:
        if self.reopen is None:
            return
        try:
            self.reopen()
        except Exception as exc:  # Envoy restarting: it opens new files when it starts
            log.debug("reopening Envoy's logs failed (retried next round): %s", exc)

    # -- the thread ------------------------------------------------------------------------

    def start(self) -> LogKeeper:
        self._thread = threading.Thread(target=self._run, name="log-keeper", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.check()
            except Exception:  # a full disk or a vanished file must not end the keeping
                log.exception("keeping the logs of %s within their cap failed", self.root)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def _drop_older_past(path: Path, share: int) -> int:
    """Delete ``path.1`` when the file and it exceed ``share``: a file written faster than
    the keeper checks was rotated well past its limit, and that generation alone would keep
    the logs over the cap. (A reader that has it open, the metrics exporter, still reads it
    to its end: only the name goes.) Returns 1 when it deleted it."""
    older = rotated(path)
    if log_size(path) + log_size(older) <= share:
        return 0
    with contextlib.suppress(FileNotFoundError):
        older.unlink()
        return 1
    return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
