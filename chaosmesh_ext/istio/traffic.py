"""Traffic edits on a VirtualService: canary weights, route timeouts, retries; and the split
a route declares.

Each returns a new dict. Edits to a route also apply to the copies of it that a targeted
fault inserted in front of it (``chaosmesh-fault-…``), so faulted traffic keeps going where
the route sends the rest.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chaosmesh_ext.istio.durations import duration_text, istio_duration_problem, parse_duration_ns
from chaosmesh_ext.istio.errors import IstioError
from chaosmesh_ext.istio.hosts import fqdn, host_matches
from chaosmesh_ext.istio.resources import namespace_of
from chaosmesh_ext.istio.routes import (
    RouteRef,
    check_result,
    copied,
    http_routes,
    is_inserted,
    route_indexes,
)
from chaosmesh_ext.istio.validate import retry_causes

KIND = "VirtualService"


def shift_traffic(
    vs: Mapping[str, Any],
    weights: Mapping[str, int],
    route: RouteRef = None,
    destination_rules: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Send each targeted route's traffic to exactly the subsets (or hosts) in ``weights``.

    ``weights`` is keyed by subset name (``{"v1": 90, "v2": 10}``) — every subset must be
    defined by one of ``destination_rules`` for the route's destination host — or by host
    for host-only destinations (``{"reviews": 100}``). Weights are integers >= 0 with a
    total > 0; Istio treats them as relative. Host and port come from the route's existing
    destinations; per-destination header edits of a kept subset are kept.
    """
    out = copied(vs, KIND)
    positions = route_indexes(out, route)
    rules = list(destination_rules)
    namespace = namespace_of(out)
    routes = http_routes(out)
    for position in positions:
        new = _destinations_for(out, position, routes[position], weights, rules, namespace)
        for p in [position, *_shadows(routes, position)]:
            routes[p]["route"] = copy.deepcopy(new)
    return check_result(KIND, vs, out)


def declared_split(vs: Mapping[str, Any], route: RouteRef = None) -> dict[str, float]:
    """Fraction per subset (or per host, for host-only destinations) of one HTTP route.

    ``route`` is the route's name or index; default the first of the user's own routes (the
    one a request without special headers takes in the usual canary layout). One destination
    without a weight takes everything (Istio's rule). Raises :class:`IstioError`.
    """
    position = route_indexes(vs, route)[0]
    chosen = http_routes(vs)[position]
    raw = chosen.get("route") if isinstance(chosen, Mapping) else None
    destinations = [d for d in raw or [] if isinstance(d, Mapping)]
    weights: dict[str, float] = {}
    for dest in destinations:
        target = dest.get("destination")
        target = target if isinstance(target, Mapping) else {}
        key = str(target.get("subset") or target.get("host") or "?")
        weight = float(dest.get("weight", 100 if len(destinations) == 1 else 0))
        weights[key] = weights.get(key, 0.0) + weight
    total = sum(weights.values())
    if total <= 0:
        raise IstioError.for_object(
            vs, f"spec.http[{position}].route", f"weights add up to {total:g}", KIND
        )
    return {key: round(value / total, 4) for key, value in weights.items()}


def set_timeout(
    vs: Mapping[str, Any], timeout: str | float, route: RouteRef = None
) -> dict[str, Any]:
    """Set the targeted routes' request timeout; ``"0s"`` removes it (no timeout, Istio's default).

    Istio's webhook rejects a literal ``timeout: 0s``; leaving the field out is how Istio
    spells "disabled", so that is what ``"0s"`` does here.
    """
    out = copied(vs, KIND)
    positions = route_indexes(out, route)
    text: Any = duration_text(timeout)
    field = f"spec.http[{positions[0]}].timeout"
    try:
        disable = parse_duration_ns(text) == 0
    except ValueError as exc:
        raise IstioError.for_object(vs, field, str(exc), KIND) from None
    problem = None if disable else istio_duration_problem(text)
    if problem:
        raise IstioError.for_object(vs, field, problem, KIND)
    routes = http_routes(out)
    for position in positions:
        for p in [position, *_shadows(routes, position)]:
            if disable:
                routes[p].pop("timeout", None)
            else:
                routes[p]["timeout"] = text
    return check_result(KIND, vs, out)


def set_retries(
    vs: Mapping[str, Any],
    attempts: int,
    per_try_timeout: str | float | None = None,
    retry_on: str | Sequence[str] | None = None,
    route: RouteRef = None,
) -> dict[str, Any]:
    """Set the targeted routes' retry policy.

    ``attempts=0`` disables retries. ``retry_on`` is Envoy's comma list (``"5xx,reset"``) or
    a list of its items; without it Istio retries connect failures, refused streams and
    gRPC ``unavailable``/``cancelled`` only — since Istio 1.24 a 503 is retried only when
    ``retry_on`` names ``5xx``, ``gateway-error`` or ``503``. Other fields of an existing
    retry policy (``backoff``, ``retryRemoteLocalities``...) are kept.
    """
    out = copied(vs, KIND)
    positions = route_indexes(out, route)
    path = f"spec.http[{positions[0]}].retries"
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        raise IstioError.for_object(
            vs, f"{path}.attempts", f"must be an integer >= 0, got {attempts!r}", KIND
        )
    block: dict[str, Any] = {"attempts": attempts}
    if per_try_timeout is not None:
        text: Any = duration_text(per_try_timeout)
        problem = istio_duration_problem(text)
        if problem:
            raise IstioError.for_object(vs, f"{path}.perTryTimeout", problem, KIND)
        block["perTryTimeout"] = text
    if retry_on is not None:
        if isinstance(retry_on, str):
            block["retryOn"] = retry_on
        elif isinstance(retry_on, Sequence) and all(isinstance(x, str) for x in retry_on):
            block["retryOn"] = ",".join(retry_on)
        else:
            raise IstioError.for_object(
                vs,
                f"{path}.retryOn",
                f"must be a string or a list of strings, got {retry_on!r}",
                KIND,
            )
    for cause in retry_causes(block, path):
        raise IstioError.for_object(vs, cause.field, cause.message, KIND)
    routes = http_routes(out)
    for position in positions:
        for p in [position, *_shadows(routes, position)]:
            kept = routes[p].get("retries")
            new = dict(block)
            if attempts > 0 and isinstance(kept, Mapping):
                for key in ("retryRemoteLocalities", "retryIgnorePreviousHosts", "backoff"):
                    if key in kept:
                        new[key] = copy.deepcopy(kept[key])
            routes[p]["retries"] = new
    return check_result(KIND, vs, out)


