"""DestinationRule + Service + endpoints -> Envoy Clusters (istiod's cluster_traffic_policy.go).

One service-wide cluster per Service port and one per DestinationRule subset, all STATIC with
their endpoints inline (the embedded mesh has no EDS server). Defaults are istiod's, not
Envoy's: unlimited circuit breakers, 10 s connect timeout, LEAST_REQUEST.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .facts import service_facts, service_ports
from .memo import Memo
from .model import CLUSTER_TYPE, JSON, Endpoint, MeshSnapshot, TranslationWarning
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
    parse_duration,
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
# The blocks a port-level policy carries; with one, nothing else of the top level survives.
_PORT_BLOCKS = ("connectionPool", "loadBalancer", "outlierDetection", "tls")
# MergeTrafficPolicy: the four blocks above are replaced whole by a subset's (all four when the
# subset has a port-level policy for the port); these only when the subset sets them.
_SUBSET_ONLY_IF_SET = ("tunnel", "proxyProtocol", "retryBudget")


def _rule_warning(rule: JSON, field: str, message: str) -> TranslationWarning:
    return TranslationWarning("DestinationRule", namespace_of(rule), name_of(rule), field, message)


def merge_destination_rules(rules: list[JSON], host: str) -> tuple[JSON, list[TranslationWarning]]:
    """istiod's mergeDestinationRule for rules of one host in one namespace, oldest first.

    Subsets are concatenated (a later subset with a name already taken is dropped and
    reported), the first top-level trafficPolicy wins; the result keeps the oldest rule's
    metadata.
    """
    first = rules[0]
    spec = dict(first.get("spec") or {})
    subsets = list(spec.get("subsets") or [])
    names = {str(s.get("name")) for s in subsets}
    notes: list[TranslationWarning] = []
    for rule in rules[1:]:
        other = rule.get("spec") or {}
        for index, subset in enumerate(other.get("subsets") or []):
            if str(subset.get("name")) in names:
                notes.append(
                    _rule_warning(
                        rule,
                        f"spec.subsets[{index}].name",
                        f"subset {subset.get('name')!r} of host {host} is already defined by "
                        f"DestinationRule {namespace_of(first)}/{name_of(first)}; istiod keeps "
                        "the first and ignores this one",
                    )
                )
                continue
            names.add(str(subset.get("name")))
            subsets.append(subset)
        if spec.get("trafficPolicy") is None and other.get("trafficPolicy") is not None:
            spec["trafficPolicy"] = other["trafficPolicy"]
        elif other.get("trafficPolicy") is not None:
            notes.append(
                _rule_warning(
                    rule,
                    "spec.trafficPolicy",
                    f"ignored: DestinationRule {namespace_of(first)}/{name_of(first)} for host "
                    f"{host} is older and has a trafficPolicy (istiod's mergeDestinationRule "
                    "keeps the first)",
                )
            )
    if subsets:
        spec["subsets"] = subsets
    return {**first, "spec": spec}, notes


class Rules(dict[str, JSON]):
    """The merged DestinationRule of each resolved host (``destination_rules_by_host``), with
    the lookup by Service host (``destination_rule_for``) remembered: every cluster and every
    route destination asks, and wildcard hosts would otherwise be scanned each time."""

    def __init__(self, rules: dict[str, JSON]) -> None:
        super().__init__(rules)
        self._wildcards = [h for h in rules if h.startswith("*")]
        self._found: dict[str, JSON | None] = {}

    def for_host(self, fqdn: str) -> JSON | None:
        try:
            return self._found[fqdn]
        except KeyError:
            pass
        rule = self.get(fqdn)
        if rule is None:
            wildcards = [h for h in self._wildcards if host_matches(h, fqdn)]
            rule = self[max(wildcards, key=len)] if wildcards else None
        self._found[fqdn] = rule
        return rule


def destination_rules_by_host(
    snapshot: MeshSnapshot,
    notes: list[TranslationWarning] | None = None,
    memo: Memo | None = None,
) -> Rules:
    """One (merged) DestinationRule per resolved host.

    Rules of one host in one namespace are merged as istiod does. istiod picks the rules of
    the caller's namespace, else of the Service's; one Envoy plays every caller here, so the
    Service's namespace wins (else the oldest namespace) and rules in other namespaces are
    reported when a workload there would see them on a cluster.

    With a ``memo``, the result is the same object while the DestinationRules (and the
    namespaces with callers) are the same, and a host's merge is reused while its rules are.
    """
    memo = memo if memo is not None else Memo()
    rules = snapshot.destination_rules
    callers = frozenset(e.namespace for e in snapshot.endpoints)
    chosen, found = memo.get(
        ("rules", tuple(map(id, rules)), callers, snapshot.domain),
        tuple(rules),
        lambda: _rules_by_host(snapshot, callers, memo),
    )
    if notes is not None:
        notes.extend(found)
    return chosen


def _rules_by_host(
    snapshot: MeshSnapshot, callers: frozenset[str], memo: Memo
) -> tuple[Rules, list[TranslationWarning]]:
    notes: list[TranslationWarning] = []
    grouped: dict[str, dict[str, list[JSON]]] = {}
    # Each rule's age, host and namespace are read once per rule object: a patch of one rule
    # regroups the others from what they gave last time.
    domain = snapshot.domain
    placed = [(_placed(rule, domain, memo), rule) for rule in snapshot.destination_rules]
    placed.sort(key=_age)
    for (_, host, namespace), rule in placed:
        grouped.setdefault(host, {}).setdefault(namespace, []).append(rule)
    chosen: dict[str, JSON] = {}
    for host, by_namespace in grouped.items():
        parts = host.split(".")
        home = parts[1] if len(parts) > 2 and parts[2] == "svc" else None
        pick = home if home in by_namespace else next(iter(by_namespace))
        group = by_namespace[pick]
        merged, merge_notes = memo.get(
            ("merged rule", host, tuple(map(id, group))),
            tuple(group),
            lambda group=group, host=host: merge_destination_rules(group, host),  # type: ignore[misc]
        )
        chosen[host] = merged
        notes.extend(merge_notes)
        for ns, rules in by_namespace.items():
            if ns != pick and ns in callers:
                notes.append(
                    _rule_warning(
                        rules[0],
                        "spec.host",
                        f"not applied: on a cluster workloads in namespace {ns} would use "
                        f"this rule for {host}, but one Envoy plays every caller here and "
                        f"uses DestinationRule {namespace_of(merged)}/{name_of(merged)}",
                    )
                )
    return Rules(chosen), notes


def _placement(rule: JSON, domain: str) -> tuple[Any, str, str]:
    """(age, resolved host, namespace) of one DestinationRule."""
    spec = rule.get("spec") or {}
    namespace = namespace_of(rule)
    return (
        creation_key(rule),
        resolve_host(str(spec.get("host") or ""), namespace, domain),
        namespace,
    )


def _placed(rule: JSON, domain: str, memo: Memo) -> tuple[Any, str, str]:
    key = ("rule placement", id(rule), domain)
    return memo.get(key, rule, lambda: _placement(rule, domain))


def _age(placed: tuple[tuple[Any, str, str], JSON]) -> Any:
    return placed[0][0]


def destination_rule_for(fqdn: str, rules: dict[str, JSON]) -> JSON | None:
    """An exact host first, else the most specific wildcard host (``*.ns.svc...``, ``*``)."""
    if isinstance(rules, Rules):
        return rules.for_host(fqdn)
    if fqdn in rules:
        return rules[fqdn]
    wildcards = [h for h in rules if h.startswith("*") and host_matches(h, fqdn)]
    return rules[max(wildcards, key=len)] if wildcards else None


def port_level_policy(policy: JSON | None, port: int) -> tuple[JSON | None, bool]:
    """istiod's GetPortLevelTrafficPolicy: a matching port-level policy *replaces* the policy
    (its four blocks only: nothing of the top level is inherited), and says so."""
    if policy is None:
        return None, False
    for level in policy.get("portLevelSettings") or []:
        if int((level.get("port") or {}).get("number") or 0) == port:
            return {b: level[b] for b in _PORT_BLOCKS if level.get(b) is not None}, True
    return policy, False


def effective_policy(spec: JSON, port: int, subset: JSON | None) -> JSON:
    """The policy a cluster gets (istiod's MergeSubsetTrafficPolicy + MergeTrafficPolicy).

    The top-level policy, or its port-level entry for ``port`` (which replaces it whole);
    then a subset's blocks replace the corresponding blocks whole, and a subset's port-level
    entry replaces all four (connectionPool, loadBalancer, outlierDetection, tls), unset ones
    included.
    """
    original, _ = port_level_policy(spec.get("trafficPolicy"), port)
    sub_policy = (subset or {}).get("trafficPolicy")
    if sub_policy is None:
        return dict(original or {})
    sub, has_port_level = port_level_policy(sub_policy, port)
    sub = sub or {}
    if original is None:
        return dict(sub)
    merged = {k: v for k, v in original.items() if k != "portLevelSettings"}
    for block in _PORT_BLOCKS:
        if sub.get(block) is not None or has_port_level:
            merged[block] = sub.get(block)
    for block in _SUBSET_ONLY_IF_SET:
        if sub.get(block) is not None:
            merged[block] = sub[block]
    return {k: v for k, v in merged.items() if v is not None}


def circuit_breakers(pool: JSON | None, retry_budget: JSON | None = None) -> JSON:
    """Thresholds: 2^32-1 unless the connectionPool sets a positive value (istiod's
    applyConnectionPool), plus the retry budget (applyRetryBudget)."""
    tcp = (pool or {}).get("tcp") or {}
    http = (pool or {}).get("http") or {}
    threshold: JSON = {
        "max_connections": _positive(tcp.get("maxConnections")),
        "max_pending_requests": _positive(http.get("http1MaxPendingRequests")),
        "max_requests": _positive(http.get("http2MaxRequests")),
        "max_retries": _positive(http.get("maxRetries")),
        "track_remaining": True,
    }
    if retry_budget is not None:
        percent = retry_budget.get("percent")
        budget: JSON = {
            "budget_percent": {"value": 20.0 if percent is None else float(percent)},
            "min_retry_concurrency": int(retry_budget.get("minRetryConcurrency") or 0) or 3,
        }
        if retry_budget.get("budgetInterval"):
            budget["budget_interval"] = duration(
                retry_budget["budgetInterval"], "trafficPolicy.retryBudget.budgetInterval"
            )
        threshold["retry_budget"] = budget
    return {"thresholds": [threshold]}


def _positive(value: Any) -> int:
    number = int(value or 0)
    return number if number > 0 else MAX_UINT32


def _h2_upgrade(http: JSON) -> bool:
    """istiod's shouldH2Upgrade (mesh default DO_NOT_UPGRADE; useClientProtocol wins)."""
    return not http.get("useClientProtocol") and http.get("h2UpgradePolicy") == "UPGRADE"


def http_protocol_options(pool: JSON | None, where: str) -> JSON | None:
    """The upstream HttpProtocolOptions istiod builds (applyH2Upgrade, applyConnectionPool,
    setUseDownstreamProtocol); None when it would build none."""
    http = (pool or {}).get("http") or {}
    tcp = (pool or {}).get("tcp") or {}
    options: JSON = {}
    if _h2_upgrade(http):
        options["explicit_http_config"] = {"http2_protocol_options": {}}
    common: JSON = {}
    # http.idleTimeout, else tcp.idleTimeout: both end idle upstream HTTP connections.
    idle = http.get("idleTimeout")
    idle_field = "http.idleTimeout"
    if idle is None and tcp.get("idleTimeout") is not None:
        idle, idle_field = tcp["idleTimeout"], "tcp.idleTimeout"
    if idle is not None:
        common["idle_timeout"] = duration(idle, f"{where}.{idle_field}")
    if int(http.get("maxRequestsPerConnection") or 0) > 0:
        common["max_requests_per_connection"] = int(http["maxRequestsPerConnection"])
    if tcp.get("maxConnectionDuration") is not None:
        common["max_connection_duration"] = duration(
            tcp["maxConnectionDuration"], f"{where}.tcp.maxConnectionDuration"
        )
    h2 = (options.get("explicit_http_config") or {}).get("http2_protocol_options")
    wants_common = bool(common) or int(http.get("maxConcurrentStreams") or 0) > 0
    wants_common = wants_common or http.get("http2KeepAlive") is not None
    if wants_common:
        options["common_http_protocol_options"] = common
        if h2 is not None and int(http.get("maxConcurrentStreams") or 0) > 0:
            h2["max_concurrent_streams"] = int(http["maxConcurrentStreams"])
        keepalive = http.get("http2KeepAlive")
        if h2 is not None and keepalive is not None:
            h2["connection_keepalive"] = {
                k: duration(keepalive[f], f"{where}.http.http2KeepAlive.{f}")
                for k, f in (("interval", "interval"), ("timeout", "timeout"))
                if keepalive.get(f) is not None
            }
    if http.get("useClientProtocol"):
        options.pop("explicit_http_config", None)
        options["use_downstream_protocol_config"] = {
            "http_protocol_options": {},
            "http2_protocol_options": {},
        }
    if not options:
        return None
    if "explicit_http_config" not in options and "use_downstream_protocol_config" not in options:
        # Envoy requires an upstream protocol: istiod's build() defaults to HTTP/1.1.
        options["explicit_http_config"] = {"http_protocol_options": {}}
    return {_HTTP_OPTIONS_KEY: {"@type": _HTTP_OPTIONS_TYPE, **options}}


def outlier_detection(outlier: JSON, where: str) -> JSON:
    """istiod's applyOutlierDetection (success-rate ejection off, gateway errors enforced)."""
    out: JSON = {"enforcing_success_rate": 0}
    if outlier.get("consecutive5xxErrors") is not None:
        value = int(outlier["consecutive5xxErrors"])
        out["consecutive_5xx"] = value
        out["enforcing_consecutive_5xx"] = 100 if value > 0 else 0
    if outlier.get("consecutiveGatewayErrors") is not None:
        value = int(outlier["consecutiveGatewayErrors"])
        out["consecutive_gateway_failure"] = value
        out["enforcing_consecutive_gateway_failure"] = 100 if value > 0 else 0
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
        if int(outlier.get("consecutiveLocalOriginFailures") or 0) > 0:
            out["consecutive_local_origin_failure"] = int(outlier["consecutiveLocalOriginFailures"])
            out["enforcing_consecutive_local_origin_failure"] = 100
        out["enforcing_local_origin_success_rate"] = 0
    return out


def _slow_start(lb: JSON, where: str) -> JSON | None:
    """istiod's setWarmup (or the deprecated setSlowStartConfig)."""
    warmup = lb.get("warmup")
    if warmup is not None:
        config: JSON = {}
        if warmup.get("duration") is not None:
            config["slow_start_window"] = duration(warmup["duration"], f"{where}.warmup.duration")
        aggression = warmup.get("aggression")
        minimum = warmup.get("minimumPercent")
        # istiod fixes the runtime key to "(" (runtime overrides are not exposed).
        config["aggression"] = {
            "default_value": float(1 if aggression is None else aggression),
            "runtime_key": "(",
        }
        config["min_weight_percent"] = {"value": float(10 if minimum is None else minimum)}
        return config
    if lb.get("warmupDurationSecs") is not None:
        window = duration(lb["warmupDurationSecs"], f"{where}.warmupDurationSecs")
        return {"slow_start_window": window}
    return None


def apply_load_balancer(cluster: JSON, lb: JSON | None, where: str) -> None:
    """istiod's applyLoadBalancer + ApplyRingHashLoadBalancer on one cluster."""
    lb = lb or {}
    policy = _LB_POLICIES.get(str(lb.get("simple") or "UNSPECIFIED"), "LEAST_REQUEST")
    cluster["lb_policy"] = policy
    slow_start = _slow_start(lb, where) if policy in ("LEAST_REQUEST", "ROUND_ROBIN") else None
    if slow_start is not None:
        key = "least_request_lb_config" if policy == "LEAST_REQUEST" else "round_robin_lb_config"
        cluster[key] = {"slow_start_config": slow_start}
    hashing = lb.get("consistentHash")
    if hashing is None:
        return
    cluster.pop("least_request_lb_config", None)
    cluster.pop("round_robin_lb_config", None)
    if hashing.get("maglev") is not None:
        cluster["lb_policy"] = "MAGLEV"
        size = int(hashing["maglev"].get("tableSize") or 0)
        if size:
            cluster["maglev_lb_config"] = {"table_size": size}
    elif hashing.get("ringHash") is not None:
        cluster["lb_policy"] = "RING_HASH"
        size = int(hashing["ringHash"].get("minimumRingSize") or 0)
        if size:
            cluster["ring_hash_lb_config"] = {"minimum_ring_size": size}
    else:
        cluster["lb_policy"] = "RING_HASH"
        size = int(hashing.get("minimumRingSize") or 0) or 1024  # Envoy's default, set
        cluster["ring_hash_lb_config"] = {"minimum_ring_size": size}


def tcp_keepalive(tcp: JSON, where: str) -> JSON | None:
    """istiod's setKeepAliveSettings: whole seconds, probes when positive."""
    keepalive = tcp.get("tcpKeepalive")
    if keepalive is None:
        return None
    out: JSON = {}
    if int(keepalive.get("probes") or 0) > 0:
        out["keepalive_probes"] = int(keepalive["probes"])
    for key, field in (("keepalive_time", "time"), ("keepalive_interval", "interval")):
        if keepalive.get(field) is not None:
            out[key] = int(parse_duration(keepalive[field], f"{where}.tcpKeepalive.{field}"))
    return {"tcp_keepalive": out}


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
    cluster: JSON = {
        "@type": CLUSTER_TYPE,
        "name": name,
        "alt_stat_name": name + ";",
        "type": "STATIC",
        "connect_timeout": "10s",
        "lb_policy": "LEAST_REQUEST",
        "circuit_breakers": circuit_breakers(pool, policy.get("retryBudget")),
        "load_assignment": load_assignment(name, endpoints),
    }
    apply_load_balancer(cluster, policy.get("loadBalancer"), f"{where}.loadBalancer")
    tcp = (pool or {}).get("tcp") or {}
    if tcp.get("connectTimeout"):
        cluster["connect_timeout"] = duration(
            tcp["connectTimeout"], f"{where}.connectionPool.tcp.connectTimeout"
        )
    keepalive = tcp_keepalive(tcp, f"{where}.connectionPool.tcp")
    if keepalive is not None:
        cluster["upstream_connection_options"] = keepalive
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
    service: JSON, endpoints: Iterable[Endpoint], subset_labels: dict[str, str] | None = None
) -> list[Endpoint]:
    """The endpoints a Service selects (and a subset's labels, when given), in a fixed order."""
    selector = (service.get("spec") or {}).get("selector") or {}
    ns = namespace_of(service)
    chosen = [
        e
        for e in endpoints
        if e.namespace == ns
        and labels_match(selector, dict(e.labels))
        and (not subset_labels or all(e.labels.get(k) == v for k, v in subset_labels.items()))
    ]
    return sorted(chosen, key=lambda e: (e.pod, e.address, e.port))


