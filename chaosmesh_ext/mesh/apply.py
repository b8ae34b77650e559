"""The apply transaction: what the mesh runs, and the only two ways it changes.

``Applier`` holds the Services, the Deployments with their running replicas, and the local
port of every listener. It changes them in two ways, both serialised by the store's write
lock:

- ``apply(services, deployments, istio)`` (``mesh up``, ``mesh up -f`` on a running mesh):
  starts replicas of new or changed Deployments, waits until they serve, then makes Envoy
  serve everything in one push. All or nothing: if a replica crashes, or the store or Envoy
  refuses the result, the Services, Deployments, replicas, listener ports and Istio objects
  stay as they were (and Envoy serves what it served).
- ``push(istio)``, the store's apply hook for every Istio write through the API: translate
  the candidate state and return only once Envoy serves it (the store commits after).

After each change the read-only kinds the API shows are republished (``publish``).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from chaosmesh_ext._sidecar import Sidecar, format_outbound

from . import admission, views
from .api import ApplyRejected, Store, resources, tls
from .api.warnings import warn
from .envoy import EnvoyError, EnvoyProcess, EnvoyRejected
from .listener_name import OUTBOUND, ListenerName
from .paths import GATEWAY_FALLBACK_CERT, StatePaths
from .readiness import Replica, log_size, wait_all_ready
from .state import start_time
from .translate import Endpoint, Memo, MeshSnapshot, translate
from .translate.gateways import needs_fallback_certificate
from .views import Key, key_of
from .xds_files import atomic_write

WORKLOAD_READY_TIMEOUT = 30.0
ENVOY_APPLY_TIMEOUT = 5.0


def free_port() -> int:
    """A loopback port the OS hands out now (other programs hold fixed ports here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((views.LOOPBACK, 0))
        return int(sock.getsockname()[1])


def stop_replicas(replicas: list[Replica]) -> None:
    """SIGTERM every replica (each kind exits at once), SIGKILL any still there after 5 s."""
    for replica in replicas:
        if replica.alive:
            replica.process.terminate()
    for replica in replicas:
        try:
            replica.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait(timeout=5)


class Applier:
    """Services, Deployments, replicas and listener ports, changed only all or nothing."""

    def __init__(
        self,
        paths: StatePaths,
        namespace: str,
        envoy: EnvoyProcess,
        cancel: threading.Event,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        """``cancel`` gives up waiting for replicas (the daemon is stopping); ``on_change`` is
        called whenever what ``mesh.json`` describes changed: processes started or stopped,
        or Envoy accepted a push."""
        self.paths = paths
        self.namespace = namespace
        self.envoy = envoy
        self.envoy_started = False
        self.cancel = cancel
        self.on_change = on_change
        self.services: dict[Key, dict[str, Any]] = {}
        self.deployments: dict[Key, dict[str, Any]] = {}
        self.replicas: dict[Key, list[Replica]] = {}
        self.listener_ports: dict[ListenerName, int] = {}
        # The Istio objects Envoy serves now (the last accepted push): what mesh.json, `mesh
        # status` and `mesh url` list, so they agree with the API once a write returns.
        self.served: dict[str, list[dict[str, Any]]] = {}
        # kubernetes.io/tls Secrets from the manifests (HTTPS Gateway servers' certificates),
        # the self-signed one served when a server's Secret is missing, made on first need.
        self.secrets: dict[Key, dict[str, Any]] = {}
        self.fallback_certificate: tuple[str, str] | None = None
        self.translation_warnings: list[str] = []  # what translating the served state said
        # What the translation of the served state computed, reused by the next one for the
        # objects a write leaves as they were: a change costs what it touches.
        self.memo = Memo()
        self._outbound_text: str | None = None  # the sidecars' table as last written
        # Replicas started but not yet committed (waiting to accept): recorded in mesh.json
        # too, so `mesh down` finds them even if the daemon is killed meanwhile.
        self.starting: list[Replica] = []
        self.store = Store(validate=admission.validate, apply=self.push, advise=admission.warnings)

    # ---- reads ---------------------------------------------------------------------------
    def all_replicas(self) -> list[Replica]:
        return [r for reps in self.replicas.values() for r in reps]

    def served_gateways(self) -> list[dict[str, Any]]:
        """The Gateways Envoy serves now (a write the store is still pushing is not one yet)."""
        return self.served.get("gateways", [])

    def listeners(self) -> dict[str, int]:
        """Listener name -> local port, as ``mesh.json`` and the translator spell them."""
        return dict(sorted((str(name), port) for name, port in self.listener_ports.items()))

    def outbound(self) -> dict[int, tuple[str, int]]:
        """The sidecars' table: Service port -> the outbound listener serving it."""
        return {
            name.port: (views.LOOPBACK, port)
            for name, port in self.listener_ports.items()
            if name.kind == OUTBOUND
        }

    # ---- the store's apply hook ----------------------------------------------------------
    def _reserve_listener_ports(self, istio: dict[str, list[dict[str, Any]]]) -> None:
        """A fixed local port for every Service port and Gateway server port, kept for life."""
        for name in views.listener_names(self.services.values(), istio.get("gateways", [])):
            if name not in self.listener_ports:
                self.listener_ports[name] = free_port()

    def _fallback_certificate(
        self, gateways: list[dict[str, Any]], secrets: list[dict[str, Any]]
    ) -> tuple[str, str] | None:
        """The self-signed certificate an HTTPS server without its Secret serves (with a
        warning), made once, the first time one needs it."""
        if self.fallback_certificate is None and needs_fallback_certificate(gateways, secrets):
            cert = tls.make_in_child(
                self.paths.root, name=GATEWAY_FALLBACK_CERT, common_name="chaosmesh-gateway"
            )
            self.fallback_certificate = (cert.cert_pem.decode(), cert.key_path.read_text())
        return self.fallback_certificate

    def _snapshot(self, istio: dict[str, list[dict[str, Any]]]) -> MeshSnapshot:
        self._reserve_listener_ports(istio)
        secrets = list(self.secrets.values())
        gateways = istio.get("gateways", [])
        return MeshSnapshot(
            services=list(self.services.values()),
            virtual_services=istio.get("virtualservices", []),
            destination_rules=istio.get("destinationrules", []),
            gateways=gateways,
            endpoints=[
                Endpoint(r.pod, r.namespace, dict(r.labels), views.LOOPBACK, r.port)
                for r in self.all_replicas()
            ],
            listener_ports=self.listeners(),
            domain=views.DOMAIN,
            access_log_dir=str(self.paths.root),
            secrets=secrets,
            fallback_certificate=self._fallback_certificate(gateways, secrets),
        )

    def push(self, istio: dict[str, list[dict[str, Any]]]) -> str:
        """Translate the candidate state and make Envoy serve it; the store commits after."""
        listeners_before = dict(self.listener_ports)
        try:
            envoy_resources = translate(self._snapshot(istio), self.memo)
        except (ValueError, KeyError, TypeError) as exc:
            raise ApplyRejected(f"translation failed: {exc}") from None
        try:
            if not self.envoy_started:
                version = self.envoy.start(envoy_resources)
                self.envoy_started = True
            else:
                version = self.envoy.apply(envoy_resources, timeout=ENVOY_APPLY_TIMEOUT)
            # Only now do the listeners exist: tell running workloads about new ones.
            self._write_outbound()
            warnings = [str(w) for w in envoy_resources.warnings]
            # mesh.json lists the Gateways' URLs, the listeners and these warnings: rewrite
            # it when one of them changed (a Gateway created or deleted with kubectl), not
            # on every change of a route.
            shown = (
                istio.get("gateways") != self.served.get("gateways")
                or warnings != self.translation_warnings
                or listeners_before != self.listener_ports
            )
            self.served = istio
            self.translation_warnings = warnings
            for warning in envoy_resources.warnings:
                warn(warning.text, warning.about)  # a `Warning:` header if a request is served
            if shown:
                self.on_change()
            return version
        except EnvoyRejected as exc:
            raise ApplyRejected(exc.reason) from None
        except EnvoyError as exc:
            raise ApplyRejected(f"Envoy did not confirm the change: {exc}") from None

    # ---- workloads -----------------------------------------------------------------------
    def _write_outbound(self) -> None:
        """The sidecars' outbound table, replaced atomically when it changed (every workload
        re-reads it when it is replaced)."""
        text = json.dumps(format_outbound(self.outbound()))
        if text != self._outbound_text or not self.paths.outbound_file.exists():
            atomic_write(self.paths.outbound_file, text)
            self._outbound_text = text

    def _start_replicas(self, deployment: dict[str, Any]) -> list[Replica]:
        from .workloads import launch, replica_count, replica_specs

        # The workloads layer reads kind, pod names, labels, version and annotations from the
        # manifest (a canary may label its pods `app: v1` and no `version`); this adds ports
        # and the sidecar that follows the mesh's outbound listeners.
        ports = [free_port() for _ in range(replica_count(deployment))]
        specs = replica_specs(
            deployment, ports, self.outbound(), self.paths.workload_logs, self.namespace
        )
        started: list[Replica] = []
        try:
            for wspec in specs:
                sidecar = Sidecar(
                    outbound=self.outbound(),
                    workload=wspec.deployment,
                    namespace=wspec.namespace,
                    labels=dict(wspec.labels),
                    outbound_file=str(self.paths.outbound_file),
                )
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
            stop_replicas(started)
            raise
        return started

    def apply(
        self,
        services: list[dict[str, Any]],
        deployments: list[dict[str, Any]],
        istio: list[dict[str, Any]] | None = None,
        secrets: list[dict[str, Any]] | None = None,
    ) -> None:
        """Add or update Services and Deployments (restarting only changed Deployments),
        kubernetes.io/tls Secrets and, when ``istio`` is given, those Istio objects too, in the
        same single Envoy push.

        All or nothing: if a new replica crashes, or the store or Envoy refuses the result,
        the mesh keeps the Services, Deployments, replicas, Secrets, listener ports and Istio
        objects it had (and serves what it served).
        """
        with self.store.writing():
            saved = (dict(self.services), dict(self.deployments), dict(self.replicas))
            saved_ports = dict(self.listener_ports)
            saved_secrets = dict(self.secrets)
            fresh: dict[Key, list[Replica]] = {}
            try:
                for secret in secrets or []:
                    self.secrets[key_of(secret)] = secret
                for service in services:
                    self.services[key_of(service)] = service
                changed = [d for d in deployments if self.deployments.get(key_of(d)) != d]
                # Listener ports first: new workloads learn every outbound listener from env.
                self._reserve_listener_ports(self.store.istio_state())
                for deployment in changed:
                    fresh[key_of(deployment)] = self._start_replicas(deployment)
                    if fresh[key_of(deployment)]:  # a Deployment scaled to zero starts nothing
                        self.starting = [r for reps in fresh.values() for r in reps]
                        self.on_change()
                wait_all_ready(self.starting, WORKLOAD_READY_TIMEOUT, cancel=self.cancel)
                for deployment in changed:
                    self.deployments[key_of(deployment)] = deployment
                self.replicas.update(fresh)
                if istio:
                    # One push for workloads and Istio objects: a refusal leaves both as
                    # they were (the store commits nothing, Envoy keeps its last good config).
                    self.store.load_istio(istio, self.namespace)
                elif self.envoy_started:
                    # On a refusal Envoy keeps serving the last good configuration.
                    self.push(self.store.istio_state())
            except BaseException:
                self.services, self.deployments, self.replicas = saved
                self.listener_ports = saved_ports
                self.secrets = saved_secrets
                for reps in fresh.values():
                    stop_replicas(reps)
                raise
            finally:
                self.starting = []
                if fresh:
                    self.on_change()  # what runs now, after a commit or a rollback
            for key in fresh:
                stop_replicas(saved[2].get(key, []))
            self.publish()

    def stop(self) -> None:
        for reps in self.replicas.values():
            stop_replicas(reps)

    # ---- the read-only kinds the API shows -------------------------------------------------
    def publish(self) -> None:
        """Show Namespaces, Services, Deployments and Pods as they run now (read-only kinds)."""
        with self.store.writing():
            namespaces = {self.namespace, "default"}
            namespaces |= {ns for ns, _ in self.services} | {ns for ns, _ in self.deployments}
            for items in self.store.istio_state().values():
                namespaces |= {o["metadata"].get("namespace", "default") for o in items}
            self.store.set_readonly(resources.NAMESPACES, views.namespace_objects(namespaces))
            self.store.set_readonly(
                resources.SERVICES, views.service_objects(self.services.values())
            )
            self.store.set_readonly(
                resources.DEPLOYMENTS, views.deployment_objects(self.deployments, self.replicas)
            )
            self.store.set_readonly(
                resources.PODS, views.pod_objects(self.deployments, self.replicas)
            )