# --- helpers -------------------------------------------------------------------------------


def _shadows(routes: list[Any], position: int) -> list[int]:
    """Routes a targeted fault inserted in front of the route at ``position``."""
    found = []
    p = position - 1
    while p >= 0 and is_inserted(routes[p]):
        found.append(p)
        p -= 1
    return found


def _destinations_for(
    vs: Mapping[str, Any],
    position: int,
    route: Mapping[str, Any],
    weights: Mapping[str, int],
    rules: list[Mapping[str, Any]],
    namespace: str,
) -> list[dict[str, Any]]:
    field = f"spec.http[{position}].route"
    if not isinstance(weights, Mapping) or not weights:
        raise IstioError.for_object(
            vs,
            field,
            f"weights must be a non-empty map of subset (or host) to weight, got {weights!r}",
            KIND,
        )
    for key, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise IstioError.for_object(
                vs, field, f"weight for {key!r} must be an integer >= 0, got {weight!r}", KIND
            )
    if sum(weights.values()) <= 0:
        raise IstioError.for_object(vs, field, "the weights must add up to more than 0", KIND)
    existing = [
        d
        for d in route.get("route") or []
        if isinstance(d, Mapping) and isinstance(d.get("destination"), Mapping)
    ]
    if not existing:
        raise IstioError.for_object(vs, field, "the route has no destinations to shift", KIND)
    hosts: dict[str, Mapping[str, Any]] = {}  # fqdn -> first destination seen for it
    for seen in existing:
        hosts.setdefault(
            fqdn(str(seen["destination"].get("host", "")), namespace), seen["destination"]
        )
    host_keys = [k for k in weights if fqdn(k, namespace) in hosts]
    subset_keys = [k for k in weights if fqdn(k, namespace) not in hosts]
    if host_keys and subset_keys:
        raise IstioError.for_object(
            vs,
            field,
            f"weights mix hosts {host_keys} and subsets {subset_keys}; use one or the other",
            KIND,
        )
    if host_keys:
        return [
            _host_destination(existing, hosts[fqdn(k, namespace)], namespace, w)
            for k, w in weights.items()
        ]
    if len(hosts) > 1:
        raise IstioError.for_object(
            vs,
            field,
            f"the route sends to several hosts ({', '.join(hosts)}); weights by subset name are "
            "ambiguous — key the weights by host, or target a route with one destination host",
            KIND,
        )
    host_fqdn, first = next(iter(hosts.items()))
    defined = _defined_subsets(rules, host_fqdn)
    for key in subset_keys:
        if key not in defined:
            known = (
                f"defined: {', '.join(sorted(defined))}"
                if defined
                else "no DestinationRule for that host defines subsets"
            )
            raise IstioError.for_object(
                vs,
                field,
                f"subset {key!r} is not defined by any DestinationRule for host "
                f"{host_fqdn} ({known})",
                KIND,
            )
    out: list[dict[str, Any]] = []
    for key, weight in weights.items():
        same = [e for e in existing if e["destination"].get("subset") == key]
        entry: dict[str, Any]
        if same:
            entry = copy.deepcopy(dict(same[0]))
        else:
            dest: dict[str, Any] = {"host": first.get("host"), "subset": key}
            if first.get("port") is not None:
                dest["port"] = copy.deepcopy(first["port"])
            entry = {"destination": dest}
        entry["weight"] = weight
        out.append(entry)
    return out


def _host_destination(
    existing: list[Mapping[str, Any]], first: Mapping[str, Any], namespace: str, weight: int
) -> dict[str, Any]:
    same = [
        e
        for e in existing
        if fqdn(str(e["destination"].get("host", "")), namespace)
        == fqdn(str(first.get("host")), namespace)
    ]
    if len(same) == 1 and not same[0]["destination"].get("subset"):
        entry = copy.deepcopy(dict(same[0]))
    else:
        dest: dict[str, Any] = {"host": first.get("host")}
        if first.get("port") is not None:
            dest["port"] = copy.deepcopy(first["port"])
        entry = {"destination": dest}
    entry["weight"] = weight
    return entry


def _defined_subsets(rules: list[Mapping[str, Any]], host_fqdn: str) -> set[str]:
    names: set[str] = set()
    for rule in rules:
        spec = rule.get("spec") if isinstance(rule, Mapping) else None
        if not isinstance(spec, Mapping):
            continue
        rule_host = fqdn(str(spec.get("host") or ""), namespace_of(rule))
        if not host_matches(rule_host, host_fqdn):
            continue
        for subset in spec.get("subsets") or []:
            if isinstance(subset, Mapping) and isinstance(subset.get("name"), str):
                names.add(subset["name"])
    return names
