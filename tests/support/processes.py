"""The process table and a process's output, for tests that signal runs at named moments.

- ``pids_mentioning(token)``: live processes whose command line contains ``token`` (a test's
  own temporary directory, so only what the test started is ever found or killed);
- ``wait_until(predicate, timeout)``: poll a condition with a deadline (never a bare sleep);
- ``Watched``: a process started with its output read line by line in a thread, so a test
  can wait for the log line that marks a moment (``wait_for``) and then send a signal.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

POLL_S = 0.02


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def pids_mentioning(token: str | Path) -> list[int]:
    """Live (not zombie) processes whose command line contains ``token``."""
    needle = str(token).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and _state(int(entry.name)) not in (None, "Z"):
            found.append(int(entry.name))
    return found


def kill_all_mentioning(token: str | Path) -> list[int]:
    """SIGKILL what a failed test left (only processes naming its own directory)."""
    pids = pids_mentioning(token)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout:g}s")
        time.sleep(POLL_S)


@contextlib.contextmanager
def _ctrl_c_as_on_a_terminal() -> Iterator[None]:
    """Start a child with SIGINT not ignored, as a user's Ctrl-C finds a command.

    A suite started in the background by a shell without job control (``make test &`` in a
    script) runs with SIGINT ignored, every child inherits that, and Python then installs no
    KeyboardInterrupt handler: a test's Ctrl-C would go unanswered. Ignoring survives exec, a
    handler does not: with Python's own handler in place while the child starts, the child
    starts with SIGINT at its default.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Watched:
    """A process whose combined output is collected line by line while it runs."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
    ) -> None:
        with _ctrl_c_as_on_a_terminal():
            self.proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a signal for it never reaches pytest
            )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 120.0) -> str:
        """The first output line matching ``pattern`` (a regex), waiting up to ``timeout``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"no line matching {pattern!r} within {timeout:g}s; output:\n"
                        + "\n".join(self.lines[-60:])
                    )
                self._changed.wait(min(left, 0.2))

    def signal(self, signum: int) -> None:
        try:
            os.kill(self.proc.pid, signum)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float = 180.0) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def stop(self) -> None:
        """Kill it if it still runs (a failed test)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._reader.join(timeout=10)
