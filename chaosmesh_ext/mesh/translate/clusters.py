"""DestinationRule + Service + endpoints -> Envoy Clusters (istiod's cluster_traffic_policy.go).

One service-wide cluster per Service port and one per DestinationRule subset, all STATIC with
their endpoints inline (the embedded mesh has no EDS server). Defaults are istiod's, not
Envoy's: unlimited circuit breakers, 10 s connect timeout, LEAST_REQUEST.
"""

from __future__ import annotations

from typing import Any

from .model import CLUSTER_TYPE, JSON, Endpoint, MeshSnapshot
from .names import (
    MAX_UINT32,
    TranslationError,
    cluster_name,
    creation_key,
    duration,
    host_matches,
    labels_match,
    name_of,
    namespace_of,
    resolve_host,
)

_HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_HTTP_OPTIONS_TYPE = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

_LB_POLICIES = {
    "ROUND_ROBIN": "ROUND_ROBIN",
    "LEAST_CONN": "LEAST_REQUEST",
    "LEAST_REQUEST": "LEAST_REQUEST",
    "RANDOM": "RANDOM",
    "UNSPECIFIED": "LEAST_REQUEST",
}
# The blocks of a TrafficPolicy that a more specific policy (port level, subset) replaces whole.
_POLICY_BLOCKS = ("connectionPool", "outlierDetection", "loadBalancer", "tls")


def service_fqdn(service: JSON, domain: str) -> str:
    return f"{name_of(service)}.{namespace_of(service)}.svc.{domain}"


def service_ports(service: JSON) -> list[int]:
    ports = (service.get("spec") or {}).get("ports") or []
    return sorted({int(p["port"]) for p in ports if "port" in p})


def destination_rules_by_host(snapshot: MeshSnapshot) -> dict[str, JSON]:
    """DestinationRules by (resolved) host: for one host the oldest one wins, as in istiod."""
    chosen: dict[str, JSON] = {}
    for rule in sorted(snapshot.destination_rules, key=creation_key):
        spec = rule.get("spec") or {}
        host = resolve_host(str(spec.get("host") or ""), namespace_of(rule), snapshot.domain)
        chosen.setdefault(host, rule)
    return chosen


def destination_rule_for(fqdn: str, rules: dict[str, JSON]) -> JSON | None:
    """An exact host first, else the most specific wildcard host (``*.ns.svc...``, ``*``)."""
    if fqdn in rules:
        return rules[fqdn]
    wildcards = [h for h in rules if h.startswith("*") and host_matches(h, fqdn)]
    return rules[max(wildcards, key=len)] if wildcards else None


def effective_policy(spec: JSON, port: int, subset: JSON | None) -> JSON:
    """istiod's MergeTrafficPolicy: top level < its port level < subset < subset's port level.

    Each block (connectionPool, outlierDetection, loadBalancer, tls) is replaced whole, never
    merged field by field — a subset that sets only ``outlierDetection`` keeps the top-level
    ``connectionPool``, but a subset ``connectionPool`` drops every top-level pool field.
    """
    policy: JSON = {}
    layers = [spec.get("trafficPolicy") or {}]
    if subset is not None:
        layers.append(subset.get("trafficPolicy") or {})
    for layer in layers:
        _overlay(policy, layer)
        for level in layer.get("portLevelSettings") or []:
            if int((level.get("port") or {}).get("number") or 0) == port:
                _overlay(policy, level)
    return policy


def _overlay(policy: JSON, layer: JSON) -> None:
    for block in _POLICY_BLOCKS:
        if layer.get(block) is not None:
            policy[block] = layer[block]


def circuit_breakers(pool: JSON | None) -> JSON:
    """Thresholds: 2^32-1 unless the connectionPool sets a positive value (istiod)."""
    tcp = (pool or {}).get("tcp") or {}
    http = (pool or {}).get("http") or {}
    threshold: JSON = {
        "max_connections": _positive(tcp.get("maxConnections")),
        "max_pending_requests": _positive(http.get("http1MaxPendingRequests")),
        "max_requests": _positive(http.get("http2MaxRequests")),
        "max_retries": _positive(http.get("maxRetries")),
        "track_remaining": True,
    }
    return {"thresholds": [threshold]}


def _positive(value: Any) -> int:
    number = int(value or 0)
    return number if number > 0 else MAX_UINT32


def http_protocol_options(pool: JSON | None, where: str) -> JSON | None:
    """maxRequestsPerConnection / idleTimeout live in the upstream HttpProtocolOptions."""
    http = (pool or {}).get("http") or {}
    common: JSON = {}
    if int(http.get("maxRequestsPerConnection") or 0) > 0:
        common["max_requests_per_connection"] = int(http["maxRequestsPerConnection"])
    if http.get("idleTimeout"):
        common["idle_timeout"] = duration(http["idleTimeout"], f"{where}.http.idleTimeout")
    if not common:
        return None
    return {
        _HTTP_OPTIONS_KEY: {
            "@type": _HTTP_OPTIONS_TYPE,
            "common_http_protocol_options": common,
            "explicit_http_config": {"http_protocol_options": {}},
        }
    }