_NO_ENDPOINTS: list[Endpoint] = []  # one object: the key of a namespace without replicas


def _endpoint_key(endpoint: Endpoint) -> tuple[Any, ...]:
    return (
        endpoint.pod,
        endpoint.namespace,
        tuple(sorted(endpoint.labels.items())),
        endpoint.address,
        endpoint.port,
    )


def build_clusters(
    snapshot: MeshSnapshot, rules: dict[str, JSON] | None = None, memo: Memo | None = None
) -> list[JSON]:
    """Every outbound cluster, sorted by name (``rules``: ``destination_rules_by_host``).

    A Service's clusters are reused (``memo``) while the Service and its DestinationRule are
    the same objects and the endpoints of its namespace are the same.
    """
    memo = memo if memo is not None else Memo()
    if rules is None:
        rules = destination_rules_by_host(snapshot, memo=memo)
    by_namespace: dict[str, list[Endpoint]] = {}
    for endpoint in snapshot.endpoints:
        by_namespace.setdefault(endpoint.namespace, []).append(endpoint)
    # The endpoints of a namespace as one object while they are the same, compared once per
    # namespace, not per Service.
    endpoint_sets = {
        ns: memo.get(("endpoints", tuple(map(_endpoint_key, group))), None, lambda g=group: g)  # type: ignore[misc]
        for ns, group in by_namespace.items()
    }
    services = snapshot.services
    whole = (
        "all clusters", tuple(map(id, services)), id(rules), snapshot.domain,
        tuple((ns, id(group)) for ns, group in endpoint_sets.items()),
    )  # fmt: skip
    return memo.get(
        whole,
        (tuple(services), rules, tuple(endpoint_sets.values())),
        lambda: _all_clusters(snapshot, rules, endpoint_sets, memo),
    )


