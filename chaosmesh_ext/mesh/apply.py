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

A third, the pod controller (``pods.controller``), deletes, replaces and scales replicas
through the same lock (``start_replicas``, ``scale``, ``push``, ``publish``).

After each change the kinds the API shows for what runs are republished (``publish``):
Deployments with their defaults and status, one Pod per replica. Envoy balances load over
the replicas that serve and are not being deleted (``Replica.in_endpoints``).

A full state directory refuses a change with 507 (``api.status.insufficient_storage``)
before Envoy sees any of it: every file the change writes is written aside first.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from chaosmesh_ext._sidecar import Sidecar, format_outbound

from . import admission, views
from .api import ApplyRejected, Store, resources, tls
from .api.status import insufficient_storage
from .api.warnings import warn
from .envoy import EnvoyError, EnvoyProcess, EnvoyRejected
from .listener_name import OUTBOUND, ListenerName
from .logs import DEFAULT_LOG_CAP, format_size, log_size
from .paths import GATEWAY_FALLBACK_CERT, StatePaths
from .pods.runtime import Launcher
from .ports import PortReservations
from .readiness import Replica, wait_all_ready
from .state import start_time
from .translate import Endpoint, Memo, MeshSnapshot, translate
from .translate.gateways import needs_fallback_certificate
from .views import Key, key_of
from .workloads.kinds import COMMAND_KIND
from .xds_files import Staged, atomic_write, disk_full

WORKLOAD_READY_TIMEOUT = 30.0
ENVOY_APPLY_TIMEOUT = 5.0


