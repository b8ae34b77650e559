"""Start a workload replica as its own process, and wait until it accepts connections.

Each replica runs in a new session (so a Ctrl-C aimed at the daemon's terminal does not reach
it and ``mesh down`` can stop it by pid) with stdout and stderr appended to its log file.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import time

from chaosmesh_ext._sidecar import OUTBOUND_ENV, SOURCE_ENV

from .. import spawn
from .kinds import COMMAND_ANNOTATION
from .spec import FORTIO_MODULE, WorkloadSpec, command_line, split_command


class WorkloadUnavailable(RuntimeError):
    """A workload kind that cannot run in this installation."""


class WorkloadNotReady(TimeoutError):
    """A workload did not accept connections in time (or exited first)."""


def _fortio_available() -> bool:
    try:
        return importlib.util.find_spec(FORTIO_MODULE) is not None
    except ModuleNotFoundError:  # the parent package itself is missing
        return False


def check(spec: WorkloadSpec) -> tuple[list[str], dict[str, str]]:
    """Everything :func:`launch` refuses, without starting anything: argv and full env.

    ``ValueError`` names the Deployment and the field for a bad manifest;
    :class:`WorkloadUnavailable` says what this installation lacks.
    """
    argv, extra_env = command_line(spec)
    if spec.kind == "fortio" and not _fortio_available():
        raise WorkloadUnavailable(
            f"Deployment {spec.namespace}/{spec.deployment}: the fortio workload needs "
            f"{FORTIO_MODULE}, which this installation does not have"
        )
    # The sidecar variables come from the spec alone, never from whoever launches it.
    inherited = {k: v for k, v in os.environ.items() if k not in (OUTBOUND_ENV, SOURCE_ENV)}
    env = {**inherited, **extra_env}
    if spec.kind == "command":
        # A typo in the program name is a manifest error: refuse it now, not in a restart loop.
        where = f"Deployment {spec.namespace}/{spec.deployment}: annotation {COMMAND_ANNOTATION}"
        program = split_command(spec.annotations[COMMAND_ANNOTATION], where)[0]
        if shutil.which(program, path=env.get("PATH")) is None:
            raise ValueError(f"{where}: program {program!r} not found or not executable")
    return argv, env


def launch(spec: WorkloadSpec) -> subprocess.Popen[bytes]:
    """Start ``spec``'s process; on a bad spec raises as :func:`check`, nothing started."""
    argv, env = check(spec)
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log_path, "ab") as log:
        # Dies with the daemon (spawn.popen): a daemon killed outright leaves no replica.
        return spawn.popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )


def wait_ready(
    host: str,
    port: int,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Return once ``host:port`` accepts a TCP connection.

    Raises :class:`WorkloadNotReady` after ``timeout`` seconds, or as soon as ``process``
    (when given) has exited, since then the port will never open.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        if process is not None and process.poll() is not None:
            raise WorkloadNotReady(
                f"workload on {host}:{port} exited with code {process.returncode} before "
                "accepting connections (see its log)"
            )
        remaining = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(0.05, min(1.0, remaining))):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise WorkloadNotReady(f"workload on {host}:{port} not accepting after {timeout}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
