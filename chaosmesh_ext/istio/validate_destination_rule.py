"""Istio's checks of a DestinationRule spec: host, subsets, traffic policies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosmesh_ext.istio._checks import (
    DNS_LABEL,
    Cause,
    as_int,
    as_list,
    as_map,
    duration_causes,
    host_problem,
    labels_problem,
)


def destination_rule_causes(spec: Mapping[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    problem = host_problem(spec.get("host"))
    if problem:
        out.append(Cause("spec.host", problem))
    if spec.get("trafficPolicy") is not None:
        out.extend(traffic_policy_causes(spec.get("trafficPolicy"), "spec.trafficPolicy"))
    seen: set[str] = set()
    for i, subset in enumerate(as_list(spec.get("subsets"))):
        path = f"spec.subsets[{i}]"
        if not isinstance(subset, Mapping):
            out.append(Cause(path, "subset may not be null"))
            continue
        name = subset.get("name")
        if not isinstance(name, str) or not name:
            out.append(Cause(f"{path}.name", "subset name cannot be empty"))
        elif not DNS_LABEL.match(name):
            out.append(Cause(f"{path}.name", f"subset name is invalid: {name}"))
        elif name in seen:
            out.append(Cause(f"{path}.name", f"duplicate subset names: {name}"))
        if isinstance(name, str):
            seen.add(name)
        problem = labels_problem(subset.get("labels"))
        if problem:
            out.append(Cause(f"{path}.labels", problem))
        if subset.get("trafficPolicy") is not None:
            out.extend(traffic_policy_causes(subset.get("trafficPolicy"), f"{path}.trafficPolicy"))
    return out


def traffic_policy_causes(policy: Any, path: str) -> list[Cause]:
    """Problems in a ``TrafficPolicy`` (top level or a subset's)."""
    p = as_map(policy)
    fields = (
        "outlierDetection",
        "connectionPool",
        "loadBalancer",
        "tls",
        "portLevelSettings",
        "tunnel",
        "proxyProtocol",
        "retryBudget",
    )
    if not any(p.get(f) is not None for f in fields):
        return [Cause(path, "traffic policy must have at least one field")]
    if p.get("tunnel") is not None and p.get("proxyProtocol") is not None:
        return [Cause(path, "tunnel and proxyProtocol must not be set together")]
    out = _policy_body(p, path)
    for i, port_policy in enumerate(as_list(p.get("portLevelSettings"))):
        pp = as_map(port_policy)
        here = f"{path}.portLevelSettings[{i}]"
        if pp.get("port") is None:
            out.append(Cause(f"{here}.port", "portTrafficPolicy must have valid port"))
        if not any(
            pp.get(f) is not None
            for f in ("outlierDetection", "connectionPool", "loadBalancer", "tls")
        ):
            out.append(Cause(here, "port traffic policy must have at least one field"))
        else:
            out.extend(_policy_body(pp, here))
    return out


def _policy_body(p: Mapping[str, Any], path: str) -> list[Cause]:
    out: list[Cause] = []
    pool = p.get("connectionPool")
    if pool is not None:
        out.extend(connection_pool_causes(pool, f"{path}.connectionPool"))
    outlier = p.get("outlierDetection")
    if outlier is not None:
        out.extend(outlier_causes(outlier, f"{path}.outlierDetection"))
    if p.get("loadBalancer") is not None:
        out.extend(load_balancer_causes(p.get("loadBalancer"), f"{path}.loadBalancer"))
    return out


def _is_prime(number: int) -> bool:
    """Envoy's (and istiod's) isPrime: 1, 2 and 3 count as prime."""
    if 0 < number < 4:
        return True
    if number % 2 == 0:
        return False
    return all(number % factor for factor in range(3, int(number**0.5) + 1, 2))


def load_balancer_causes(settings: Any, path: str) -> list[Cause]:
    """istiod's validateLoadBalancer: consistent hash, warmup, locality vs zone-aware."""
    lb = as_map(settings)
    out: list[Cause] = []
    ch = as_map(lb.get("consistentHash"))
    if lb.get("consistentHash") is not None:
        cookie = ch.get("httpCookie")
        if isinstance(cookie, Mapping):
            if not cookie.get("name"):
                out.append(
                    Cause(f"{path}.consistentHash.httpCookie.name", "name required for HttpCookie")
                )
            out.extend(duration_causes(cookie.get("ttl"), f"{path}.consistentHash.httpCookie.ttl"))
            names: set[str] = set()
            for i, attr in enumerate(as_list(cookie.get("attributes"))):
                name = as_map(attr).get("name")
                where = f"{path}.consistentHash.httpCookie.attributes[{i}].name"
                if not name:
                    out.append(Cause(where, "cookie attribute name cannot be empty"))
                elif name in names:
                    out.append(Cause(where, f"duplicate cookie attribute name: {name}"))
                else:
                    names.add(str(name))
        algorithms = [k for k in ("ringHash", "maglev") if ch.get(k) is not None]
        if as_int(ch.get("minimumRingSize")) and algorithms:
            out.append(
                Cause(
                    f"{path}.consistentHash",
                    "only one of MinimumRingSize or Maglev/Ringhash can be specified",
                )
            )
        if ch.get("maglev") is not None:
            size = as_int(as_map(ch.get("maglev")).get("tableSize"))
            where = f"{path}.consistentHash.maglev.tableSize"
            if size == 0:
                out.append(Cause(where, "tableSize must be set for maglev"))
            elif size >= 5000011:
                out.append(Cause(where, "tableSize must be less than 5000011 for maglev"))
            elif not _is_prime(size):
                out.append(Cause(where, "tableSize must be a prime number for maglev"))
    if lb.get("localityLbSetting") is not None and lb.get("zoneAwareLbSetting") is not None:
        out.append(Cause(path, "only one of localityLbSetting and zoneAwareLbSetting can be set"))
    warm = lb.get("warmup")
    if isinstance(warm, Mapping):
        if warm.get("duration") is None:
            out.append(Cause(f"{path}.warmup.duration", "duration is required"))
        out.extend(duration_causes(warm.get("duration"), f"{path}.warmup.duration"))
        minimum = warm.get("minimumPercent")
        if isinstance(minimum, int | float) and not isinstance(minimum, bool) and minimum > 100:
            out.append(
                Cause(
                    f"{path}.warmup.minimumPercent",
                    "minimumPercent value should be less than or equal to 100",
                )
            )
        aggression = warm.get("aggression")
        if (
            isinstance(aggression, int | float)
            and not isinstance(aggression, bool)
            and aggression <= 0
        ):
            out.append(Cause(f"{path}.warmup.aggression", "aggression should be greater than 0"))
    return out


_NON_NEGATIVE = {
    "http": {
        "http1MaxPendingRequests": "http1 max pending requests",
        "http2MaxRequests": "http2 max requests",
        "maxRequestsPerConnection": "max requests per connection",
        "maxRetries": "max retries",
        "maxConcurrentStreams": "max concurrent streams",
    },
    "tcp": {"maxConnections": "max connections"},
}


def connection_pool_causes(pool: Any, path: str) -> list[Cause]:
    cp = as_map(pool)
    if cp.get("http") is None and cp.get("tcp") is None:
        return [Cause(path, "connection pool must have at least one field")]
    out: list[Cause] = []
    for group, fields in _NON_NEGATIVE.items():
        block = as_map(cp.get(group))
        for field, words in fields.items():
            if as_int(block.get(field)) < 0:
                out.append(Cause(f"{path}.{group}.{field}", f"{words} must be non-negative"))
    http_block, tcp = as_map(cp.get("http")), as_map(cp.get("tcp"))
    out.extend(duration_causes(http_block.get("idleTimeout"), f"{path}.http.idleTimeout"))
    keepalive_h2 = http_block.get("http2KeepAlive")
    if isinstance(keepalive_h2, Mapping):
        for field in ("interval", "timeout"):
            where = f"{path}.http.http2KeepAlive.{field}"
            if keepalive_h2.get(field) is None:
                out.append(Cause(where, f"http2 keepalive {field} is required"))
            out.extend(duration_causes(keepalive_h2.get(field), where))
    if (
        http_block.get("h2UpgradePolicy") == "UPGRADE"
        and http_block.get("useClientProtocol") is True
    ):
        out.append(
            Cause(
                f"{path}.http.useClientProtocol",
                "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
            )
        )
    out.extend(duration_causes(tcp.get("connectTimeout"), f"{path}.tcp.connectTimeout"))
    out.extend(
        duration_causes(tcp.get("maxConnectionDuration"), f"{path}.tcp.maxConnectionDuration")
    )
    out.extend(duration_causes(tcp.get("idleTimeout"), f"{path}.tcp.idleTimeout", allow_zero=True))
    keepalive = as_map(tcp.get("tcpKeepalive"))
    out.extend(duration_causes(keepalive.get("time"), f"{path}.tcp.tcpKeepalive.time"))
    out.extend(duration_causes(keepalive.get("interval"), f"{path}.tcp.tcpKeepalive.interval"))
    return out


def outlier_causes(outlier: Any, path: str) -> list[Cause]:
    od = as_map(outlier)
    out: list[Cause] = []
    out.extend(duration_causes(od.get("baseEjectionTime"), f"{path}.baseEjectionTime"))
    out.extend(duration_causes(od.get("interval"), f"{path}.interval"))
    if (
        not od.get("splitExternalLocalOriginErrors")
        and as_int(od.get("consecutiveLocalOriginFailures")) > 0
    ):
        out.append(
            Cause(
                f"{path}.consecutiveLocalOriginFailures",
                "outlier detection consecutive local origin failures is specified, "
                "but split external local origin errors is set to false",
            )
        )
    for field in ("maxEjectionPercent", "minHealthPercent"):
        value = as_int(od.get(field))
        if not 0 <= value <= 100:
            out.append(Cause(f"{path}.{field}", f"percentage {value} is not in range 0..100"))
    return out
