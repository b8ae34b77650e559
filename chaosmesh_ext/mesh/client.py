"""Drive an embedded mesh from Python: ``MeshClient(state_dir)``, with typed results.

The one way in for ``chaosmesh mesh up/down/status/url`` (which keeps only flags and
printing) and for the experiments' target (``mesh.target``, the safety-net control,
``chaosmesh run``)::

    client = MeshClient(".chaosmesh")
    result = client.up(client.load(["canary.yaml"], namespace="istio-test"))
    result.started          # True: this call started the daemon; False: applied to a running one
    result.daemon           # DaemonId(pid, started): release exactly this daemon later
    client.down(only=result.daemon)

- ``load(files, namespace)`` reads and classifies manifests (``ManifestsRefused``: nothing
  changed);
- ``up(manifests, ...)`` hands them to the mesh running in the state directory, or checks them
  (nothing starts on bad input), stops what a dead mesh left behind, starts the daemon
  (``python -m chaosmesh_ext.mesh.daemon``: it outlives this call, in its own session) and
  waits until its ``mesh.json`` says ``ready`` — bounded by ``timeout``; a daemon that does
  not serve in time is stopped, with whatever it had started;
- ``apply(manifests)`` hands them to the running mesh only (all or nothing, daemon-side);
- ``down(only=None)`` stops the mesh by recorded pid and start time (with ``only``, only
  while ``mesh.json`` still names that daemon);
- ``status()``, ``running()``, ``current()`` read the daemon and ``mesh.json``.

Every call to the daemon goes to its API server with the bearer token and CA from the
kubeconfig it wrote, never through a proxy from the environment.

Where later features plug in: the daemon is started in ``_spawn`` only (process group and
parent-death settings belong there), an ``UpResult`` carries what a run needs to export
``KUBECONFIG`` for its whole duration, and ``DaemonId`` is the identity a shared-ownership
record (several runs on one mesh) would name.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chaosmesh_ext.errors import MeshError

from . import kubeconfig, manifests, requirements
from .api import tls
from .daemon_api import DAEMON_MODULE, JOIN, MANIFESTS_PATH, REAPPLY, REPLACE, STATUS_PATH
from .joining import Difference
from .linux import require_linux
from .logs import log_cap_of
from .state import AlreadyRunning, DaemonId, StateDir, alive, start_time, stop_pid

# Waiting for a new daemon to serve: the sum of its own start-up bounds, one after the other
# (every replica serving, apply.WORKLOAD_READY_TIMEOUT; Envoy's admin port and first
# configuration, envoy.START_TIMEOUT; Prometheus ready, prometheus_server.READY_TIMEOUT)
# with room to spare on a loaded 2-core machine.
UP_TIMEOUT = 120.0
APPLY_TIMEOUT = 120.0
CALL_TIMEOUT = 10.0
DAEMON_STOP_TIMEOUT = 45.0  # a daemon still waiting for workloads finishes that wait first
ABANDON_STOP_TIMEOUT = 5.0  # a daemon that did not serve in time: SIGTERM, SIGKILL after this
READY_POLL_S = 0.02
LOG_TAIL_LINES = 20
STDIN_MANIFESTS = "stdin.yaml"  # `mesh up -f -`: standard input, kept for the daemon to read


class ManifestsRefused(MeshError, ValueError):
    """Bad manifests: nothing was changed or started."""


class MeshNotRunning(MeshError, RuntimeError):
    """No ready mesh in the state directory (the message says why: none, dead, starting)."""


class MeshBusy(MeshError, RuntimeError):
    """A daemon is starting or stopping in the state directory."""


class MeshStartFailed(MeshError, RuntimeError):
    """The daemon exited before it served, or did not serve in time (then it was stopped)."""


class MeshNotInstalled(MeshError, RuntimeError):
    """The embedded mesh's parts (the ``embedded`` extra) are not installed here."""


class DaemonError(MeshError, RuntimeError):
    """The daemon refused a request (its reason) or did not answer."""


class StartInterrupted(MeshError, RuntimeError):
    """``up`` was cancelled (the run got a signal) while the daemon started; it was stopped."""


class ObjectsDiffer(MeshError, RuntimeError):
    """Joining a running mesh: some of its objects differ from the manifests (nothing was
    applied). ``differences`` name them, with a diff and the run that changed each."""

    def __init__(self, message: str, differences: Sequence[Difference]) -> None:
        super().__init__(message)
        self.differences = tuple(differences)


