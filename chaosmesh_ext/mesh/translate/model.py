"""The translator's input (a snapshot of the mesh's Kubernetes objects) and output (Envoy v3 JSON).

Pure data: ``MeshSnapshot`` is what the daemon hands over, ``EnvoyResources`` what the Envoy
process writes to its xDS files. Both sides are plain dicts so the translator never needs the
Kubernetes or Envoy protobuf libraries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"


@dataclass(frozen=True)
class Endpoint:
    """One workload replica: a pod as Istio sees it, served on a local port.

    Every Service targetPort of the pod maps to ``port`` (a local process has one port).
    """

    pod: str
    namespace: str
    labels: Mapping[str, str]
    address: str
    port: int


@dataclass(frozen=True)
class TranslationWarning:
    """Something the translation did that a user should hear about (a merge conflict, a
    missing Secret...): which object, which field, what. The API sends it as a ``Warning:``."""

    kind: str
    namespace: str
    name: str
    field: str
    message: str

    @property
    def text(self) -> str:
        return f"{self.field}: {self.message}"

    @property
    def about(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}: {self.text}"


@dataclass
class MeshSnapshot:
    """Everything istiod would read from the cluster, as Kubernetes dicts.

    ``listener_ports`` maps a listener name (``0.0.0.0_<port>``, ``gateway_<port>``) to the
    local port the daemon chose for it; a listener missing from the map binds port 0.
    ``access_log_dir`` is where the HCM access logs go (``None``: no access log).
    ``secrets`` are the ``kubernetes.io/tls`` Secrets an HTTPS Gateway server may name in
    ``credentialName``; ``fallback_certificate`` (PEM certificate, PEM key) is served, with a
    warning, by an HTTPS server whose Secret is missing (None: such a server is not served).
    """

    services: list[JSON] = field(default_factory=list)
    virtual_services: list[JSON] = field(default_factory=list)
    destination_rules: list[JSON] = field(default_factory=list)
    gateways: list[JSON] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)
    listener_ports: dict[str, int] = field(default_factory=dict)
    domain: str = "cluster.local"
    access_log_dir: str | None = None
    secrets: list[JSON] = field(default_factory=list)
    fallback_certificate: tuple[str, str] | None = None


@dataclass
class EnvoyResources:
    """Envoy v3 resources (JSON dicts with ``@type``), in a deterministic order."""

    listeners: list[JSON] = field(default_factory=list)
    clusters: list[JSON] = field(default_factory=list)
    routes: list[JSON] = field(default_factory=list)
    # Not sent to Envoy: what the user should hear about this configuration.
    warnings: list[TranslationWarning] = field(default_factory=list, compare=False)

    def cluster(self, name: str) -> JSON:
        """The cluster called ``name`` (KeyError if there is none)."""
        return _by_name(self.clusters, name, "cluster")

    def route_config(self, name: str) -> JSON:
        """The RouteConfiguration called ``name`` (KeyError if there is none)."""
        return _by_name(self.routes, name, "route configuration")

    def listener(self, name: str) -> JSON:
        """The listener called ``name`` (KeyError if there is none)."""
        return _by_name(self.listeners, name, "listener")


def _by_name(items: list[JSON], name: str, what: str) -> JSON:
    for item in items:
        if item.get("name") == name:
            return item
    raise KeyError(f"no {what} named {name!r}")
