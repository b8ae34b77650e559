"""The embedded mesh's istiod: Kubernetes/Istio objects in, Envoy v3 JSON out, no I/O.

``translate(snapshot)`` is pure and deterministic: the same snapshot gives the same resources
in the same order, so the Envoy adapter can skip pushes that change nothing. One module per
Istio field group, as in istiod: ``clusters`` (DestinationRule), ``routes`` with ``matches``,
``headers``, ``retries``, ``faults``, ``cors``, ``mirrors`` (VirtualService http), ``sidecar``
and ``gateways`` (route configurations), ``listeners`` / ``access_log`` (listeners and their
HTTP connection manager); ``names`` and ``context`` hold what they share.
"""

from __future__ import annotations

from .clusters import build_clusters, service_fqdn, service_ports
from .gateways import gateway_route_configs
from .listeners import build_listener
from .model import Endpoint, EnvoyResources, MeshSnapshot
from .names import ListenerName, cluster_name
from .sidecar import outbound_route_configs

__all__ = [
    "Endpoint",
    "EnvoyResources",
    "ListenerName",
    "MeshSnapshot",
    "cluster_name",
    "translate",
]


def translate(snapshot: MeshSnapshot) -> EnvoyResources:
    """istiod's output for one Envoy that is every sidecar and the ingress gateway at once."""
    fqdn_ports = {service_fqdn(s, snapshot.domain): service_ports(s) for s in snapshot.services}
    routes = outbound_route_configs(snapshot) + gateway_route_configs(snapshot, fqdn_ports)
    listeners = []
    for config in routes:
        listener = ListenerName.for_route_config(config["name"])
        listeners.append(
            build_listener(
                str(listener),
                snapshot.listener_ports.get(str(listener), 0),
                listener.route_config,
                listener.stat_prefix,
                snapshot.access_log_dir,
            )
        )
    return EnvoyResources(listeners=listeners, clusters=build_clusters(snapshot), routes=routes)
