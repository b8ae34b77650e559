"""DestinationRule ``loadBalancer.consistentHash`` -> the route's hash policy (istiod's
ConsistentHashToHashPolicy, HashForHTTPDestination, hashForService in route.go).

The cluster side (RING_HASH / MAGLEV) is in ``clusters.apply_load_balancer``; the key to hash
on lives on the route, found from the destination's DestinationRule. That is all a route reads
of a DestinationRule, so routes are translated from ``route_rules``: each rule cut down to its
hash settings, the same objects while those are the same. A circuit breaker or an outlier
detection patched into a rule then leaves every route as it was, and the translator does not
walk a thousand VirtualServices to find that out.
"""

from __future__ import annotations

import json
from typing import Any

from .clusters import Rules, destination_rule_for
from .memo import Memo
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


def _hash_settings(policy: Any) -> JSON | None:
    """What ``_consistent_hash`` and ``_port_level_hash`` read of a traffic policy, None when
    they would find no hash in it (as in no policy at all)."""
    if not policy:
        return None
    out: JSON = {}
    chosen = (policy.get("loadBalancer") or {}).get("consistentHash")
    if chosen is not None:
        out["loadBalancer"] = {"consistentHash": chosen}
    levels = [
        {"port": level.get("port"), **(_hash_settings(level) or {})}
        for level in policy.get("portLevelSettings") or []
    ]
    # The first level of a port wins, hash or not; with no hash on any, none ever is found.
    if any("loadBalancer" in level for level in levels):
        out["portLevelSettings"] = levels
    return out or None


def route_view(rule: JSON) -> JSON:
    """The parts of a (merged) DestinationRule that ``destination_hash`` and
    ``service_hash`` read: its name, host, and the consistent hashes of its top level, port
    levels and subsets. Anything else (connection pools, outlier detection, TLS, subset
    labels) makes clusters, not routes. A rule of an odd shape is its own view, so routes
    read it (and fail on it) exactly as they would have."""
    try:
        spec = rule.get("spec") or {}
        view_spec: JSON = {"host": spec.get("host")}
        top = _hash_settings(spec.get("trafficPolicy"))
        if top is not None:
            view_spec["trafficPolicy"] = top
        subsets = [
            {"name": s.get("name"), "trafficPolicy": _hash_settings(s.get("trafficPolicy"))}
            for s in spec.get("subsets") or []
        ]
        if any(s["trafficPolicy"] is not None for s in subsets):
            view_spec["subsets"] = subsets
        metadata = rule.get("metadata") or {}
        identity = {"name": metadata.get("name"), "namespace": metadata.get("namespace")}
        return {"metadata": identity, "spec": view_spec}
    except (AttributeError, TypeError):
        return rule


def route_rules(rules: Rules, memo: Memo) -> Rules:
    """``rules`` as routes read them (``route_view`` of each), the very same object while no
    rule's hash settings changed: what routes and route configurations are memoised on."""
    views = {host: memo.of(rule, "route view", _shared_view(memo)) for host, rule in rules.items()}
    key = ("route rules", tuple((host, id(view)) for host, view in views.items()))
    return memo.get(key, tuple(views.values()), lambda: Rules(views))


def _shared_view(memo: Memo) -> Any:
    def view_of(rule: JSON) -> JSON:
        view = route_view(rule)
        if view is rule:
            return rule
        # By content: a rule patched elsewhere gets the view its previous version had.
        text = json.dumps(view, sort_keys=True, default=repr)
        return memo.get(("route view text", text), None, lambda: view)

    return view_of