@dataclass(frozen=True)
class Address:
    """How to reach one Service port or Gateway server from this machine."""

    name: str
    namespace: str
    port: Any  # the manifest's port number
    url: str
    host_header: str | None

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> Address:
        return cls(
            name=str(entry.get("name")),
            namespace=str(entry.get("namespace")),
            port=entry.get("port"),
            url=str(entry.get("url")),
            host_header=entry.get("host_header"),
        )


@dataclass(frozen=True)
class MeshInfo:
    """A mesh as its ``mesh.json`` describes it (keys in docs/CONTRACTS.md)."""

    state_dir: Path
    daemon: DaemonId
    ready: bool
    api_url: str | None
    kubeconfig: Path
    services: tuple[Address, ...]
    gateways: tuple[Address, ...]
    metrics_url: str | None
    prometheus_url: str | None
    document: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, document: Mapping[str, Any], state_dir: Path) -> MeshInfo | None:
        """None when the document names no daemon (not a mesh.json)."""
        pid = document.get("pid")
        if not isinstance(pid, int):
            return None
        started = next(
            (
                p.get("started")
                for p in document.get("pids") or []
                if isinstance(p, dict) and p.get("pid") == pid
            ),
            None,
        )
        path = document.get("kubeconfig")
        return cls(
            state_dir=state_dir,
            daemon=DaemonId(pid, str(started) if started is not None else None),
            ready=bool(document.get("ready")),
            api_url=document.get("api_url"),
            kubeconfig=Path(path) if path else StateDir(state_dir).kubeconfig,
            services=tuple(Address.from_json(e) for e in document.get("services") or []),
            gateways=tuple(Address.from_json(e) for e in document.get("gateways") or []),
            metrics_url=document.get("metrics_url"),
            prometheus_url=document.get("prometheus_url"),
            document=document,
        )

    def gateway_url(self, port: int | None = None) -> str | None:
        """The local URL of the ingress gateway (the first, or the one on ``port``)."""
        for gateway in self.gateways:
            if port is None or gateway.port == port:
                return gateway.url or None
        return None


def find_address(
    services: Sequence[Address],
    gateways: Sequence[Address],
    target: str,
    namespace: str | None = None,
) -> Address:
    """``SERVICE[:PORT]`` or ``gateway[:PORT]`` (optionally in ``namespace``) among these."""
    name, _, port = target.partition(":")
    if name == "gateway":
        candidates = list(gateways)
    else:
        candidates = [e for e in [*services, *gateways] if e.name == name]
    candidates = [
        e
        for e in candidates
        if (not port or str(e.port) == port) and (namespace is None or e.namespace == namespace)
    ]
    if not candidates:
        known = sorted(
            {f"{e.name}:{e.port}" for e in services} | {f"gateway:{e.port}" for e in gateways}
        )
        raise MeshError(f"no service or gateway {target!r} in the mesh; known: {', '.join(known)}")
    return candidates[0]


@dataclass(frozen=True)
class Manifests:
    """Manifest files as ``load`` read them: every object with its position, classified."""

    namespace: str
    files: tuple[Path, ...]
    found: tuple[manifests.Manifest, ...]
    loaded: manifests.Loaded

    @property
    def notes(self) -> list[str]:
        """Kinds accepted and ignored on the embedded mesh (a ConfigMap, RBAC...)."""
        return list(self.loaded.notes)


@dataclass(frozen=True)
class UpResult:
    """What ``up`` or ``apply`` did."""

    started: bool  # this call started the daemon (False: handed the objects to a running one)
    mesh: MeshInfo
    objects: int  # manifest objects handed over
    leftovers: tuple[str, ...] = ()  # processes of a dead mesh stopped before starting

    @property
    def daemon(self) -> DaemonId:
        return self.mesh.daemon

    @property
    def kubeconfig(self) -> Path:
        return self.mesh.kubeconfig

    @property
    def gateway_urls(self) -> tuple[str, ...]:
        return tuple(g.url for g in self.mesh.gateways)

    @property
    def prometheus_url(self) -> str | None:
        return self.mesh.prometheus_url


@dataclass(frozen=True)
class DownResult:
    """What ``down`` did: ``stopped`` a mesh, the daemon that was still ``starting``,
    ``nothing`` (no mesh), or left ``another`` daemon alone (``down(only=...)``)."""

    outcome: Literal["stopped", "starting", "nothing", "another"]
    state_dir: Path
    daemon_pid: int | None = None
    processes: int = 0  # processes mesh.json recorded
    leftovers: tuple[str, ...] = ()  # recorded processes still running after the daemon
    daemon_survived: bool = False  # the daemon did not stop (SIGKILL did not end it either)
    daemon_was_dead: bool = False  # it had died already (kill -9): only its state was left


