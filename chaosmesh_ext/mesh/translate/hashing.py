"""DestinationRule ``loadBalancer.consistentHash`` -> the route's hash policy (istiod's
ConsistentHashToHashPolicy, HashForHTTPDestination, hashForService in route.go).

The cluster side (RING_HASH / MAGLEV) is in ``clusters.apply_load_balancer``; the key to hash
on lives on the route, found from the destination's DestinationRule.
"""

from __future__ import annotations

from .clusters import destination_rule_for
from .model import JSON
from .names import duration


def hash_policy(consistent_hash: JSON | None) -> JSON | None:
    """istiod's ConsistentHashToHashPolicy; None when the hash names no key."""
    if not consistent_hash:
        return None
    if consistent_hash.get("httpHeaderName"):
        return {"header": {"header_name": str(consistent_hash["httpHeaderName"])}}
    cookie = consistent_hash.get("httpCookie")
    if cookie is not None:
        out: JSON = {"name": str(cookie.get("name") or "")}
        if cookie.get("ttl") is not None:
            out["ttl"] = duration(cookie["ttl"], "consistentHash.httpCookie.ttl")
        if cookie.get("path"):
            out["path"] = str(cookie["path"])
        attributes = [
            {"name": str(a.get("name") or ""), "value": str(a.get("value") or "")}
            for a in cookie.get("attributes") or []
        ]
        if attributes:
            out["attributes"] = attributes
        return {"cookie": out}
    if consistent_hash.get("useSourceIp") is not None:
        return {"connection_properties": {"source_ip": bool(consistent_hash["useSourceIp"])}}
    if consistent_hash.get("httpQueryParameterName"):
        return {"query_parameter": {"name": str(consistent_hash["httpQueryParameterName"])}}
    return None


def _consistent_hash(policy: JSON | None) -> JSON | None:
    return ((policy or {}).get("loadBalancer") or {}).get("consistentHash")


def _port_level_hash(policy: JSON | None, port: int | None) -> JSON | None:
    """portLevelSettingsConsistentHash: only when the destination names its port."""
    if port is None:
        return None
    for level in (policy or {}).get("portLevelSettings") or []:
        if int((level.get("port") or {}).get("number") or 0) == port:
            return _consistent_hash(level)
    return None


def destination_hash(
    fqdn: str, port: int | None, subset: str, rules: dict[str, JSON]
) -> JSON | None:
    """istiod's HashForHTTPDestination: the consistent hash a route destination uses
    (subset port level, else subset, else port level, else top level)."""
    rule = destination_rule_for(fqdn, rules)
    if rule is None:
        return None
    spec = rule.get("spec") or {}
    top = spec.get("trafficPolicy")
    subset_hash = subset_port_hash = None
    for entry in spec.get("subsets") or []:
        if str(entry.get("name") or "") == subset:
            subset_hash = _consistent_hash(entry.get("trafficPolicy"))
            subset_port_hash = _port_level_hash(entry.get("trafficPolicy"), port)
            break
    for found in (subset_port_hash, subset_hash, _port_level_hash(top, port)):
        if found is not None:
            return found
    return _consistent_hash(top)


def service_hash(fqdn: str, port: int, rules: dict[str, JSON]) -> JSON | None:
    """istiod's hashForService: the hash of a Service's default route (top level, or the
    port-level one for ``port`` when it sets one)."""
    rule = destination_rule_for(fqdn, rules)
    if rule is None:
        return None
    top = (rule.get("spec") or {}).get("trafficPolicy")
    for level in (top or {}).get("portLevelSettings") or []:
        if int((level.get("port") or {}).get("number") or 0) == port:
            level_hash = _consistent_hash(level)
            return level_hash if level_hash is not None else _consistent_hash(top)
    return _consistent_hash(top)
