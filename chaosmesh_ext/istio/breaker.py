"""Circuit breaking edits on a DestinationRule: connection pool and outlier detection.

``apply_circuit_breaker`` changes only the fields it is given and keeps every other field of
``connectionPool`` / ``outlierDetection``. On a subset it edits the subset's own traffic
policy; because Istio lets a subset's block *replace* the top-level block whole, a subset
that has no block of its own starts from a copy of the top-level one, so fields the caller
did not name keep the value they had in effect.

A port-level policy (``portLevelSettings``) *replaces* the policy it sits in for its port
(istiod's GetPortLevelTrafficPolicy: nothing is inherited), so a breaker written at the top
level has no effect on such a port. Editing a policy that has port-level settings therefore
needs ``port``: the port's block is edited (created from a copy of the blocks in effect), and
without ``port`` the edit is refused, naming the ports.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from chaosmesh_ext.istio.durations import duration_text, istio_duration_problem
from chaosmesh_ext.istio.errors import IstioError
from chaosmesh_ext.istio.hosts import fqdn
from chaosmesh_ext.istio.resources import DEFAULT_API_VERSION, is_istio_api_version, namespace_of
from chaosmesh_ext.istio.routes import check_result, copied

KIND = "DestinationRule"

# argument -> (block, sub-block or None, Istio field, kind of value)
FIELDS: dict[str, tuple[str, str | None, str, str]] = {
    "max_connections": ("connectionPool", "tcp", "maxConnections", "count"),
    "http1_max_pending_requests": ("connectionPool", "http", "http1MaxPendingRequests", "count"),
    "http2_max_requests": ("connectionPool", "http", "http2MaxRequests", "count"),
    "max_requests_per_connection": ("connectionPool", "http", "maxRequestsPerConnection", "count"),
    "max_retries": ("connectionPool", "http", "maxRetries", "count"),
    "consecutive_gateway_errors": ("outlierDetection", None, "consecutiveGatewayErrors", "count"),
    "consecutive_5xx_errors": ("outlierDetection", None, "consecutive5xxErrors", "count"),
    "interval": ("outlierDetection", None, "interval", "duration"),
    "base_ejection_time": ("outlierDetection", None, "baseEjectionTime", "duration"),
    "max_ejection_percent": ("outlierDetection", None, "maxEjectionPercent", "percent"),
    "min_health_percent": ("outlierDetection", None, "minHealthPercent", "percent"),
}
BLOCKS = ("connectionPool", "outlierDetection")
# What a port-level entry holds; a new one starts as a copy of these, as they were in effect.
PORT_BLOCKS = ("connectionPool", "loadBalancer", "outlierDetection", "tls")


def apply_circuit_breaker(
    dr: Mapping[str, Any] | None,
    name: str,
    namespace: str,
    host: str | None = None,
    subset: str | None = None,
    *,
    port: int | None = None,
    api_version: str = DEFAULT_API_VERSION,
    **fields: Any,
) -> dict[str, Any]:
    """``dr`` with the given circuit-breaker fields set (a new DestinationRule if ``dr`` is None).

    ``fields`` are the keys of :data:`FIELDS` (``max_connections=1``, ``interval="1s"``...);
    ``None`` values are ignored. Creating a rule needs ``host``; with an existing rule a
    ``host`` that names another service is an error. ``port`` edits the port-level policy of
    that port (of ``subset``'s policy when given), which Istio uses instead of the rest.
    """
    given = {k: v for k, v in fields.items() if v is not None}
    label = f"{namespace or 'default'}/{name}"
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise IstioError(
            KIND,
            label,
            "spec.trafficPolicy",
            f"unknown circuit-breaker field(s) {unknown}; known: {sorted(FIELDS)}",
        )
    if not given:
        raise IstioError(
            KIND,
            label,
            "spec.trafficPolicy",
            f"no circuit-breaker field given (one of {sorted(FIELDS)})",
        )
    if dr is None:
        if not host:
            raise IstioError(KIND, label, "spec.host", "is required to create a DestinationRule")
        if not is_istio_api_version(api_version):
            raise IstioError(
                KIND, label, "apiVersion", f"not an Istio networking version: {api_version!r}"
            )
        before: dict[str, Any] = {
            "apiVersion": api_version,
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace or "default"},
            "spec": {"host": host},
        }
        if subset:
            raise IstioError(
                KIND,
                label,
                "spec.subsets",
                f"unknown subset {subset!r}: a new DestinationRule has no subsets",
            )
    else:
        before = copied(dr, KIND)
        current = before["spec"].get("host")
        ns = namespace_of(before)
        if host and fqdn(host, ns) != fqdn(str(current or ""), ns):
            raise IstioError.for_object(
                before,
                "spec.host",
                f"is {current!r}, not {host!r}: this rule is for another host",
                KIND,
            )
    out = copy.deepcopy(before)
    policy, base = _policy(out, subset)
    if port is not None:
        policy, base = _port_policy(out, policy, base, port, subset)
    else:
        _refuse_shadowed_top_level(out, policy, base)
    for argument, value in given.items():
        block_name, group, field, kind = FIELDS[argument]
        where = f"{base}.{block_name}.{group + '.' if group else ''}{field}"
        value = _checked(out, where, argument, value, kind)
        if not isinstance(policy.get(block_name), dict):  # absent, or null
            top = out["spec"].get("trafficPolicy") or {}
            inherited = top.get(block_name) if subset and port is None else None
            policy[block_name] = copy.deepcopy(inherited) if isinstance(inherited, Mapping) else {}
        block = policy[block_name]
        if group:
            if not isinstance(block.get(group), dict):
                block[group] = {}
            block = block[group]
        block[field] = value
    return check_result(KIND, dr if dr is not None else {}, out)


def remove_circuit_breaker(
    dr: Mapping[str, Any], subset: str | None = None, port: int | None = None
) -> dict[str, Any]:
    """``dr`` without ``connectionPool`` and ``outlierDetection`` (of ``subset`` if given, of
    the port-level policy of ``port`` if given).

    A traffic policy left empty is removed too: Istio rejects an empty one (and an empty
    port-level entry).
    """
    out = copied(dr, KIND)
    policy, _ = _policy(out, subset, create=False)
    if port is not None:
        levels = policy.get("portLevelSettings") or []
        entry = next((lv for lv in levels if _port_of(lv) == port), None)
        if entry is not None:
            for block in BLOCKS:
                entry.pop(block, None)
            if not any(entry.get(b) is not None for b in PORT_BLOCKS):
                levels.remove(entry)
            if not levels:
                policy.pop("portLevelSettings", None)
    for block in BLOCKS if port is None else ():
        policy.pop(block, None)
    holder = _policy_holder(out, subset)
    if holder is not None and not holder.get("trafficPolicy"):
        holder.pop("trafficPolicy", None)
    return check_result(KIND, dr, out)


def _policy_holder(dr: dict[str, Any], subset: str | None) -> dict[str, Any] | None:
    spec: dict[str, Any] = dr["spec"]
    if subset is None:
        return spec
    for entry in spec.get("subsets") or []:
        if isinstance(entry, dict) and entry.get("name") == subset:
            return entry
    return None


def _policy(
    dr: dict[str, Any], subset: str | None, create: bool = True
) -> tuple[dict[str, Any], str]:
    holder = _policy_holder(dr, subset)
    if holder is None:
        names = [s.get("name") for s in dr["spec"].get("subsets") or [] if isinstance(s, Mapping)]
        raise IstioError.for_object(
            dr,
            "spec.subsets",
            f"unknown subset {subset!r} (subsets: {', '.join(map(str, names)) or 'none'})",
            KIND,
        )
    base = "spec.trafficPolicy"
    if subset is not None:
        index = dr["spec"]["subsets"].index(holder)
        base = f"spec.subsets[{index}].trafficPolicy"
    policy = holder.get("trafficPolicy")
    if not isinstance(policy, dict):
        policy = {}
        if create:
            holder["trafficPolicy"] = policy
    return policy, base


def _port_of(level: Any) -> int | None:
    number = (level.get("port") or {}).get("number") if isinstance(level, Mapping) else None
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def _refuse_shadowed_top_level(dr: Mapping[str, Any], policy: Mapping[str, Any], base: str) -> None:
    """A policy with port-level settings: a breaker written beside them is ignored for
    those ports (GetPortLevelTrafficPolicy), so say so instead of editing it."""
    ports = [p for p in map(_port_of, policy.get("portLevelSettings") or []) if p is not None]
    if ports:
        listed = ", ".join(map(str, ports))
        raise IstioError.for_object(
            dr,
            f"{base}.portLevelSettings",
            f"port(s) {listed} have port-level settings, which replace this policy for those "
            "ports (Istio inherits nothing from it there): a circuit breaker written here would "
            f"not apply to them; pass port ({listed}) to edit that port's policy",
            KIND,
        )


def _port_policy(
    dr: dict[str, Any], policy: dict[str, Any], base: str, port: Any, subset: str | None
) -> tuple[dict[str, Any], str]:
    """The port-level entry for ``port`` in ``policy`` (created as a copy of the blocks in
    effect on that port, since a port-level entry replaces them all)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise IstioError.for_object(
            dr, f"{base}.portLevelSettings", f"port must be 1..65535, got {port!r}", KIND
        )
    levels = policy.setdefault("portLevelSettings", [])
    for index, level in enumerate(levels):
        if _port_of(level) == port:
            return level, f"{base}.portLevelSettings[{index}]"
    in_effect: Mapping[str, Any] = policy
    if subset is not None:
        # A subset's blocks override the rule's (its port-level entry, if any, for the port).
        top = dr["spec"].get("trafficPolicy") or {}
        top_level = next(
            (lv for lv in top.get("portLevelSettings") or [] if _port_of(lv) == port), top
        )
        in_effect = {b: policy.get(b, top_level.get(b)) for b in PORT_BLOCKS}
    entry: dict[str, Any] = {"port": {"number": port}}
    for block in PORT_BLOCKS:
        if isinstance(in_effect.get(block), Mapping):
            entry[block] = copy.deepcopy(in_effect[block])
    levels.append(entry)
    return entry, f"{base}.portLevelSettings[{len(levels) - 1}]"


def _checked(dr: Mapping[str, Any], where: str, argument: str, value: Any, kind: str) -> Any:
    if kind == "duration":
        text = duration_text(value)
        problem = istio_duration_problem(text)
        if problem:
            raise IstioError.for_object(dr, where, f"{argument}: {problem}", KIND)
        return text
    if isinstance(value, bool) or not isinstance(value, int):
        raise IstioError.for_object(
            dr, where, f"{argument} must be an integer, got {value!r}", KIND
        )
    if value < 0 or (kind == "percent" and value > 100):
        limits = "0..100" if kind == "percent" else ">= 0"
        raise IstioError.for_object(dr, where, f"{argument} must be {limits}, got {value}", KIND)
    return value
