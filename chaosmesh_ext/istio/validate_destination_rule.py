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
