"""The embedded mesh's istiod: Kubernetes/Istio objects in, Envoy v3 JSON out, no I/O.

``translate(snapshot)`` is pure and deterministic: the same snapshot gives the same resources
in the same order, so the Envoy adapter can skip pushes that change nothing. One module per
Istio field group, as in istiod: ``clusters`` (DestinationRule), ``routes`` with ``matches``,
``headers``, ``retries``, ``faults``, ``cors``, ``mirrors`` (VirtualService http), ``sidecar``
and ``gateways`` (route configurations), ``listeners`` / ``access_log`` (listeners and their
HTTP connection manager); ``names`` and ``context`` hold what they share.
"""

from __future__ import annotations

from .clusters import build_clusters, destination_rules_by_host, service_fqdn, service_ports
from .gateways import build_gateways
from .listeners import build_listener
from .model import Endpoint, EnvoyResources, MeshSnapshot, TranslationWarning
from .names import ListenerName, cluster_name
from .sidecar import outbound_route_configs

__all__ = [
    "Endpoint",
    "EnvoyResources",
    "ListenerName",
    "MeshSnapshot",
    "TranslationWarning",
    "cluster_name",
    "translate",
]


def translate(snapshot: MeshSnapshot) -> EnvoyResources:
    """istiod's output for one Envoy that is every sidecar and the ingress gateway at once.

    ``EnvoyResources.warnings`` says what the user should hear about (DestinationRules merged
    or not applied, HTTPS servers without their Secret...); it is not sent to Envoy.
    """
    notes: list[TranslationWarning] = []
    fqdn_ports = {service_fqdn(s, snapshot.domain): service_ports(s) for s in snapshot.services}
    rules = destination_rules_by_host(snapshot, notes)
    clusters = build_clusters(snapshot, rules)
    sidecar_routes = outbound_route_configs(snapshot, rules)
    gateway_routes, gateway_listeners = build_gateways(snapshot, fqdn_ports, rules, notes)
    listeners = []
    for config in sidecar_routes:
        listener = ListenerName.outbound(int(config["name"]))
        listeners.append(
            build_listener(
                str(listener),
                snapshot.listener_ports.get(str(listener), 0),
                listener.route_config,
                listener.stat_prefix,
                snapshot.access_log_dir,
            )
        )
    return EnvoyResources(
        listeners=listeners + gateway_listeners,
        clusters=clusters,
        routes=sidecar_routes + gateway_routes,
        warnings=notes,
    )