def stop_replicas(replicas: Sequence[Replica]) -> None:
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
        launcher: Launcher | None = None,
        on_served: Callable[[], None] | None = None,
        log_cap: int = DEFAULT_LOG_CAP,
    ) -> None:
        """``cancel`` gives up waiting for replicas (the daemon is stopping); ``on_change`` is
        called whenever what ``mesh.json`` describes changed: processes started or stopped;
        ``on_served`` (by default ``on_change``) once Envoy accepted a push — it must not
        raise for a full disk, the change is served already. ``launcher`` starts a replica
        (default: a process of its own, ``workloads.launch``). ``log_cap`` is only named in
        the message of a full disk."""
        self.paths = paths
        self.namespace = namespace
        self.envoy = envoy
        self.envoy_started = False
        self.cancel = cancel
        self.on_change = on_change
        self.on_served = on_served or on_change
        self.log_cap = log_cap
        self.services: dict[Key, dict[str, Any]] = {}
        self.deployments: dict[Key, dict[str, Any]] = {}
        self.replicas: dict[Key, list[Replica]] = {}
        self.listener_ports: dict[ListenerName, int] = {}
        # Every listener's and replica's port stays reserved while the mesh may bind it, so
        # no other program takes it between our choice and Envoy's (or a replica's) bind.
        self.ports = PortReservations(views.LOOPBACK)
        self._ports_reserved_for: tuple[Any, ...] = ()  # the objects last given ports
        self._outbound_written: dict[int, tuple[str, int]] | None = None  # the table on disk
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
        self._last_described: tuple[Any, ...] | None = None  # what on_served last showed
        # Replicas started but not yet committed (waiting to accept): recorded in mesh.json
        # too, so `mesh down` finds them even if the daemon is killed meanwhile.
        self.starting: list[Replica] = []
        # Force-deleted replicas (grace period 0): gone from the API, their process not yet
        # reaped; mesh.json keeps listing them so `mesh down` finds them.
        self.reaping: list[Replica] = []
        # spec.replicas set through the API (a scale), over the manifest's, until a new
        # manifest for that Deployment is applied; and each Deployment's generation.
        self.scaled: dict[Key, int] = {}
        self.generations: dict[Key, int] = {}
        self.launcher = launcher
        self.store = Store(validate=admission.validate, apply=self.push, advise=admission.warnings)

    # ---- reads ---------------------------------------------------------------------------
    def all_replicas(self) -> list[Replica]:
        return [r for reps in self.replicas.values() for r in reps]

    def desired_replicas(self, key: Key) -> int:
        """How many replicas the Deployment ``key`` should have now."""
        from .workloads import replica_count

        if key in self.scaled:
            return self.scaled[key]
        return replica_count(self.deployments[key])

    def live_deployments(self) -> dict[Key, dict[str, Any]]:
        """The Deployments as the API shows them: the manifest, with the replicas wanted now."""
        return {
            key: {
                **deployment,
                "spec": {**(deployment.get("spec") or {}), "replicas": self.desired_replicas(key)},
            }
            for key, deployment in self.deployments.items()
        }

    def scale(self, key: Key, replicas: int) -> None:
        """Want ``replicas`` of ``key`` from now on (the pod controller adds or removes them)."""
        self.scaled[key] = replicas
        self.generations[key] = self.generations.get(key, 1) + 1

    def served_gateways(self) -> list[dict[str, Any]]:
        """The Gateways Envoy serves now (a write the store is still pushing is not one yet)."""
        return self.served.get("gateways", [])

    def _described(self) -> tuple[Any, ...]:
        """What mesh.json shows of the served state (``push`` rewrites it when this changes)."""
        return (
            self.served.get("gateways"),
            tuple(self.translation_warnings),
            tuple(self.listener_ports.items()),
            tuple(self.services),
            views.endpoint_records(self.all_replicas()),
        )

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
        """A fixed local port for every Service port and Gateway server port, kept for life
        (looked for again only when the Services or Gateways are other objects)."""
        objects = (*self.services.values(), None, *istio.get("gateways", []))
        last = self._ports_reserved_for
        if len(last) == len(objects) and all(a is b for a, b in zip(last, objects, strict=True)):
            return
        for name in views.listener_names(self.services.values(), istio.get("gateways", [])):
            if name not in self.listener_ports:
                self.listener_ports[name] = self.ports.reserve()
        self._ports_reserved_for = objects

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
                if r.in_endpoints
            ],
            listener_ports=self.listeners(),
            domain=views.DOMAIN,
            access_log_dir=str(self.paths.root),
            secrets=secrets,
            fallback_certificate=self._fallback_certificate(gateways, secrets),
        )

    def push(self, istio: dict[str, list[dict[str, Any]]]) -> str:
        """Translate the candidate state and make Envoy serve it; the store commits after.

        A full state directory refuses the write with 507 before Envoy sees any of it: every
        file the change needs is written aside first (xDS files, the sidecars' table).
        """
        try:
            envoy_resources = translate(self._snapshot(istio), self.memo)
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
                self._outbound_written = self.outbound()
            warnings = [str(w) for w in envoy_resources.warnings]
            self.served = istio
            self.translation_warnings = warnings
            for warning in envoy_resources.warnings:
                warn(warning.text, warning.about)  # a `Warning:` header if a request is served
            # mesh.json lists the Gateways' URLs, the listeners, the endpoints and these
            # warnings: rewritten when one of them changed (a Gateway created or deleted with
            # kubectl, a replica started), not on every change of a route.
            described = self._described()
            if described != self._last_described:
                self._last_described = described
                self.on_served()
            return version
        except EnvoyRejected as exc:
            raise ApplyRejected(exc.reason) from None
        except EnvoyError as exc:
            raise ApplyRejected(f"Envoy did not confirm the change: {exc}") from None
        except OSError as exc:
            if disk_full(exc):
                raise insufficient_storage(self.disk_full_message(exc)) from None
            raise
        finally:
            outbound.discard()

    def disk_full_message(self, exc: OSError) -> str:
        """What a 507 says: which directory, that nothing changed, what to do."""
        return (
            f"the embedded mesh cannot write to its state directory {self.paths.root}: "
            f"{exc.strerror or exc}. Nothing was changed: Envoy keeps serving the previous "
            "configuration. Free space on that filesystem (the mesh's logs take at most "
            f"{format_size(self.log_cap)}, 'mesh up --log-cap') and retry"
        )

    # ---- workloads -----------------------------------------------------------------------
    def _write_outbound(self) -> None:
        """The sidecars' outbound table, replaced atomically now (workloads re-read it on
        change): before new workloads start, so none reads a table without their listeners'
        ports, and after a rolled-back change."""
        table = self.outbound()
        try:
            atomic_write(self.paths.outbound_file, json.dumps(format_outbound(table)))
        except OSError as exc:
            if disk_full(exc):
                raise insufficient_storage(self.disk_full_message(exc)) from None
            raise
        self._outbound_written = table

    def _stage_outbound(self, staged: Staged) -> None:
        """The sidecars' outbound table, written aside when it changes (workloads re-read it
        when it is renamed in place); Istio writes alone never change it."""
        table = self.outbound()
        if table != self._outbound_written:
            staged.add("outbound", self.paths.outbound_file, json.dumps(format_outbound(table)))

    def start_replicas(
        self, deployment: dict[str, Any], pods: Sequence[str] | None = None
    ) -> list[Replica]:
        """Start the replicas of ``deployment`` (its ``spec.replicas``, or one per name in
        ``pods``); they are starting until their port accepts. Nothing is left running on a
        failure."""
        from .workloads import launch, replica_count, replica_specs

        launcher = self.launcher or launch
        # The workloads layer reads kind, pod names, labels, version and annotations from the
        # manifest (a canary may label its pods `app: v1` and no `version`); this adds ports
        # and the sidecar that follows the mesh's outbound listeners.
        count = replica_count(deployment) if pods is None else len(pods)
        ports = [self.ports.reserve() for _ in range(count)]
        started: list[Replica] = []
        try:
            specs = replica_specs(
                deployment, ports, self.outbound(), self.paths.workload_logs, self.namespace, pods
            )
            for wspec in specs:
                sidecar = Sidecar(
                    outbound=self.outbound(),
                    workload=wspec.deployment,
                    namespace=wspec.namespace,
                    labels=dict(wspec.labels),
                    outbound_file=str(self.paths.outbound_file),
                )
                offset = log_size(wspec.log_path)
                if wspec.kind == COMMAND_KIND:
                    # The user's program binds its port without SO_REUSEPORT: hand it over.
                    self.ports.release(wspec.port)
                created = time.time()
                process = launcher(dataclasses.replace(wspec, sidecar=sidecar))
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
                        created_at=created,
                    )
                )
        except BaseException:
            self._retire(started)
            self.ports.release(*ports)
            raise
        return started

    def _retire(self, replicas: Sequence[Replica]) -> None:
        """Stop replicas for good and give their ports back."""
        stop_replicas(replicas)
        self.ports.release(*(r.port for r in replicas))

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
            saved_scale = (dict(self.scaled), dict(self.generations))
            fresh: dict[Key, list[Replica]] = {}
            try:
                for secret in secrets or []:
                    self.secrets[key_of(secret)] = secret
                for service in services:
                    self.services[key_of(service)] = service
                changed = [d for d in deployments if self.deployments.get(key_of(d)) != d]
                # Listener ports first: new workloads learn every outbound listener from env,
                # and from the file, written before any of them starts.
                self._reserve_listener_ports(self.store.istio_state())
                self._write_outbound()
                for deployment in changed:
                    fresh[key_of(deployment)] = self.start_replicas(deployment)
                    if fresh[key_of(deployment)]:  # a Deployment scaled to zero starts nothing
                        self.starting = [r for reps in fresh.values() for r in reps]
                        self.on_change()
                wait_all_ready(self.starting, WORKLOAD_READY_TIMEOUT, cancel=self.cancel)
                for deployment in changed:
                    key = key_of(deployment)
                    self.deployments[key] = deployment
                    # A new manifest: its spec.replicas again, a new generation.
                    self.scaled.pop(key, None)
                    self.generations[key] = self.generations.get(key, 0) + 1
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
                self.ports.release(
                    *(p for name, p in self.listener_ports.items() if name not in saved_ports)
                )
                self.listener_ports = saved_ports
                self._ports_reserved_for = ()
                self.secrets = saved_secrets
                self.scaled, self.generations = saved_scale
                for reps in fresh.values():
                    self._retire(reps)
                self._write_outbound()
                raise
            finally:
                self.starting = []
                if fresh:
                    self.on_change()  # what runs now, after a commit or a rollback
            for key in fresh:
                self._retire(saved[2].get(key, []))
            self.publish()

    def stop(self) -> None:
        for reps in self.replicas.values():
            stop_replicas(reps)
        stop_replicas(self.reaping)
        self.ports.close()
        # This mesh's ports die with it: the next mesh's workloads must never read them.
        self.paths.outbound_file.unlink(missing_ok=True)

    # ---- the kinds the API shows for what runs ---------------------------------------------
    def publish(self) -> None:
        """Show Namespaces, Services, Deployments and Pods as they run now."""
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
                resources.DEPLOYMENTS,
                views.deployment_objects(
                    self.live_deployments(), self.replicas, self.generations, time.time()
                ),
            )
            self.store.set_readonly(
                resources.PODS, views.pod_objects(self.deployments, self.replicas)
            )
