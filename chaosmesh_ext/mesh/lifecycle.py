"""One embedded mesh inside the daemon's process: bring it up, keep it described, stop it.

``Mesh.up(loaded)`` starts the workloads and Envoy through the apply transaction
(``apply.Applier``), stores the Istio objects, then starts the API server (HTTPS with a fresh
self-signed certificate and a fresh random bearer token), writes the kubeconfig (mode 0600)
that carries both, starts the metrics exporter (and Prometheus when asked) and rewrites
``mesh.json`` with ``ready: true`` last. While it runs, the pod controller
(``pods.controller``) answers deletes of Pods and scales of Deployments and keeps Envoy's
endpoints to the serving replicas, a monitor thread keeps the Pods the API shows true to the
processes, and ``mesh.json``'s pids true when Envoy is restarted (or once it can be rewritten
after a full disk), and a log keeper (``logs.LogKeeper``) keeps every log of the state
directory within the log cap. ``Mesh.stop()`` stops everything it started, by pid.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from typing import Any

from chaosmesh_ext._fingerprint import ca_fingerprint

from . import daemon_api, kubeconfig, manifests, views
from .api import ApiServer, resources, tls
from .apply import Applier
from .envoy import EnvoyProcess
from .logs import DEFAULT_LOG_CAP, LogKeeper
from .manifests import Loaded
from .paths import ACCESS_JSONL
from .pods.controller import PodController
from .state import StateDir, start_time
from .xds_files import disk_full

MONITOR_INTERVAL_S = 0.5


class Mesh:
    """Everything one embedded mesh runs; thread-safe through the store's write lock."""

    def __init__(
        self,
        state: StateDir,
        namespace: str = "default",
        concurrency: int = 2,
        prometheus: bool = False,
        log_cap: int = DEFAULT_LOG_CAP,
    ) -> None:
        self.state = state
        self.namespace = namespace
        self.prometheus_wanted = prometheus
        self.log_cap = log_cap
        self.logs: LogKeeper | None = None
        self.stopping = threading.Event()
        self.envoy = EnvoyProcess(state.root, concurrency=concurrency)
        self.applier = Applier(
            state,
            namespace,
            self.envoy,
            cancel=self.stopping,
            on_change=self.record_pids,
            on_served=self._write_state_after_push,
            log_cap=log_cap,
        )
        self.store = self.applier.store
        self.pods = PodController(self.applier)
        self.store.set_owner(resources.PODS, self.pods)
        self.store.set_owner(resources.DEPLOYMENTS, self.pods)
        self.api: ApiServer | None = None
        self.exporter: Any = None
        self.prometheus: Any = None
        self._monitor: threading.Thread | None = None
        # mesh.json is written from the API's handlers and the monitor thread: one at a time,
        # so an older snapshot never replaces a newer one.
        self._state_lock = threading.Lock()
        self.ready = False  # set once everything serves; mesh.json says so
        # This mesh instance's identity: its API certificate's fingerprint (_fingerprint).
        self.api_ca_sha256: str | None = None
        self._state_stale = False  # mesh.json could not be rewritten (a full disk)

    # ---- lifecycle -----------------------------------------------------------------------
    def up(self, loaded: Loaded) -> None:
        ns = self.namespace
        # A previous mesh's sidecar table (a crash leaves it): its ports are not ours.
        self.state.outbound_file.unlink(missing_ok=True)
        self.applier.apply(
            [manifests.with_namespace(m.obj, ns) for m in loaded.services],
            [manifests.with_namespace(m.obj, ns) for m in loaded.deployments],
            secrets=[manifests.with_namespace(m.obj, ns) for m in loaded.secrets],
        )
        # The first push starts Envoy with the whole configuration.
        self.store.load_istio([manifests.as_applied(m.obj, ns) for m in loaded.istio], ns)
        self.record_pids()
        self.applier.publish()
        # A fresh secret per mesh: only who can read the kubeconfig (0600) can use the API.
        # Over TLS, because Kubernetes clients send no token to an http:// server.
        token = secrets.token_urlsafe(32)
        cert = tls.make_in_child(self.state.root)
        self.api_ca_sha256 = ca_fingerprint(cert.cert_pem)
        self.api = ApiServer(
            self.store,
            admin_url=self.admin_url,
            token=token,
            tls=cert.server_context(),
            extra=daemon_api.handlers(self),
            pod_logs=self.pods.pod_logs,
        ).start()
        kubeconfig.write(self.state.kubeconfig, self.api.url, ns, token, cert.cert_pem)
        self.write_state(ready=False)
        try:
            from .metrics import start_exporter

            self.exporter = start_exporter(self.state.root)
        except ImportError:
            self.exporter = None
        if self.prometheus_wanted:
            from .prometheus_server import start_prometheus

            urls = [
                u
                for u in (
                    getattr(self.exporter, "url", None),
                    f"{self.envoy.admin_url}/stats/prometheus",
                )
                if u
            ]
            self.prometheus = start_prometheus(self.state.root, urls)
        self.pods.start()
        self.logs = self._keep_logs()
        self.ready = True
        self.write_state(ready=True)
        self._monitor = threading.Thread(
            target=self._watch_workloads, name="workload-monitor", daemon=True
        )
        self._monitor.start()

    def _keep_logs(self) -> LogKeeper:
        """Rotate every log of the state directory within the cap (see ``logs``)."""
        follower = getattr(getattr(self.exporter, "pipeline", None), "follower", None)
        return LogKeeper(
            self.state.root,
            self.log_cap,
            reopen=self.envoy.reopen_logs,
            # The exporter reads access.jsonl to its end before it may be renamed again.
            hold={ACCESS_JSONL: follower.behind} if follower is not None else None,
            live_logs=lambda: [r.log_path for r in self.applier.all_replicas() if r.log_path],
        ).start()

    def stop(self) -> None:
        self.stopping.set()
        if self.logs is not None:
            self.logs.stop()
        if self.api is not None:
            self.api.stop()
        self.pods.stop()
        for part in (self.prometheus, self.exporter):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()
        with contextlib.suppress(Exception):
            self.envoy.stop()
        self.applier.stop()

    def admin_url(self) -> str | None:
        """Envoy's admin URL now (None while the supervisor restarts it)."""
        try:
            return str(self.envoy.admin_url)
        except Exception:
            return None

    def _watch_workloads(self) -> None:
        """Keep Pod readiness in the API true to the processes (the service proxy reads it),
        and mesh.json's pids true when the supervisor restarts Envoy (``mesh down`` reads them).
        """
        seen: dict[str, tuple[bool, bool, int]] = {}
        envoy_pid = self.envoy.pid
        while not self.stopping.wait(MONITOR_INTERVAL_S):
            replicas = self.applier.all_replicas()
            for replica in replicas:
                replica.scan_log()
            now = {f"{r.namespace}/{r.pod}": (r.alive, r.ready, r.restarts) for r in replicas}
            if now != seen:
                with contextlib.suppress(Exception):
                    self.applier.publish()
                self.pods.wake()  # a replica ended or its program restarts: endpoints follow
                seen = now
            restarted = self.envoy.pid != envoy_pid and self.envoy.pid is not None
            if restarted or self._state_stale:
                with contextlib.suppress(Exception):  # a full disk: tried again next round
                    pid = self.envoy.pid
                    self.write_state(ready=True)
                    envoy_pid, self._state_stale = pid, False

    # ---- mesh.json -----------------------------------------------------------------------
    def pids(self) -> list[dict[str, Any]]:
        """Every process this mesh started (``mesh.json``'s ``pids``), with its start time."""
        out = [{"pid": os.getpid(), "role": "daemon", "started": start_time(os.getpid())}]
        if self.envoy.pid:
            out.append(
                {"pid": self.envoy.pid, "role": "envoy", "started": start_time(self.envoy.pid)}
            )
        replicas = self.applier.all_replicas() + self.applier.starting + self.applier.reaping
        out.extend(
            {"pid": r.pid, "role": f"workload {r.namespace}/{r.pod}", "started": r.started}
            for r in replicas
        )
        if self.prometheus is not None:
            out.append(
                {
                    "pid": self.prometheus.pid,
                    "role": "prometheus",
                    "started": start_time(self.prometheus.pid),
                }
            )
        return out

    def record_pids(self) -> None:
        """Rewrite mesh.json now that processes or the served objects changed (before
        ``ready`` as well)."""
        self.write_state(ready=self.ready)

    def _write_state_after_push(self) -> None:
        """mesh.json after a change Envoy already serves: a full disk must not undo that
        change, so mesh.json is then left to the monitor, which rewrites it once it can."""
        try:
            self.write_state(ready=self.ready)
        except OSError as exc:
            if not disk_full(exc):
                raise
            self._state_stale = True

    def write_state(self, ready: bool) -> None:
        with self._state_lock:
            ports = self.applier.listener_ports
            self.state.write(
                {
                    "pid": os.getpid(),
                    "ready": ready,
                    "state_dir": str(self.state.root.resolve()),
                    "namespace": self.namespace,
                    "api_url": self.api.url if self.api is not None else None,
                    "api_ca_sha256": self.api_ca_sha256,
                    "kubeconfig": str(self.state.kubeconfig.resolve()),
                    "admin_url": self.admin_url(),
                    "listeners": self.applier.listeners(),
                    "endpoints": views.endpoint_records(self.applier.all_replicas()),
                    "services": views.service_entries(self.applier.services.values(), ports),
                    "gateways": views.gateway_entries(self.applier.served_gateways(), ports),
                    "pids": self.pids(),
                    "metrics_url": getattr(self.exporter, "url", None),
                    "prometheus_url": getattr(self.prometheus, "url", None),
                    "access_log": str(self.state.access_log.resolve()),
                    "log_cap": self.log_cap,
                    # What the translation of the current state reported (docs/FIDELITY.md).
                    "warnings": list(self.applier.translation_warnings),
                }
            )

    # ---- mesh status ---------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The report behind ``mesh status``: services with their endpoints' health, gateways,
        Istio objects with the Envoy config that has them, Envoy itself (with its restarts
        and outages), the logs against their cap."""
        ports = self.applier.listener_ports
        istio = []
        for rt in resources.ISTIO_TYPES:
            items, _ = self.store.list_objects(rt, None)
            for obj in items:
                meta = obj["metadata"]
                version = self.store.applied_version(rt, meta.get("namespace", ""), meta["name"])
                istio.append(views.istio_entry(rt.kind, obj, version))
        return {
            "services": views.service_status(
                self.applier.services,
                ports,
                self.applier.all_replicas(),
                self.envoy.endpoint_health(),
            ),
            "gateways": views.gateway_entries(self.applier.served_gateways(), ports),
            "istio": istio,
            "envoy": {
                "pid": self.envoy.pid,
                "running": self.envoy.running,
                **self.envoy.supervision(),
                "config_version": self.envoy.version,
                "admin_url": self.admin_url(),
            },
            "logs": self.logs.usage().to_json() if self.logs is not None else None,
            "api_url": self.api.url if self.api else None,
        }
