"""The embedded mesh's daemon: workloads, Envoy, the API server and mesh.json, in one process.

``python -m chaosmesh_ext.mesh.daemon --state-dir DIR -f FILE ...`` (what ``mesh up`` starts
in the background, or runs in the terminal with ``--foreground``):

1. takes the state directory's lock, loads and checks the manifests (nothing starts on bad
   input);
2. picks loopback ports (port 0), starts one workload process per Deployment replica and
   records its pid in ``mesh.json`` at once (``ready: false``), so ``mesh down`` finds it
   even if this daemon is killed while starting;
3. waits until every workload accepts connections, failing at once if one crashes
   (``readiness``); translates everything and starts Envoy; stores the Istio objects;
4. starts the API server (HTTPS with a fresh self-signed certificate, a fresh random bearer
   token), writes the kubeconfig (mode 0600) that carries both, starts the metrics exporter
   and rewrites ``mesh.json`` with ``ready: true`` last;
5. serves until SIGTERM/SIGINT or ``POST /chaosmesh/v1/shutdown``, then stops everything it
   started, by pid.

Every later Istio write arrives through the API's store, whose apply hook is
``Mesh.push``: translate, push to Envoy, answer only once Envoy serves it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

from chaosmesh_ext._sidecar import Sidecar, format_outbound

from . import kubeconfig, manifests
from .api import ApiError, ApiServer, ApplyRejected, Store, resources, tls
from .api.server import LOCAL_PORT_ANNOTATION
from .api.status import insufficient_storage
from .api.warnings import warn
from .logs import ACCESS_JSONL, DEFAULT_LOG_CAP, LogKeeper, format_size, log_size, parse_size
from .manifests import Loaded, ManifestError
from .readiness import Replica, wait_all_ready
from .state import AlreadyRunning, StateDir, acquire_lock, start_time
from .xds_files import Staged, disk_full

WORKLOAD_READY_TIMEOUT = 30.0
ENVOY_APPLY_TIMEOUT = 5.0
DOMAIN = "cluster.local"


def free_port() -> int:
    """A loopback port the OS hands out now (other programs hold fixed ports here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "default", meta["name"]


def _fqdn(service: dict[str, Any]) -> str:
    ns, name = _key(service)
    return f"{name}.{ns}.svc.{DOMAIN}"


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
        from . import admission
        from .envoy import EnvoyProcess

        self.state = state
        self.namespace = namespace
        self.prometheus_wanted = prometheus
        self.services: dict[tuple[str, str], dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.replicas: dict[tuple[str, str], list[Replica]] = {}
        self.listener_ports: dict[str, int] = {}
        # The Istio objects Envoy serves now (the last accepted push): what mesh.json, `mesh
        # status` and `mesh url` list, so they agree with the API once a write returns.
        self.served: dict[str, list[dict[str, Any]]] = {}
        self.envoy = EnvoyProcess(state.root, concurrency=concurrency)
        self.envoy_started = False
        self.store = Store(validate=admission.validate, apply=self.push, advise=admission.warnings)
        # kubernetes.io/tls Secrets from the manifests (HTTPS Gateway servers' certificates),
        # the self-signed one served when a server's Secret is missing, made on first need.
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.fallback_certificate: tuple[str, str] | None = None
        self.translation_warnings: list[str] = []
        self.api: ApiServer | None = None
        self.exporter: Any = None
        self.prometheus: Any = None
        self.log_cap = log_cap
        self.logs: LogKeeper | None = None
        self.stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        # mesh.json is written from the API's handlers and the monitor thread: one at a time,
        # so an older snapshot never replaces a newer one.
        self._state_lock = threading.Lock()
        self.ready = False  # set once everything serves; mesh.json says so
        self._outbound_written: dict[int, tuple[str, int]] | None = None
        self._state_stale = False  # mesh.json could not be rewritten (a full disk)
        # Replicas started but not yet committed (waiting to accept): recorded in mesh.json
        # too, so `mesh down` finds them even if this daemon is killed meanwhile.
        self._starting: list[Replica] = []

    # ---- the apply hook ------------------------------------------------------------------
    def _reserve_listener_ports(self, istio: dict[str, list[dict[str, Any]]]) -> None:
        """A fixed local port for every Service port and Gateway server port, kept for life."""
        for service in self.services.values():
            for port in (service.get("spec") or {}).get("ports") or []:
                self.listener_ports.setdefault(f"0.0.0.0_{port['port']}", free_port())
        for gateway in istio.get("gateways", []):
            for server in (gateway.get("spec") or {}).get("servers") or []:
                number = (server.get("port") or {}).get("number")
                if number:
                    self.listener_ports.setdefault(f"gateway_{number}", free_port())

    def _snapshot(self, istio: dict[str, list[dict[str, Any]]]) -> Any:
        from .translate import Endpoint, MeshSnapshot

        self._reserve_listener_ports(istio)
        endpoints = [
            Endpoint(r.pod, r.namespace, dict(r.labels), "127.0.0.1", r.port)
            for reps in self.replicas.values()
            for r in reps
        ]
        secrets = list(self.secrets.values())
        gateways = istio.get("gateways", [])
        return MeshSnapshot(
            services=list(self.services.values()),
            virtual_services=istio.get("virtualservices", []),
            destination_rules=istio.get("destinationrules", []),
            gateways=gateways,
            endpoints=endpoints,
            listener_ports=dict(self.listener_ports),
            domain=DOMAIN,
            access_log_dir=str(self.state.root),
            secrets=secrets,
            fallback_certificate=self._fallback_certificate(gateways, secrets),
        )

    def _fallback_certificate(
        self, gateways: list[dict[str, Any]], secrets: list[dict[str, Any]]
    ) -> tuple[str, str] | None:
        """The self-signed certificate an HTTPS server without its Secret serves (with a
        warning), made once, the first time one needs it."""
        from .translate.gateways import needs_fallback_certificate

        if self.fallback_certificate is None and needs_fallback_certificate(gateways, secrets):
            cert = tls.make_in_child(
                self.state.root, name="gateway-fallback", common_name="chaosmesh-gateway"
            )
            self.fallback_certificate = (cert.cert_pem.decode(), cert.key_path.read_text())
        return self.fallback_certificate

    def push(self, istio: dict[str, list[dict[str, Any]]]) -> str:
        """Translate the candidate state and make Envoy serve it; the store commits after.

        A full state directory refuses the write with 507 before Envoy sees any of it: every
        file the change needs is written aside first (xDS files, the sidecars' table).
        """
        from .envoy import EnvoyError, EnvoyRejected
        from .translate import translate

        try:
            envoy_resources = translate(self._snapshot(istio))
        except (ValueError, KeyError, TypeError) as exc:
            raise ApplyRejected(f"translation failed: {exc}") from None
        except OSError as exc:  # a gateway's fallback certificate could not be written
            if disk_full(exc):
                raise insufficient_storage(self.disk_full_message(exc)) from None
            raise
        outbound = Staged()
        try:
            self._stage_outbound(outbound)
            if not self.envoy_started:
                version = self.envoy.start(envoy_resources)
                self.envoy_started = True
            else:
                version = self.envoy.apply(envoy_resources, timeout=ENVOY_APPLY_TIMEOUT)
            # Only now do the listeners exist: tell running workloads about new ones.
            if outbound.has("outbound"):
                outbound.commit("outbound")
                self._outbound_written = self._outbound()
            self.served = istio
            self.translation_warnings = [str(w) for w in envoy_resources.warnings]
            for warning in envoy_resources.warnings:
                warn(warning.text, warning.about)  # a `Warning:` header if a request is served
            # A Gateway created or deleted with kubectl changes the URLs mesh.json lists.
            self._write_state_after_push()
            return version
        except EnvoyRejected as exc:
            raise ApplyRejected(str(getattr(exc, "reason", exc))) from None
        except EnvoyError as exc:
            raise ApplyRejected(f"Envoy did not confirm the change: {exc}") from None
        except OSError as exc:
            if disk_full(exc):
                raise insufficient_storage(self.disk_full_message(exc)) from None
            raise
        finally:
            outbound.discard()

    def disk_full_message(self, exc: OSError) -> str:
        return (
            f"the embedded mesh cannot write to its state directory {self.state.root}: "
            f"{exc.strerror or exc}. Nothing was changed: Envoy keeps serving the previous "
            "configuration. Free space on that filesystem (the mesh's logs take at most "
            f"{format_size(self.log_cap)}, 'mesh up --log-cap') and retry"
        )

    # ---- workloads -----------------------------------------------------------------------
    def _outbound(self) -> dict[int, tuple[str, int]]:
        return {
            int(name.split("_", 1)[1]): ("127.0.0.1", port)
            for name, port in self.listener_ports.items()
            if name.startswith("0.0.0.0_")
        }

    @property
    def outbound_file(self) -> Path:
        return self.state.root / "outbound.json"

    def _stage_outbound(self, staged: Staged) -> None:
        """The sidecars' outbound table, written aside when it changes (workloads re-read it
        when it is renamed in place); Istio writes alone never change it."""
        table = self._outbound()
        if table != self._outbound_written:
            staged.add("outbound", self.outbound_file, json.dumps(format_outbound(table)))

    def _sidecar(self, deployment: str, namespace: str, labels: dict[str, str]) -> Sidecar:
        return Sidecar(
            outbound=self._outbound(),
            workload=deployment,
            namespace=namespace,
            labels=labels,
            outbound_file=str(self.outbound_file),
        )

    def _start_replicas(self, deployment: dict[str, Any]) -> list[Replica]:
        from .workloads import launch, replica_count, replica_specs

        # The workloads layer reads kind, pod names, labels, version and annotations from the
        # manifest (the seed's canary has `app: v1`, no `version` label); the daemon adds
        # ports and the sidecar that follows the mesh's outbound listeners.
        ports = [free_port() for _ in range(replica_count(deployment))]
        specs = replica_specs(
            deployment, ports, self._outbound(), self.state.root / "logs", self.namespace
        )
        started: list[Replica] = []
        try:
            for wspec in specs:
                sidecar = self._sidecar(wspec.deployment, wspec.namespace, dict(wspec.labels))
                offset = log_size(wspec.log_path)
                process = launch(dataclasses.replace(wspec, sidecar=sidecar))
                started.append(
                    Replica(
                        wspec.pod,
                        wspec.namespace,
                        wspec.deployment,
                        wspec.kind,
                        dict(wspec.labels),
                        wspec.port,
                        process,
                        start_time(process.pid),
                        wspec.log_path,
                        offset,
                    )
                )
        except BaseException:
            self._stop_replicas(started)
            raise
        return started

    @staticmethod
    def _stop_replicas(replicas: list[Replica]) -> None:
        for replica in replicas:
            if replica.alive:
                replica.process.terminate()
        for replica in replicas:
            try:
                replica.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait(timeout=5)

    def _wait_ready(self, replicas: list[Replica]) -> None:
        wait_all_ready(replicas, WORKLOAD_READY_TIMEOUT, cancel=self.stopping)

    def apply_workloads(
        self,
        services: list[dict[str, Any]],
        deployments: list[dict[str, Any]],
        istio: list[dict[str, Any]] | None = None,
        secrets: list[dict[str, Any]] | None = None,
    ) -> None:
        """Add or update Services and Deployments (restarting only changed Deployments) and,
        when ``istio`` is given, those Istio objects too, in the same single Envoy push.

        All or nothing: if a new replica crashes, or the store or Envoy refuses the result,
        the mesh keeps the Services, Deployments, replicas, listener ports and Istio objects it
        had (and serves what it served).
        """
        with self.store.writing():
            saved = (dict(self.services), dict(self.deployments), dict(self.replicas))
            saved_ports = dict(self.listener_ports)
            saved_secrets = dict(self.secrets)
            fresh: dict[tuple[str, str], list[Replica]] = {}
            try:
                for secret in secrets or []:
                    self.secrets[_key(secret)] = secret
                for service in services:
                    self.services[_key(service)] = service
                changed = [d for d in deployments if self.deployments.get(_key(d)) != d]
                # Listener ports first: new workloads learn every outbound listener from env.
                self._reserve_listener_ports(self.store.all_istio())
                for deployment in changed:
                    fresh[_key(deployment)] = self._start_replicas(deployment)
                    self._starting = [r for reps in fresh.values() for r in reps]
                    self.record_pids()
                self._wait_ready(self._starting)
                for deployment in changed:
                    self.deployments[_key(deployment)] = deployment
                self.replicas.update(fresh)
                if istio:
                    # One push for workloads and Istio objects: a refusal leaves both as
                    # they were (the store commits nothing, Envoy keeps its last good config).
                    self.store.load_istio(istio, self.namespace)
                elif self.envoy_started:
                    # On a refusal Envoy keeps serving the last good configuration.
                    self.push(self.store.all_istio())
            except BaseException:
                self.services, self.deployments, self.replicas = saved
                self.listener_ports = saved_ports
                self.secrets = saved_secrets
                for reps in fresh.values():
                    self._stop_replicas(reps)
                raise
            finally:
                self._starting = []
                if fresh:
                    self.record_pids()  # what runs now, after a commit or a rollback
            for key in fresh:
                self._stop_replicas(saved[2].get(key, []))
            self.publish()

    # ---- the read-only kinds the API shows -------------------------------------------------
    def publish(self) -> None:
        """Show Namespaces, Services, Deployments and Pods as they run now (read-only kinds)."""
        with self.store.writing():
            self._publish()

    def _publish(self) -> None:
        namespaces = {self.namespace, "default"}
        namespaces |= {ns for ns, _ in self.services} | {ns for ns, _ in self.deployments}
        for items in self.store.all_istio().values():
            namespaces |= {o["metadata"].get("namespace", "default") for o in items}
        self.store.set_readonly(
            resources.NAMESPACES,
            [
                {"metadata": {"name": ns}, "status": {"phase": "Active"}}
                for ns in sorted(namespaces)
            ],
        )
        self.store.set_readonly(
            resources.SERVICES,
            [
                {**s, "spec": {"type": "ClusterIP", "clusterIP": "None", **(s.get("spec") or {})}}
                for s in self.services.values()
            ],
        )
        deployments = []
        for key, deployment in self.deployments.items():
            reps = self.replicas.get(key, [])
            ready = sum(1 for r in reps if r.ready)
            deployments.append(
                {
                    **deployment,
                    "status": {
                        "replicas": len(reps),
                        "readyReplicas": ready,
                        "availableReplicas": ready,
                        "updatedReplicas": len(reps),
                    },
                }
            )
        self.store.set_readonly(resources.DEPLOYMENTS, deployments)
        pods = []
        for key, reps in self.replicas.items():
            template = (self.deployments[key].get("spec") or {}).get("template") or {}
            containers = (template.get("spec") or {}).get("containers") or [{"name": "app"}]
            for r in reps:
                ready_text = "True" if r.ready else "False"
                pods.append(
                    {
                        "metadata": {
                            "name": r.pod,
                            "namespace": r.namespace,
                            "labels": dict(r.labels),
                            "annotations": {
                                LOCAL_PORT_ANNOTATION: str(r.port),
                                "chaosmesh.io/workload": r.kind,
                                "chaosmesh.io/pid": str(r.process.pid),
                            },
                        },
                        "spec": {"containers": containers},
                        "status": {
                            "phase": "Running" if r.alive else "Failed",
                            "podIP": "127.0.0.1",
                            "hostIP": "127.0.0.1",
                            "conditions": [{"type": "Ready", "status": ready_text}],
                            "containerStatuses": [
                                {
                                    "name": c.get("name", "app"),
                                    "ready": r.ready,
                                    "restartCount": r.restarts,
                                    "image": c.get("image", ""),
                                    # Required by the official client's model; names the
                                    # stand-in that really runs instead of the image.
                                    "imageID": f"chaosmesh.io/workload/{r.kind}",
                                    "started": r.alive,
                                }
                                for c in containers
                            ],
                        },
                    }
                )
        self.store.set_readonly(resources.PODS, pods)

    # ---- lifecycle -----------------------------------------------------------------------
    def up(self, loaded: Loaded) -> None:
        ns = self.namespace
        self.apply_workloads(
            [manifests.with_namespace(m.obj, ns) for m in loaded.services],
            [manifests.with_namespace(m.obj, ns) for m in loaded.deployments],
            secrets=[manifests.with_namespace(m.obj, ns) for m in loaded.secrets],
        )
        # The first push starts Envoy with the whole configuration.
        self.store.load_istio([manifests.with_namespace(m.obj, ns) for m in loaded.istio], ns)
        self.record_pids()
        self.publish()
        # A fresh secret per mesh: only who can read the kubeconfig (0600) can use the API.
        # Over TLS, because Kubernetes clients send no token to an http:// server.
        token = secrets.token_urlsafe(32)
        cert = tls.make_in_child(self.state.root)
        self.api = ApiServer(
            self.store,
            admin_url=self.admin_url,
            token=token,
            tls=cert.server_context(),
            extra={
                "/chaosmesh/v1/manifests": self._handle_manifests,
                "/chaosmesh/v1/status": self._handle_status,
                "/chaosmesh/v1/shutdown": self._handle_shutdown,
            },
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
            live_logs=lambda: [
                r.log_path for reps in self.replicas.values() for r in reps if r.log_path
            ],
        ).start()

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
        while not self.stopping.wait(0.5):
            replicas = [r for reps in self.replicas.values() for r in reps]
            for replica in replicas:
                replica.scan_log()
            now = {f"{r.namespace}/{r.pod}": (r.alive, r.ready, r.restarts) for r in replicas}
            if now != seen:
                with contextlib.suppress(Exception):
                    self.publish()
                seen = now
            restarted = self.envoy.pid != envoy_pid and self.envoy.pid is not None
            if restarted or self._state_stale:
                with contextlib.suppress(Exception):  # a full disk: tried again next round
                    pid = self.envoy.pid
                    self.write_state(ready=True)
                    envoy_pid, self._state_stale = pid, False

    def pids(self) -> list[dict[str, Any]]:
        out = [{"pid": os.getpid(), "role": "daemon", "started": start_time(os.getpid())}]
        if self.envoy.pid:
            out.append(
                {"pid": self.envoy.pid, "role": "envoy", "started": start_time(self.envoy.pid)}
            )
        replicas = [r for reps in self.replicas.values() for r in reps] + self._starting
        out.extend(
            {"pid": r.process.pid, "role": f"workload {r.namespace}/{r.pod}", "started": r.started}
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

    def _entries(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        services = []
        for service in self.services.values():
            ns, name = _key(service)
            for port in (service.get("spec") or {}).get("ports") or []:
                listen = self.listener_ports.get(f"0.0.0.0_{port['port']}")
                services.append(
                    {
                        "name": name,
                        "namespace": ns,
                        "port": port["port"],
                        "url": f"http://127.0.0.1:{listen}/",
                        "host_header": _fqdn(service),
                    }
                )
        gateways = []
        for gateway in self.served.get("gateways", []):
            ns, name = _key(gateway)
            for server in (gateway.get("spec") or {}).get("servers") or []:
                number = (server.get("port") or {}).get("number")
                listen = self.listener_ports.get(f"gateway_{number}")
                hosts = [h.split("/", 1)[-1] for h in server.get("hosts") or []]
                named = [h for h in hosts if "*" not in h]
                https = str((server.get("port") or {}).get("protocol") or "").upper() == "HTTPS"
                gateways.append(
                    {
                        "name": name,
                        "namespace": ns,
                        "port": number,
                        "url": f"{'https' if https else 'http'}://127.0.0.1:{listen}/",
                        "host_header": named[0] if named else None,
                    }
                )
        return services, gateways

    def write_state(self, ready: bool) -> None:
        with self._state_lock:
            self._write_state(ready)

    def _write_state_after_push(self) -> None:
        """mesh.json after a change Envoy already serves: a full disk must not undo that
        change, so mesh.json is then left to the monitor, which rewrites it once it can."""
        try:
            self.write_state(ready=self.ready)
        except OSError as exc:
            if not disk_full(exc):
                raise
            self._state_stale = True

    def record_pids(self) -> None:
        """Rewrite mesh.json now that processes were started (before ``ready`` as well)."""
        self.write_state(ready=self.ready)

    def _write_state(self, ready: bool) -> None:
        services, gateways = self._entries()
        self.state.write(
            {
                "pid": os.getpid(),
                "ready": ready,
                "state_dir": str(self.state.root.resolve()),
                "namespace": self.namespace,
                "api_url": self.api.url if self.api is not None else None,
                "kubeconfig": str(self.state.kubeconfig.resolve()),
                "admin_url": self.admin_url(),
                "listeners": dict(sorted(self.listener_ports.items())),
                "endpoints": [
                    {
                        "pod": r.pod,
                        "namespace": r.namespace,
                        "workload": r.deployment,
                        "kind": r.kind,
                        "labels": r.labels,
                        "address": "127.0.0.1",
                        "port": r.port,
                    }
                    for reps in self.replicas.values()
                    for r in reps
                ],
                "services": services,
                "gateways": gateways,
                "pids": self.pids(),
                "metrics_url": getattr(self.exporter, "url", None),
                "prometheus_url": getattr(self.prometheus, "url", None),
                "access_log": str((self.state.root / "access.log").resolve()),
                "log_cap": self.log_cap,
                # What the translation of the current state reported (docs/FIDELITY.md).
                "warnings": list(self.translation_warnings),
            }
        )

    def stop(self) -> None:
        self.stopping.set()
        if self.logs is not None:
            self.logs.stop()
        if self.api is not None:
            self.api.stop()
        for part in (self.prometheus, self.exporter):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()
        with contextlib.suppress(Exception):
            self.envoy.stop()
        for reps in self.replicas.values():
            self._stop_replicas(reps)

    # ---- daemon endpoints ----------------------------------------------------------------
    def _handle_manifests(
        self, method: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        if method != "POST":
            return 405, {"error": "POST a list of objects"}
        try:
            request = json.loads(body or b"{}")
            ns = request.get("namespace") or self.namespace
            items = [
                manifests.Manifest(o["obj"], o["file"], o["document"], o["line"])
                for o in request.get("manifests", [])
            ]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return 400, {
                "error": "the body must be JSON {namespace, manifests: [{obj, file, document, "
                f"line}}]}}: {type(exc).__name__}: {exc}"
            }
        try:
            loaded = manifests.classify(items, ns)
            known = {_fqdn(s) for s in self.services.values()}
            manifests.check(loaded, ns, known)
            self.apply_workloads(
                [manifests.with_namespace(m.obj, ns) for m in loaded.services],
                [manifests.with_namespace(m.obj, ns) for m in loaded.deployments],
                [manifests.with_namespace(m.obj, ns) for m in loaded.istio],
                [manifests.with_namespace(m.obj, ns) for m in loaded.secrets],
            )  # publishes the read-only kinds itself
            self.write_state(ready=True)
        except ManifestError as exc:
            return 422, {"error": str(exc)}
        except ApiError as exc:
            return exc.code, {"error": exc.message}
        except OSError as exc:
            if disk_full(exc):
                return 507, {"error": self.disk_full_message(exc)}
            return 422, {"error": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:
            return 422, {"error": f"{type(exc).__name__}: {exc}"}
        return 200, {"notes": loaded.notes, **(self.state.read() or {})}

    def _handle_status(
        self, method: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        return 200, self.status()

    def _handle_shutdown(
        self, method: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        if method != "POST":
            return 405, {"error": "POST to shut the mesh down"}
        threading.Timer(0.05, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
        return 202, {"stopping": os.getpid()}

    def _health(self) -> dict[int, str]:
        """Endpoint port -> health as Envoy's /clusters reports it."""
        health: dict[int, str] = {}
        try:
            with urllib.request.urlopen(f"{self.admin_url()}/clusters?format=json", timeout=2) as r:
                doc = json.loads(r.read())
        except (OSError, ValueError):
            return health
        for cluster in doc.get("cluster_statuses", []):
            if not str(cluster.get("name", "")).startswith("outbound|"):
                continue
            for host in cluster.get("host_statuses", []):
                port = ((host.get("address") or {}).get("socket_address") or {}).get("port_value")
                status = host.get("health_status") or {}
                if status.get("failed_outlier_check"):
                    verdict = "ejected (outlier detection)"
                elif status.get("eds_health_status", "HEALTHY") != "HEALTHY":
                    verdict = str(status.get("eds_health_status")).lower()
                else:
                    verdict = "healthy"
                if port and health.get(port, "healthy") == "healthy":
                    health[int(port)] = verdict
        return health

    def status(self) -> dict[str, Any]:
        health = self._health()
        services, gateways = self._entries()
        for entry in services:
            service = self.services[(entry["namespace"], entry["name"])]
            selector = (service.get("spec") or {}).get("selector") or {}
            entry["endpoints"] = [
                {
                    "pod": r.pod,
                    "address": f"127.0.0.1:{r.port}",
                    "process": _process_state(r),
                    "health": health.get(r.port, "unknown"),
                }
                for reps in self.replicas.values()
                for r in reps
                if r.namespace == entry["namespace"]
                and selector
                and all(r.labels.get(k) == v for k, v in selector.items())
            ]
        istio = []
        for rt in resources.ISTIO_TYPES:
            items, _ = self.store.list_objects(rt, None)
            for obj in items:
                meta = obj["metadata"]
                istio.append(
                    {
                        "kind": rt.kind,
                        "namespace": meta.get("namespace"),
                        "name": meta["name"],
                        "generation": meta.get("generation"),
                        "resourceVersion": meta.get("resourceVersion"),
                        "config_version": self.store.applied_version(
                            rt, meta.get("namespace", ""), meta["name"]
                        ),
                    }
                )
        proc = getattr(self.envoy, "_proc", None)
        logs = self.logs.usage().to_json() if self.logs is not None else None
        return {
            "services": services,
            "gateways": gateways,
            "istio": istio,
            "envoy": {
                "pid": self.envoy.pid,
                "running": proc is not None and proc.poll() is None,
                **self.envoy.supervision(),
                "config_version": self.envoy.version,
                "admin_url": self.admin_url(),
            },
            "logs": logs,
            "api_url": self.api.url if self.api else None,
        }


def _process_state(replica: Replica) -> str:
    """``running``, ``exited``, or for a command whose program crashed ``restarting (N)``."""
    if not replica.alive:
        return "exited"
    if not replica.program_running:
        return f"restarting ({replica.restarts})"
    return "running" if not replica.restarts else f"running ({replica.restarts} restarts)"


def describe(state: dict[str, Any]) -> str:
    """What ``mesh up`` prints once the mesh serves: API, kubeconfig, one line per URL."""
    lines = [f"mesh up: API {state.get('api_url')}", f"  kubeconfig: {state.get('kubeconfig')}"]
    if state.get("metrics_url"):
        lines.append(f"  metrics:    {state['metrics_url']}")
    if state.get("prometheus_url"):
        lines.append(f"  prometheus: {state['prometheus_url']}")
    for entry in state.get("services", []):
        lines.append(
            f"  service {entry['namespace']}/{entry['name']}:{entry['port']}  "
            f"{entry['url']}  (Host: {entry['host_header']})"
        )
    for entry in state.get("gateways", []):
        host = f"  (Host: {entry['host_header']})" if entry.get("host_header") else ""
        lines.append(
            f"  gateway {entry['namespace']}/{entry['name']}:{entry['port']}  {entry['url']}{host}"
        )
    lines += [f"warning: {text}" for text in state.get("warnings") or []]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    state = StateDir(Path(args.state_dir))
    try:
        lock = acquire_lock(state)
    except AlreadyRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    mesh: Mesh | None = None
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()
        if mesh is not None:
            # Still starting: give up waiting for workloads, then stop what was started.
            mesh.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        try:
            loaded = manifests.classify(manifests.load(args.file or []), args.namespace)
            manifests.check(loaded, args.namespace)
            for note in loaded.notes:
                print(f"note: {note}", flush=True)
            mesh = Mesh(state, args.namespace, args.concurrency, args.prometheus, args.log_cap)
            mesh.up(loaded)
        except Exception as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        print(describe(state.read() or {}), flush=True)
        while not stop.wait(0.5):
            pass
        return 0
    finally:
        if mesh is not None:
            mesh.stop()
        state.clear()
        lock.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chaosmesh_ext.mesh.daemon")
    p.add_argument("-f", "--file", action="append", default=[])
    p.add_argument("--namespace", default="default")
    p.add_argument("--state-dir", default=".chaosmesh")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--prometheus", action="store_true")
    p.add_argument("--log-cap", type=parse_size, default=DEFAULT_LOG_CAP)
    return p


def main(argv: list[str] | None = None) -> int:
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