def outlier_detection(outlier: JSON, where: str) -> JSON:
    """istiod's applyOutlierDetection (success-rate ejection off, gateway errors enforced)."""
    out: JSON = {"enforcing_success_rate": 0}
    if outlier.get("consecutiveGatewayErrors") is not None:
        value = int(outlier["consecutiveGatewayErrors"])
        out["consecutive_gateway_failure"] = value
        out["enforcing_consecutive_gateway_failure"] = 100 if value > 0 else 0
    if outlier.get("consecutive5xxErrors") is not None:
        value = int(outlier["consecutive5xxErrors"])
        out["consecutive_5xx"] = value
        out["enforcing_consecutive_5xx"] = 100 if value > 0 else 0
    if outlier.get("interval"):
        out["interval"] = duration(outlier["interval"], f"{where}.interval")
    if outlier.get("baseEjectionTime"):
        out["base_ejection_time"] = duration(
            outlier["baseEjectionTime"], f"{where}.baseEjectionTime"
        )
    if int(outlier.get("maxEjectionPercent") or 0) > 0:
        out["max_ejection_percent"] = int(outlier["maxEjectionPercent"])
    if outlier.get("splitExternalLocalOriginErrors"):
        out["split_external_local_origin_errors"] = True
        if outlier.get("consecutiveLocalOriginFailures") is not None:
            out["consecutive_local_origin_failure"] = int(outlier["consecutiveLocalOriginFailures"])
    return out


def load_assignment(name: str, endpoints: list[Endpoint]) -> JSON:
    lb_endpoints = [
        {"endpoint": {"address": {"socket_address": {"address": e.address, "port_value": e.port}}}}
        for e in endpoints
    ]
    return {
        "cluster_name": name,
        "endpoints": [{"lb_endpoints": lb_endpoints}] if lb_endpoints else [],
    }


def build_cluster(name: str, policy: JSON, endpoints: list[Endpoint], where: str) -> JSON:
    """One STATIC cluster with istiod's defaults and the effective TrafficPolicy applied."""
    pool = policy.get("connectionPool")
    lb = _LB_POLICIES.get(
        str((policy.get("loadBalancer") or {}).get("simple") or ""), "LEAST_REQUEST"
    )
    cluster: JSON = {
        "@type": CLUSTER_TYPE,
        "name": name,
        "alt_stat_name": name + ";",
        "type": "STATIC",
        "connect_timeout": "10s",
        "lb_policy": lb,
        "circuit_breakers": circuit_breakers(pool),
        "load_assignment": load_assignment(name, endpoints),
    }
    connect_timeout = ((pool or {}).get("tcp") or {}).get("connectTimeout")
    if connect_timeout:
        cluster["connect_timeout"] = duration(
            connect_timeout, f"{where}.connectionPool.tcp.connectTimeout"
        )
    options = http_protocol_options(pool, f"{where}.connectionPool")
    if options:
        cluster["typed_extension_protocol_options"] = options
    outlier = policy.get("outlierDetection")
    if outlier is not None:
        cluster["outlier_detection"] = outlier_detection(outlier, f"{where}.outlierDetection")
        # minHealthPercent defaults to 0, which turns Envoy's panic mode off.
        cluster["common_lb_config"] = {
            "healthy_panic_threshold": {"value": float(outlier.get("minHealthPercent") or 0)}
        }
    return cluster


def endpoints_for(
    service: JSON, snapshot: MeshSnapshot, subset_labels: dict[str, str] | None = None
) -> list[Endpoint]:
    selector = (service.get("spec") or {}).get("selector") or {}
    ns = namespace_of(service)
    chosen = [
        e
        for e in snapshot.endpoints
        if e.namespace == ns
        and labels_match(selector, dict(e.labels))
        and (not subset_labels or all(e.labels.get(k) == v for k, v in subset_labels.items()))
    ]
    return sorted(chosen, key=lambda e: (e.pod, e.address, e.port))


def build_clusters(snapshot: MeshSnapshot) -> list[JSON]:
    """Every outbound cluster, sorted by name."""
    rules = destination_rules_by_host(snapshot)
    clusters: list[JSON] = []
    for service in snapshot.services:
        fqdn = service_fqdn(service, snapshot.domain)
        rule = destination_rule_for(fqdn, rules)
        spec = (rule or {}).get("spec") or {}
        where = f"DestinationRule {namespace_of(rule)}/{name_of(rule)}: spec" if rule else ""
        try:
            clusters += _service_clusters(service, fqdn, spec, where, snapshot)
        except TranslationError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            what = where or f"Service {namespace_of(service)}/{name_of(service)}: spec"
            raise TranslationError(f"{what}: {type(exc).__name__}: {exc}") from exc
    clusters.sort(key=lambda c: c["name"])
    return clusters


def _service_clusters(
    service: JSON, fqdn: str, spec: JSON, where: str, snapshot: MeshSnapshot
) -> list[JSON]:
    clusters: list[JSON] = []
    for port in service_ports(service):
        name = cluster_name(port, "", fqdn)
        policy = effective_policy(spec, port, None)
        clusters.append(
            build_cluster(name, policy, endpoints_for(service, snapshot), f"{where}.trafficPolicy")
        )
        for index, subset in enumerate(spec.get("subsets") or []):
            subset_name = str(subset.get("name") or "")
            sub_name = cluster_name(port, subset_name, fqdn)
            sub_policy = effective_policy(spec, port, subset)
            members = endpoints_for(service, snapshot, dict(subset.get("labels") or {}))
            clusters.append(
                build_cluster(
                    sub_name, sub_policy, members, f"{where}.subsets[{index}].trafficPolicy"
                )
            )
    return clusters
