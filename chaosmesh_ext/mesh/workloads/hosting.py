"""The daemon's side of replica hosts: replicas of the built-in kinds share processes.

A Python process per replica costs about 12 MB of RSS; a mesh of 100 services with 3
replicas each would need 3.6 GB for its workloads alone. So :class:`ReplicaHosts` (the pod
controller's ``Launcher``) hands each echo, proxy, fortio or httpbin replica to a replica
host (``host``: up to :data:`REPLICAS_PER_HOST` replicas in one process; echo and proxy
replicas share lean hosts, fortio and httpbin ones hosts of their kind, ``fortio_replica``
and ``httpbin_replica``, whose imports cost 25-35 MB once per host) and starts a holder
process for it
(``holder``, about 10 kB): the pod's process. Whatever the pod lifecycle or a user does to
that pid is what happens to the replica alone — SIGTERM stops it, SIGKILL kills it, SIGSTOP
freezes it — and its exit code is the pod's. Each replica keeps its own port, identity,
capacity limit, sidecar and log file.

``command`` replicas, the user's own programs, run as processes of their own
(``launcher.launch``).

If a host dies (a bug, an OOM kill), every replica it served ends with it: their holders are
killed when next polled, so their Pods show Failed, as pods on a failed node would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from chaosmesh_ext._sidecar import OUTBOUND_ENV, OUTBOUND_FILE_ENV, SOURCE_ENV

from .. import spawn
from ..pods.runtime import ReplicaProcess
from .holder import dies_with_parent, holder_argv
from .launcher import check, launch
from .spec import PACKAGE_ROOT, WorkloadSpec

MODULE = "chaosmesh_ext.mesh.workloads"
# Kind -> the kind of host that serves it (its ``host`` command line's tail).
HOST_OF_KIND = {"echo": "", "proxy": "", "fortio": "fortio", "httpbin": "httpbin"}
HOSTED_KINDS = tuple(HOST_OF_KIND)
# Enough that hosts cost little per replica, few enough that one host's GIL and threads are
# not the bottleneck of a large mesh (two cores run two hosts' requests in parallel).
REPLICAS_PER_HOST = 64
HOST_STOP_TIMEOUT = 5.0
# How long a replica's end waits for its host to say it closed the replica's port.
RELEASE_TIMEOUT = 2.0
# glibc's malloc arenas in a host (its MALLOC_ARENA_MAX). By default glibc gives threads up
# to 8 arenas per core, and each arena a thread has used keeps its pages (at least ~132 kB)
# and those freed in it. A host starts a thread for each request in flight
# (``_http.Workers``), so its bursts spread threads over every arena there can be, one more
# now and then, and its RSS creeps until all are in use. Under the GIL the threads hardly
# ever allocate at the same time: more arenas buy no speed. A value in the daemon's own
# environment is kept.
HOST_MALLOC_ARENAS = "2"


def _replica_args(spec: WorkloadSpec, argv: list[str]) -> list[str]:
    """The replica's command line as its host parses it (``__main__.parse_args``): the
    workload module's arguments; a fortio replica's own process runs the load layer's server
    with a port alone, so its identity is added here."""
    if spec.kind != "fortio":
        return argv[argv.index(MODULE) + 1 :]
    identity = ["--deployment", spec.deployment, "--namespace", spec.namespace, "--pod", spec.pod]
    return ["fortio", "--port", str(spec.port), *identity]


class ReplicaHost:
    """One host process and the replicas it was given."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path, kind: str = "") -> None:
        self.process = process
        self.log_path = log_path
        self.kind = kind  # "" for echo and proxy replicas, else "fortio" or "httpbin"
        self.replicas: list[HostedReplica] = []
        self._lock = threading.Lock()
        # Holders whose replica the host has closed (it says so on its stdout).
        self._released: set[int] = set()
        self._changed = threading.Condition()
        threading.Thread(target=self._read_releases, name="replica-host", daemon=True).start()

    def _read_releases(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                if line.strip().isdigit():
                    self._released.add(int(line))
                self._changed.notify_all()
        with self._changed:  # the host is gone: nothing is left to wait for
            self._changed.notify_all()

    def released(self, holder: int, timeout: float = 0.0) -> bool:
        """Whether the host closed the replica of ``holder`` (waiting up to ``timeout``)."""
        with self._changed:
            return (
                self._changed.wait_for(
                    lambda: holder in self._released or not self.alive(), timeout
                )
                and holder in self._released
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def load(self) -> int:
        """How many of its replicas still run."""
        self.replicas = [r for r in self.replicas if r.holder.poll() is None]
        return len(self.replicas)

    def order(self, order: dict[str, object]) -> None:
        """Send one replica's order (``BrokenPipeError`` when the host is gone)."""
        line = (json.dumps(order) + "\n").encode()
        with self._lock:
            assert self.process.stdin is not None
            self.process.stdin.write(line)
            self.process.stdin.flush()

    def stop(self) -> None:
        """Close its orders (it exits), SIGKILL after :data:`HOST_STOP_TIMEOUT`."""
        with self._lock:
            if self.process.stdin is not None:
                try:
                    self.process.stdin.close()
                except OSError:
                    pass
        try:
            self.process.wait(timeout=HOST_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=HOST_STOP_TIMEOUT)


class HostedReplica:
    """A replica served by a host, driven through its holder (the pod's process)."""

    def __init__(self, holder: subprocess.Popen[bytes], host: ReplicaHost) -> None:
        self.holder = holder
        self.host = host
        self._ended_at: float | None = None  # when its holder's end was first seen

    @property
    def pid(self) -> int:
        return self.holder.pid

    @property
    def returncode(self) -> int | None:
        return self.holder.returncode

    def poll(self) -> int | None:
        """The holder's exit code once the host has closed the replica too (its port no
        longer accepts, its log is complete), as a process's end is seen after its exit."""
        code = self.holder.poll()
        if code is None and not self.host.alive():
            # Its host is gone, so is the replica: its pod ends (killed, as by an OOM kill).
            self.holder.kill()
            code = self.holder.wait(timeout=HOST_STOP_TIMEOUT)
        if code is None or self._closed():
            return code
        return None

    def _closed(self, timeout: float = 0.0) -> bool:
        if self._ended_at is None:
            self._ended_at = time.monotonic()
        if not self.host.alive() or self.host.released(self.holder.pid, timeout):
            return True
        # A host that never says so (a bug) must not keep the pod from ending.
        return time.monotonic() - self._ended_at > RELEASE_TIMEOUT

    def terminate(self) -> None:
        self.holder.terminate()

    def kill(self) -> None:
        self.holder.kill()

    def wait(self, timeout: float | None = None) -> int:
        """The holder's exit code once the host has closed the replica too."""
        deadline = None if timeout is None else time.monotonic() + timeout
        code = self.holder.wait(timeout=timeout)
        if deadline is None or deadline - time.monotonic() >= RELEASE_TIMEOUT:
            self._closed(RELEASE_TIMEOUT)
        elif not self._closed(max(0.0, deadline - time.monotonic())):
            raise subprocess.TimeoutExpired(str(self.holder.args), timeout or 0.0)
        return code


class ReplicaHosts:
    """Starts replicas: those of the built-in kinds in shared hosts, ``command`` ones as
    their own process."""

    def __init__(self, log_dir: Path, bin_dir: Path, per_host: int = REPLICAS_PER_HOST) -> None:
        self.log_dir = log_dir
        self.bin_dir = bin_dir
        self.per_host = per_host
        self.hosts: list[ReplicaHost] = []
        self._holder: list[str] | None = None
        self._lock = threading.Lock()

    def launch(self, spec: WorkloadSpec) -> ReplicaProcess:
        """Start ``spec``'s replica; raises as ``launcher.check`` on a bad spec, nothing
        started."""
        if spec.kind not in HOSTED_KINDS:
            return launch(spec)
        argv, env = check(spec)
        args = _replica_args(spec, argv)
        sidecar = {k: env[k] for k in (OUTBOUND_ENV, SOURCE_ENV, OUTBOUND_FILE_ENV) if k in env}
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            host = self._host_with_room(HOST_OF_KIND[spec.kind])
            argv = self._holder_argv()
            start = spawn.popen
            if dies_with_parent(argv):
                argv, start = [*argv, str(os.getpid())], spawn.popen_from_spawner
            holder = start(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C at the daemon's terminal is not for it
                close_fds=True,
            )
            order = {"args": args, "env": sidecar, "log": str(spec.log_path), "holder": holder.pid}
            try:
                host.order(order)
            except OSError:
                holder.kill()
                holder.wait(timeout=HOST_STOP_TIMEOUT)
                raise
            replica = HostedReplica(holder, host)
            host.replicas.append(replica)
        return replica

    def _holder_argv(self) -> list[str]:
        if self._holder is None:
            self._holder = holder_argv(self.bin_dir)
        return self._holder

    def _host_with_room(self, kind: str) -> ReplicaHost:
        self.hosts = [h for h in self.hosts if h.alive() or h.load()]
        for host in self.hosts:
            if host.kind != kind:
                continue
            # Count the ended replicas out only when the host looks full (polling them all
            # for every start would cost a mesh of hundreds quadratic time).
            if host.alive() and (len(host.replicas) < self.per_host or host.load() < self.per_host):
                return host
        host = self._start_host(len(self.hosts), kind)
        self.hosts.append(host)
        return host

    def _start_host(self, index: int, kind: str) -> ReplicaHost:
        log_path = self.log_dir / f"replica-host-{os.getpid()}-{index}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        hidden = (OUTBOUND_ENV, SOURCE_ENV, OUTBOUND_FILE_ENV)  # each replica has its own
        env = {k: v for k, v in os.environ.items() if k not in hidden}
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("MALLOC_ARENA_MAX", HOST_MALLOC_ARENAS)
        if kind:
            # The load engine and httpbin need site-packages: the normal start-up.
            argv = [sys.executable, "-m", MODULE, "host", kind]
        else:
            # Lean like the replicas it serves (spec.LEAN_KINDS): no site, the package by path.
            argv = [sys.executable, "-S", "-m", MODULE, "host"]
            env["PYTHONPATH"] = PACKAGE_ROOT
        with open(log_path, "ab") as log:
            process = spawn.popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,  # the holders whose replica it closed
                stderr=log,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        return ReplicaHost(process, log_path, kind)

    def processes(self) -> list[ReplicaHost]:
        """The hosts running now (``mesh.json`` lists them, so ``mesh down`` finds them)."""
        with self._lock:
            return [h for h in self.hosts if h.alive()]

    def log_paths(self) -> list[Path]:
        return [h.log_path for h in self.processes()]

    def stop(self) -> None:
        """Stop every host (their replicas' holders are the Applier's to stop first)."""
        with self._lock:
            hosts, self.hosts = self.hosts, []
        for host in hosts:
            host.stop()
