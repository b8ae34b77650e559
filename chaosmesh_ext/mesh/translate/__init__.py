"""The embedded mesh's istiod: Kubernetes/Istio objects in, Envoy v3 JSON out, no I/O.

``translate(snapshot)`` is pure and deterministic: the same snapshot gives the same resources
in the same order, so the Envoy adapter can skip pushes that change nothing. One module per
Istio field group, as in istiod: ``clusters`` (DestinationRule), ``routes`` with ``matches``,
``headers``, ``retries``, ``faults``, ``cors``, ``mirrors`` (VirtualService http), ``sidecar``
and ``gateways`` (route configurations), ``listeners`` / ``access_log`` (listeners and their
HTTP connection manager); ``names`` and ``context`` hold what they share. ``facts`` reads
each VirtualService and Service once; ``memo`` lets a translation reuse what the previous one
computed from the objects a change left as they were, and ``vs_index`` keeps the
VirtualServices indexed (by age, host, Gateway) from one translation to the next.
"""

from __future__ import annotations

from .clusters import build_clusters, destination_rules_by_host
from .facts import snapshot_facts
from .gateways import build_gateways
from .hashing import route_rules
from .listeners import reused_listener
from .memo import Memo
from .model import Endpoint, EnvoyResources, MeshSnapshot, TranslationWarning
from .names import ListenerName, cluster_name
from .sidecar import headers_to_strip, label_keys, outbound_route_configs

__all__ = [
    "Endpoint",
    "EnvoyResources",
    "ListenerName",
    "Memo",
    "MeshSnapshot",
    "TranslationWarning",
    "cluster_name",
    "translate",
]


def translate(snapshot: MeshSnapshot, memo: Memo | None = None) -> EnvoyResources:
    """istiod's output for one Envoy that is every sidecar and the ingress gateway at once.

    ``EnvoyResources.warnings`` says what the user should hear about (DestinationRules merged
    or not applied, HTTPS servers without their Secret...); it is not sent to Envoy.

    ``memo`` carries results from one translation to the next (``memo.Memo``): what the
    previous snapshot's objects gave is reused for the same objects, so a change costs what it
    touches. The result is the same as without it.
    """
    memo = memo if memo is not None else Memo()
    try:
        resources = _translate(snapshot, memo)
    except BaseException:
        memo.abandon()
        raise
    memo.done()
    return resources


def _translate(snapshot: MeshSnapshot, memo: Memo) -> EnvoyResources:
    notes: list[TranslationWarning] = []
    fqdn_ports = snapshot_facts(snapshot, memo).fqdn_ports
    rules = destination_rules_by_host(snapshot, notes, memo)
    clusters = build_clusters(snapshot, rules, memo)
    keys = label_keys(snapshot, memo)
    # Routes read only the rules' consistent hashes: a circuit breaker patched into a rule
    # leaves them (and this object) as they were.
    for_routes = route_rules(rules, memo)
    sidecar_routes = outbound_route_configs(snapshot, for_routes, memo, keys)
    strip = headers_to_strip(snapshot, memo, keys)
    gateway_routes, gateway_listeners = build_gateways(
        snapshot, fqdn_ports, for_routes, notes, memo, strip
    )
    listeners = []
    for config in sidecar_routes:
        listener = ListenerName.outbound(int(config["name"]))
        listeners.append(
            reused_listener(
                str(listener),
                snapshot.listener_ports.get(str(listener), 0),
                listener.route_config,
                listener.stat_prefix,
                snapshot.access_log_dir,
                memo,
            )
        )
    return EnvoyResources(
        listeners=listeners + gateway_listeners,
        clusters=clusters,
        routes=sidecar_routes + gateway_routes,
        warnings=notes,
    )