@dataclass(frozen=True)
class MeshStatus:
    """``mesh status``: the mesh and the daemon's report (services with endpoint health,
    gateways, Istio objects with their config versions, Envoy)."""

    mesh: MeshInfo
    report: dict[str, Any]

    def find(self, target: str, namespace: str | None = None) -> Address:
        """How to reach ``SERVICE[:PORT]`` or ``gateway[:PORT]`` now (``mesh url``): the
        daemon's answer, so a Gateway created or deleted a moment ago counts."""
        return find_address(
            [Address.from_json(e) for e in self.report.get("services") or []],
            [Address.from_json(e) for e in self.report.get("gateways") or []],
            target,
            namespace,
        )


# Daemons this process started (its children): reaped once they end, so none lingers as a
# zombie in a long-lived process (a `chaosmesh run`).
_spawned: dict[int, subprocess.Popen[bytes]] = {}


def _reap() -> None:
    for pid, process in list(_spawned.items()):
        if process.poll() is not None:
            del _spawned[pid]


def _stop_recorded(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Stop every still-running process of ``mesh.json``'s ``pids`` (same pid and start time)."""
    stopped = []
    for record in records:
        pid = int(record["pid"])
        if alive(pid, record.get("started")):
            stop_pid(pid, record.get("started"))
            stopped.append(f"{record.get('role')} (pid {pid})")
    return stopped


def _tail(path: Path, lines: int = LOG_TAIL_LINES, since: int = 0) -> str:
    """The last ``lines`` of ``path`` written after byte ``since`` (this run's, not older)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(since)
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class MeshClient:
    """The embedded mesh of one state directory."""

    def __init__(
        self, state_dir: Path | str, *, notify: Callable[[str], None] | None = None
    ) -> None:
        """``notify`` receives progress notes as they happen (the CLI prints them); the
        results carry the same facts."""
        self.state = StateDir(Path(state_dir))
        self._notify = notify or (lambda line: None)

    @property
    def state_dir(self) -> Path:
        return self.state.root

    # ---- reading -------------------------------------------------------------------------
    def current(self) -> MeshInfo | None:
        """The mesh whose daemon still runs here (same pid and start time), ready or not."""
        document = self.state.read()
        info = MeshInfo.from_json(document, self.state.root) if document else None
        if info is None or not info.daemon.alive():
            return None
        return info

    def running(self) -> MeshInfo | None:
        """The mesh here that serves: its daemon runs, holds the lock and said ``ready``."""
        info = self.current()
        if info is None or not info.ready or not self.state.is_locked():
            return None
        return info

    def not_running_reason(self) -> str:
        """Why there is no mesh to ask here, and what to do about it."""
        document = self.state.read()
        info = MeshInfo.from_json(document, self.state.root) if document else None
        if info is not None and not info.daemon.alive():
            return (
                f"the mesh in {self.state.root} is not running: its daemon (pid "
                f"{info.daemon.pid}) has exited; 'chaosmesh mesh down' stops what it left behind"
            )
        if self.state.is_locked():
            return f"the mesh in {self.state.root} is still starting; try again in a moment"
        return f"no mesh running in {self.state.root} (start one: chaosmesh mesh up -f ...)"

    def require_running(self) -> MeshInfo:
        """The mesh here that serves; ``MeshNotRunning`` saying why there is none."""
        info = self.running()
        if info is None:
            raise MeshNotRunning(self.not_running_reason())
        return info

    def status(self) -> MeshStatus:
        info = self.require_running()
        return MeshStatus(info, self.request(info, STATUS_PATH))

    # ---- changing ------------------------------------------------------------------------
    def load(self, files: Sequence[str | Path], namespace: str = "default") -> Manifests:
        """Read and classify manifest files or directories (``-``: standard input, as
        ``kubectl apply -f -``); raises ``ManifestsRefused``."""
        files = self._spool_stdin(files)
        try:
            found = manifests.load(files)
            loaded = manifests.classify(found, namespace)
        except manifests.ManifestError as exc:
            raise ManifestsRefused(f"nothing changed:\n{exc}") from None
        return Manifests(namespace, tuple(Path(f).resolve() for f in files), tuple(found), loaded)

    def _spool_stdin(self, files: Sequence[str | Path]) -> list[str | Path]:
        """``-`` replaced by a copy of standard input in the state directory: a new daemon
        reads its manifests from files, after this process has gone."""
        if not any(str(f) == "-" for f in files):
            return list(files)
        self.state.root.mkdir(parents=True, exist_ok=True)
        copy = self.state.root / STDIN_MANIFESTS
        copy.write_text(sys.stdin.read(), encoding="utf-8")
        return [copy if str(f) == "-" else f for f in files]

    def up(
        self,
        manifests_: Manifests,
        *,
        concurrency: int = 2,
        prometheus: bool = False,
        log_cap: int | None = None,
        timeout: float = UP_TIMEOUT,
        apply_timeout: float = APPLY_TIMEOUT,
        cancel: threading.Event | None = None,
    ) -> UpResult:
        """Apply to the mesh running here, or start one with these manifests.

        ``timeout`` bounds the wait for a new daemon to serve (it is then stopped);
        ``apply_timeout`` the running daemon's answer. ``prometheus``, ``concurrency`` and
        ``log_cap`` (bytes; None: ``CHAOSMESH_LOG_CAP``, else 64 MiB) apply to a new mesh
        only (a running mesh keeps what it has). Once ``cancel`` is set the wait ends: the
        new daemon is stopped with whatever it started (``StartInterrupted``).
        """
        running = self.running()
        if running is not None:
            return self._apply_to(running, manifests_, apply_timeout)
        return self.start(
            manifests_,
            concurrency=concurrency,
            prometheus=prometheus,
            log_cap=log_cap,
            timeout=timeout,
            cancel=cancel,
        )

    def start(
        self,
        manifests_: Manifests,
        *,
        concurrency: int = 2,
        prometheus: bool = False,
        log_cap: int | None = None,
        timeout: float = UP_TIMEOUT,
        cancel: threading.Event | None = None,
    ) -> UpResult:
        """Start a new mesh with these manifests (``up`` without a running mesh)."""
        self.check_for_start(manifests_)
        args = self._daemon_args(manifests_, concurrency, prometheus, log_cap)
        leftovers = self.clear_dead()
        if cancel is not None and cancel.is_set():
            raise StartInterrupted(f"nothing started in {self.state.root}: interrupted")
        process, log_start = self._spawn(args)
        info = self._wait_ready(process, log_start, timeout, cancel)
        return UpResult(True, info, len(manifests_.found), tuple(leftovers))

    def join(
        self,
        info: MeshInfo,
        manifests_: Manifests,
        *,
        timeout: float = APPLY_TIMEOUT,
        reapply: bool = False,
    ) -> UpResult:
        """Hand the running mesh ``info`` only the objects it does not have; ``ObjectsDiffer``
        (nothing applied) when it holds one of them in another form. With ``reapply``,
        differing Services, Deployments and Secrets are replaced instead and differing
        Istio objects left as they are (the caller writes those itself)."""
        return self._apply_to(info, manifests_, timeout, mode=REAPPLY if reapply else JOIN)

    def wait_started(
        self, timeout: float, cancel: threading.Event | None = None
    ) -> MeshInfo | None:
        """The mesh here once it serves, waiting while its daemon is still starting (another
        ``mesh up``); None when no daemon runs. ``MeshBusy`` if it is still starting after
        ``timeout``; ``StartInterrupted`` once ``cancel`` is set."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.running()
            if info is not None:
                return info
            if not self.state.is_locked():
                return None
            if cancel is not None and cancel.is_set():
                raise StartInterrupted(f"stopped waiting for the mesh in {self.state.root}")
            if time.monotonic() > deadline:
                raise MeshBusy(
                    f"the other mesh in {self.state.root} is still starting after "
                    f"{timeout:.0f}s; try again, or run 'chaosmesh mesh down'"
                )
            time.sleep(READY_POLL_S * 5)

    def apply(self, manifests_: Manifests, *, timeout: float = APPLY_TIMEOUT) -> UpResult:
        """Hand the manifests to the running mesh (all or nothing, on the daemon's side)."""
        return self._apply_to(self.require_running(), manifests_, timeout)

    def _apply_to(
        self, info: MeshInfo, manifests_: Manifests, timeout: float, mode: str = REPLACE
    ) -> UpResult:
        payload = {
            "mode": mode,
            "namespace": manifests_.namespace,
            "manifests": [
                {"obj": m.obj, "file": m.file, "document": m.document, "line": m.line}
                for m in manifests_.found
            ],
        }
        try:
            answer = self.request(info, MANIFESTS_PATH, "POST", payload, timeout=timeout)
        except ObjectsDiffer:
            raise
        except DaemonError as exc:
            raise DaemonError(f"the running mesh keeps what it had:\n{exc}") from None
        after = MeshInfo.from_json(answer, self.state.root) if isinstance(answer, dict) else None
        return UpResult(False, after or info, len(manifests_.found))

    def check_for_start(self, manifests_: Manifests) -> None:
        """Check manifests as a new mesh would (``ManifestsRefused``: nothing started), and
        that the mesh's parts are installed (``MeshNotInstalled``: a cluster-only install) on
        a system that can run them (``UnsupportedPlatform`` elsewhere than Linux)."""
        require_linux()
        try:
            manifests.check(manifests_.loaded, manifests_.namespace)
        except manifests.ManifestError as exc:
            raise ManifestsRefused(f"nothing started:\n{exc}") from None
        absent = requirements.missing()
        if absent:
            raise MeshNotInstalled(
                f"the embedded mesh needs {', '.join(absent)}, not installed here (the "
                f"cluster image leaves them out): {requirements.INSTALL_HINT}"
            )

    def clear_dead(self) -> list[str]:
        """Stop what a daemon killed without cleaning up (kill -9) left behind, by recorded
        pid and start time, and remove its mesh.json; ``MeshBusy`` while a daemon runs."""
        try:
            # Under the lock: a mesh.json found now belongs to a dead daemon, never to one
            # that is starting (it takes the lock before writing anything).
            with self.state.locked():
                left = self.state.read()
                stopped = _stop_recorded(left.get("pids") or []) if left is not None else []
                if left is not None:
                    for stale in (self.state.mesh_json, self.state.pid_path):
                        stale.unlink(missing_ok=True)
        except AlreadyRunning:
            raise MeshBusy(
                f"a mesh is starting or stopping in {self.state.root}; try again "
                "or run 'chaosmesh mesh down'"
            ) from None
        if stopped:
            self._notify(
                f"note: stopped {len(stopped)} process(es) left by a dead mesh: "
                + ", ".join(stopped)
            )
        return stopped

    def serve(
        self,
        manifests_: Manifests,
        *,
        concurrency: int = 2,
        prometheus: bool = False,
        log_cap: int | None = None,
    ) -> int:
        """Run the daemon in this process until SIGTERM/SIGINT (``mesh up --foreground``);
        its exit status."""
        from . import daemon

        self.check_for_start(manifests_)
        args = self._daemon_args(manifests_, concurrency, prometheus, log_cap)
        self.clear_dead()
        return daemon.main(args)

    def _daemon_args(
        self, manifests_: Manifests, concurrency: int, prometheus: bool, log_cap: int | None
    ) -> list[str]:
        """The daemon's command line; a bad ``CHAOSMESH_LOG_CAP`` (``logs.LogCapError``)
        raises here, before anything starts."""
        args = [
            "--state-dir",
            str(self.state.root.resolve()),
            "--namespace",
            manifests_.namespace,
            "--concurrency",
            str(concurrency),
            "--log-cap",
            str(log_cap if log_cap is not None else log_cap_of()),
        ]
        for path in manifests_.files:
            args += ["-f", str(path)]
        if prometheus:
            args.append("--prometheus")
        return args

    def _spawn(self, args: list[str]) -> tuple[subprocess.Popen[bytes], int]:
        """Start the daemon in the background, in its own session (it outlives this call and
        a Ctrl-C in this terminal), its output appended to ``daemon.log``."""
        _reap()
        self.state.root.mkdir(parents=True, exist_ok=True)
        # daemon.log is appended to across runs: show only what this daemon wrote.
        log_start = self.state.daemon_log.stat().st_size if self.state.daemon_log.exists() else 0
        with open(self.state.daemon_log, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", DAEMON_MODULE, *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        _spawned[process.pid] = process
        return process, log_start

    def _wait_ready(
        self,
        process: subprocess.Popen[bytes],
        log_start: int,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> MeshInfo:
        """Wait until the daemon ``process`` says ``ready`` in mesh.json; stop it otherwise."""
        daemon = DaemonId(process.pid, start_time(process.pid))
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if cancel is not None and cancel.is_set():
                    raise StartInterrupted(
                        f"interrupted while the mesh in {self.state.root} started; stopped it"
                    )
                if process.poll() is not None:
                    raise MeshStartFailed(
                        f"the mesh did not start (exit {process.returncode}):\n"
                        + _tail(self.state.daemon_log, since=log_start)
                    )
                document = self.state.read()
                if document and document.get("ready") and document.get("pid") == process.pid:
                    info = MeshInfo.from_json(document, self.state.root)
                    if info is not None:
                        return info
                time.sleep(READY_POLL_S)
            raise MeshStartFailed(
                f"the mesh did not serve within {timeout:.0f}s; stopped it:\n"
                + _tail(self.state.daemon_log, since=log_start)
            )
        except BaseException:
            self._abandon(daemon)
            raise

    def _abandon(self, daemon: DaemonId) -> None:
        """Stop a daemon this client started that did not serve, and whatever it recorded."""
        stop_pid(daemon.pid, daemon.started, timeout=ABANDON_STOP_TIMEOUT)
        _reap()
        # SIGTERM makes the daemon stop its own processes; after a SIGKILL (or a crash) the
        # ones it had recorded are stopped here.
        left = self.state.read()
        if left is not None and left.get("pid") == daemon.pid:
            _stop_recorded(left.get("pids") or [])
            if not self.state.is_locked():
                self.state.clear()

    def down(
        self, only: DaemonId | None = None, *, stop_timeout: float = DAEMON_STOP_TIMEOUT
    ) -> DownResult:
        """Stop every process the mesh started (by pid and start time) and remove its
        mesh.json, pid file and lock. With ``only``, act only while mesh.json still names that
        daemon (another run's mesh in the same directory is left alone). ``stop_timeout``
        bounds the wait for the daemon to stop its processes (then SIGKILL)."""
        root = self.state.root
        if only is not None:
            info = self.current()
            if info is None:
                return DownResult("nothing", root)
            if info.daemon != only:
                return DownResult("another", root, info.daemon.pid)
        document = self.state.read()
        if document is None:
            if not self.state.is_locked():
                self.state.clear()
                return DownResult("nothing", root)
            # A daemon still starting up: it has written no mesh.json yet, but it stops
            # everything it started when it gets SIGTERM.
            pid = self._starting_daemon()
            if pid is None:
                raise MeshError(
                    f"a process holds {self.state.lock_path} but is not a mesh daemon; "
                    f"nothing stopped (its pid should be in {self.state.pid_path})"
                )
            if not stop_pid(pid, start_time(pid), timeout=stop_timeout):
                raise MeshError(f"the starting mesh daemon (pid {pid}) did not stop")
            self.state.clear()
            _reap()
            return DownResult("starting", root, pid)
        daemon_pid = int(document["pid"])
        records = document.get("pids") or []
        started = next((p.get("started") for p in records if p.get("pid") == daemon_pid), None)
        # The daemon stops its own children in order; the pids below are the safety net.
        was_dead = not alive(daemon_pid, started)
        survived = not was_dead and not stop_pid(daemon_pid, started, timeout=stop_timeout)
        leftovers = _stop_recorded(records)
        self.state.clear()
        _reap()
        return DownResult(
            "stopped",
            root,
            daemon_pid,
            len(records),
            tuple(leftovers),
            daemon_survived=survived,
            daemon_was_dead=was_dead,
        )

    def _starting_daemon(self) -> int | None:
        """The pid of the mesh daemon holding the lock, from ``mesh.pid`` (None if not one)."""
        try:
            pid = int(self.state.pid_path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if DAEMON_MODULE.encode() in cmdline else None

    # ---- the daemon's endpoints ------------------------------------------------------------
    def request(
        self,
        info: MeshInfo,
        path: str,
        method: str = "GET",
        body: Any = None,
        timeout: float = CALL_TIMEOUT,
    ) -> Any:
        """One call to the daemon of ``info``, with the token and CA from its kubeconfig."""
        url = f"{info.api_url}{path}"
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        token, ca_pem = kubeconfig.credentials(info.kubeconfig)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        # Never through an HTTP proxy from the environment: the token stays on loopback; and
        # only to the server holding this mesh's own certificate.
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=tls.client_context(ca_pem) if ca_pem else None),
        )
        try:
            with opener.open(request, timeout=timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            payload = json.loads(exc.read() or b"{}")
            message = str(payload.get("error") or payload.get("message") or payload)
            if exc.code == 409 and isinstance(payload.get("differences"), list):
                raise ObjectsDiffer(
                    message, [Difference.from_json(d) for d in payload["differences"]]
                ) from None
            raise DaemonError(message) from None
        except (OSError, ValueError) as exc:
            raise DaemonError(f"the mesh daemon at {url} does not answer: {exc}") from None
