"""What the running mesh looks like from outside: pure views over the daemon's state.

- the read-only kinds the API serves (Namespaces, Services, Deployments, Pods), built from
  the Services, Deployments and replicas the daemon runs;
- the service and gateway entries of ``mesh.json`` (local URL and Host header per port);
- the report behind ``mesh status`` and ``GET /chaosmesh/v1/status``;
- ``describe``: what ``mesh up`` prints once the mesh serves.

No I/O: the daemon (``lifecycle``) gathers the inputs and writes or serves the results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from .api.server import LOCAL_PORT_ANNOTATION
from .listener_name import ListenerName
from .pods import defaults, model
from .pods.model import PodLike

DOMAIN = "cluster.local"
LOOPBACK = "127.0.0.1"
WORKLOAD_ANNOTATION = "chaosmesh.io/workload"
PID_ANNOTATION = "chaosmesh.io/pid"

Key = tuple[str, str]  # (namespace, name)
JSON = dict[str, Any]


class ReplicaView(PodLike, Protocol):
    """What a view needs of one replica (``readiness.Replica`` is one)."""

    @property
    def kind(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def pid(self) -> int: ...
    @property
    def alive(self) -> bool: ...


def key_of(obj: Mapping[str, Any]) -> Key:
    """(namespace, name) of a Kubernetes object; ``default`` when the manifest names none."""
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "default", meta["name"]


def fqdn(service: Mapping[str, Any]) -> str:
    ns, name = key_of(service)
    return f"{name}.{ns}.svc.{DOMAIN}"


def _service_ports(service: Mapping[str, Any]) -> list[Any]:
    return list((service.get("spec") or {}).get("ports") or [])


def _gateway_ports(gateway: Mapping[str, Any]) -> list[tuple[Any, Mapping[str, Any]]]:
    """(port number, server) for every server of a Gateway."""
    return [
        ((server.get("port") or {}).get("number"), server)
        for server in (gateway.get("spec") or {}).get("servers") or []
    ]


def listener_names(
    services: Iterable[Mapping[str, Any]], gateways: Iterable[Mapping[str, Any]]
) -> list[ListenerName]:
    """Every listener these objects need: one per Service port and per Gateway server port."""
    names = [ListenerName.outbound(p["port"]) for s in services for p in _service_ports(s)]
    names += [ListenerName.gateway(n) for g in gateways for n, _ in _gateway_ports(g) if n]
    return names


# ---- the read-only kinds ------------------------------------------------------------------
def namespace_objects(namespaces: Iterable[str]) -> list[JSON]:
    return [
        {"metadata": {"name": ns}, "status": {"phase": "Active"}} for ns in sorted(set(namespaces))
    ]


def service_objects(services: Iterable[Mapping[str, Any]]) -> list[JSON]:
    """Services as the API shows them: headless ClusterIP unless the manifest says more."""
    return [
        {**s, "spec": {"type": "ClusterIP", "clusterIP": "None", **(s.get("spec") or {})}}
        for s in services
    ]


def deployment_objects(
    deployments: Mapping[Key, Mapping[str, Any]],
    replicas: Mapping[Key, Sequence[ReplicaView]],
    generations: Mapping[Key, int],
    now: float,
) -> list[JSON]:
    """Deployments as the API server stores them (defaults filled in, ``spec.replicas`` as
    wanted now), with the status their replicas give them."""
    out = []
    for key, deployment in deployments.items():
        shown = defaults.deployment(deployment)
        generation = generations.get(key, 1)
        meta = shown.setdefault("metadata", {})
        meta["generation"] = generation
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            "deployment.kubernetes.io/revision": "1",
        }
        shown["status"] = model.deployment_status(shown, replicas.get(key, []), generation, now)
        out.append(shown)
    return out


def pod_objects(
    deployments: Mapping[Key, Mapping[str, Any]], replicas: Mapping[Key, Sequence[ReplicaView]]
) -> list[JSON]:
    """One Pod per replica: its local port, workload kind and pid as annotations, phase and
    conditions as its life stands (``pods.model``)."""
    pods = []
    for key, reps in replicas.items():
        template = (deployments[key].get("spec") or {}).get("template") or {}
        for r in reps:
            annotations = {
                LOCAL_PORT_ANNOTATION: str(r.port),
                WORKLOAD_ANNOTATION: r.kind,
                PID_ANNOTATION: str(r.pid),
            }
            pods.append(
                model.pod_object(r, template, annotations, f"chaosmesh.io/workload/{r.kind}")
            )
    return pods


# ---- mesh.json ----------------------------------------------------------------------------
def _local_url(
    listener_ports: Mapping[ListenerName, int],
    listener: ListenerName | None,
    scheme: str = "http",
) -> str:
    port = listener_ports.get(listener) if listener is not None else None
    return f"{scheme}://{LOOPBACK}:{port}/"


def service_entries(
    services: Iterable[Mapping[str, Any]], listener_ports: Mapping[ListenerName, int]
) -> list[JSON]:
    """One entry per Service port: where to reach it from this machine, with which Host."""
    return [
        {
            "name": key_of(service)[1],
            "namespace": key_of(service)[0],
            "port": port["port"],
            "url": _local_url(listener_ports, ListenerName.outbound(port["port"])),
            "host_header": fqdn(service),
        }
        for service in services
        for port in _service_ports(service)
    ]


def gateway_entries(
    gateways: Iterable[Mapping[str, Any]], listener_ports: Mapping[ListenerName, int]
) -> list[JSON]:
    """One entry per Gateway server: its local URL and the first host that is not a wildcard."""
    entries = []
    for gateway in gateways:
        ns, name = key_of(gateway)
        for number, server in _gateway_ports(gateway):
            hosts = [h.split("/", 1)[-1] for h in server.get("hosts") or []]
            named = [h for h in hosts if "*" not in h]
            https = str((server.get("port") or {}).get("protocol") or "").upper() == "HTTPS"
            entries.append(
                {
                    "name": name,
                    "namespace": ns,
                    "port": number,
                    "url": _local_url(
                        listener_ports,
                        ListenerName.gateway(number) if number else None,
                        "https" if https else "http",
                    ),
                    "host_header": named[0] if named else None,
                }
            )
    return entries


def endpoint_records(replicas: Iterable[ReplicaView]) -> list[JSON]:
    """``mesh.json``'s ``endpoints``: every replica and the local port it serves on."""
    return [
        {
            "pod": r.pod,
            "namespace": r.namespace,
            "workload": r.deployment,
            "kind": r.kind,
            "labels": r.labels,
            "address": LOOPBACK,
            "port": r.port,
        }
        for r in replicas
    ]