def _all_clusters(
    snapshot: MeshSnapshot,
    rules: dict[str, JSON],
    endpoint_sets: dict[str, list[Endpoint]],
    memo: Memo,
) -> list[JSON]:
    clusters: list[JSON] = []
    for service in snapshot.services:
        fqdn = service_facts(service, snapshot.domain, memo).fqdn
        rule = destination_rule_for(fqdn, rules)
        endpoints = endpoint_sets.get(namespace_of(service), _NO_ENDPOINTS)
        clusters += memo.get(
            ("clusters", id(service), id(rule), id(endpoints), snapshot.domain),
            (service, rule, endpoints),
            lambda s=service, f=fqdn, r=rule, e=endpoints: _checked_service_clusters(s, f, r, e),  # type: ignore[misc]
        )
    clusters.sort(key=lambda c: c["name"])
    return clusters


def _checked_service_clusters(
    service: JSON, fqdn: str, rule: JSON | None, endpoints: list[Endpoint]
) -> list[JSON]:
    spec = (rule or {}).get("spec") or {}
    where = f"DestinationRule {namespace_of(rule)}/{name_of(rule)}: spec" if rule else ""
    try:
        return _service_clusters(service, fqdn, spec, where, endpoints)
    except TranslationError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        what = where or f"Service {namespace_of(service)}/{name_of(service)}: spec"
        raise TranslationError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _service_clusters(
    service: JSON, fqdn: str, spec: JSON, where: str, endpoints: list[Endpoint]
) -> list[JSON]:
    clusters: list[JSON] = []
    for port in service_ports(service):
        name = cluster_name(port, "", fqdn)
        policy = effective_policy(spec, port, None)
        clusters.append(
            build_cluster(name, policy, endpoints_for(service, endpoints), f"{where}.trafficPolicy")
        )
        for index, subset in enumerate(spec.get("subsets") or []):
            subset_name = str(subset.get("name") or "")
            sub_name = cluster_name(port, subset_name, fqdn)
            sub_policy = effective_policy(spec, port, subset)
            members = endpoints_for(service, endpoints, dict(subset.get("labels") or {}))
            clusters.append(
                build_cluster(
                    sub_name, sub_policy, members, f"{where}.subsets[{index}].trafficPolicy"
                )
            )
    return clusters
