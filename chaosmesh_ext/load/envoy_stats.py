"""Reading an Envoy sidecar's circuit-breaker and outlier counters for one upstream host.

Accepts both formats Istio users meet: Prometheus text (``/stats/prometheus``, pilot-agent's
merged stats on 15020) and Envoy's plain ``/stats`` text (what Istio's circuit-breaking task
greps: ``cluster.outbound|8000||httpbin.default.svc.cluster.local.upstream_rq_pending_overflow:
21``).
Pure: text in, numbers out.
"""

from __future__ import annotations

import re
from typing import Any

# Flat key -> Envoy cluster stat (see Envoy's cluster manager statistics).
BREAKER_STATS: dict[str, str] = {
    # http1MaxPendingRequests (and http2MaxRequests before Envoy 1.38)
    "pending_overflow": "upstream_rq_pending_overflow",
    # http2MaxRequests (Envoy's max_requests, HTTP/1.1 too) since Envoy 1.38
    "rq_active_overflow": "upstream_rq_active_overflow",
    "cx_overflow": "upstream_cx_overflow",  # maxConnections
    "active_overflow": "upstream_cx_pool_overflow",  # connection-pool breaker
    "retry_overflow": "upstream_rq_retry_overflow",  # retry budget / max retries
    "ejections_active": "outlier_detection.ejections_active",
    "ejections_total": "outlier_detection.ejections_enforced_total",
    "ejections_consecutive_5xx": "outlier_detection.ejections_enforced_consecutive_5xx",
    "rq_total": "upstream_rq_total",
    "rq_active": "upstream_rq_active",
    "rq_pending_total": "upstream_rq_pending_total",
    "rq_pending_active": "upstream_rq_pending_active",
    "rq_timeout": "upstream_rq_timeout",
    "rq_retry": "upstream_rq_retry",
    "rq_5xx": "upstream_rq_5xx",
    "cx_total": "upstream_cx_total",
    "cx_active": "upstream_cx_active",
}

_PROM_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
# The host part may contain dots, so the stat is found by its known leading words.
_STAT_PREFIX = (
    r"upstream_|outlier_detection\.|circuit_breakers\.|lb_|membership_|update_|version|"
    r"max_host_weight|bind_errors|assignment_|retry_or_shadow_abandoned|init_fetch_timeout|"
    r"original_dst_host_invalid|warming_state|internal\.|external\.|http1\.|http2\.|"
    r"default\.total_match_count|health_check\.|tls\.|ssl\."
)
_TEXT_LINE = re.compile(
    # Istio names stats by alt_stat_name "<cluster>;" -> "cluster.<cluster>;.upstream_..."
    rf"^cluster\.(outbound\|[^|]*\|[^|]*\|[^;\s]+?);?\."
    rf"((?:{_STAT_PREFIX})[A-Za-z0-9_.]*):\s*(\d+)\s*$"
)


def host_fqdn(host: str, namespace: str, domain: str = "cluster.local") -> str:
    """``httpbin`` -> ``httpbin.default.svc.cluster.local`` (Istio's short-name rule)."""
    if host.endswith("." + domain) or host.count(".") >= 2:
        return host
    if "." in host:  # name.namespace
        return f"{host}.svc.{domain}"
    return f"{host}.{namespace}.svc.{domain}"


def parse_cluster_stats(text: str) -> dict[str, dict[str, float]]:
    """``{cluster name: {stat: value}}`` for every outbound cluster, from either format."""
    out: dict[str, dict[str, float]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _TEXT_LINE.match(line)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = float(m.group(3))
            continue
        m = _PROM_LINE.match(line)
        if not m or not m.group(1).startswith("envoy_cluster_") or not m.group(2):
            continue
        labels = dict(_LABEL.findall(m.group(2)))
        cluster = next((v for k, v in labels.items() if k.endswith("cluster_name")), None)
        if not cluster or not cluster.startswith("outbound|"):
            continue
        stat = m.group(1)[len("envoy_cluster_") :]
        if stat.startswith("outlier_detection_"):
            stat = "outlier_detection." + stat[len("outlier_detection_") :]
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        # Several series (e.g. by response code) may share a name: sum them.
        stats = out.setdefault(cluster, {})
        stats[stat] = stats.get(stat, 0.0) + value
    return out


def _matches(cluster: str, fqdn: str, port: int | None, subset: str | None) -> bool:
    parts = cluster.split("|")
    if len(parts) != 4 or parts[3] != fqdn:
        return False
    if port is not None and parts[1] != str(port):
        return False
    return subset is None or parts[2] == subset


def breaker_summary(
    text: str,
    host: str,
    *,
    namespace: str = "default",
    port: int | None = None,
    subset: str | None = None,
) -> dict[str, Any]:
    """Flat breaker counters for ``host`` (all its ports/subsets unless narrowed), summed."""
    fqdn = host_fqdn(host, namespace)
    clusters = parse_cluster_stats(text)
    chosen = sorted(c for c in clusters if _matches(c, fqdn, port, subset))
    summary: dict[str, Any] = {"host": fqdn, "clusters": chosen}
    for key, stat in BREAKER_STATS.items():
        summary[key] = int(sum(clusters[c].get(stat, 0.0) for c in chosen))
    # Requests the breaker refused (503 UO, x-envoy-overloaded), whichever limit refused them.
    # A connection overflow refuses nothing by itself: the request waits as pending.
    summary["shed"] = summary["pending_overflow"] + summary["rq_active_overflow"]
    return summary


def known_hosts(text: str) -> list[str]:
    """Hosts with an outbound cluster in these stats (for 'did you mean' messages)."""
    return sorted({c.split("|")[3] for c in parse_cluster_stats(text) if c.count("|") == 3})