# ---- mesh status --------------------------------------------------------------------------
def process_state(replica: ReplicaView) -> str:
    """``running``, ``starting``, ``terminating``, ``exited``, or for a command whose program
    crashed ``restarting (N)``."""
    if not replica.alive:
        return "exited"
    if replica.deletion is not None:
        return "terminating"
    if replica.serving_since is None:
        return "starting"
    if not replica.program_running:
        return f"restarting ({replica.restarts})"
    return "running" if not replica.restarts else f"running ({replica.restarts} restarts)"


def selected(service: Mapping[str, Any], replicas: Iterable[ReplicaView]) -> list[ReplicaView]:
    """The replicas a Service's selector picks in its namespace (none without a selector)."""
    ns, _ = key_of(service)
    selector = (service.get("spec") or {}).get("selector") or {}
    return [
        r
        for r in replicas
        if r.namespace == ns and selector and all(r.labels.get(k) == v for k, v in selector.items())
    ]


def service_status(
    services: Mapping[Key, Mapping[str, Any]],
    listener_ports: Mapping[ListenerName, int],
    replicas: Sequence[ReplicaView],
    health: Mapping[int, str],
) -> list[JSON]:
    """Service entries with their endpoints: address, process state, health as Envoy sees it."""
    entries = service_entries(services.values(), listener_ports)
    for entry in entries:
        service = services[(entry["namespace"], entry["name"])]
        entry["endpoints"] = [
            {
                "pod": r.pod,
                "address": f"{LOOPBACK}:{r.port}",
                "process": process_state(r),
                "health": health.get(r.port, "unknown"),
            }
            for r in selected(service, replicas)
        ]
    return entries


def istio_entry(kind: str, obj: Mapping[str, Any], config_version: str | None) -> JSON:
    """One Istio object in ``mesh status``: its versions and the Envoy config that has it."""
    meta = obj["metadata"]
    return {
        "kind": kind,
        "namespace": meta.get("namespace"),
        "name": meta["name"],
        "generation": meta.get("generation"),
        "resourceVersion": meta.get("resourceVersion"),
        "config_version": config_version,
    }


# ---- what `mesh up` prints ----------------------------------------------------------------
def describe(state: Mapping[str, Any]) -> str:
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
