"""Istio's checks of a VirtualService spec: hosts, gateways, HTTP/TCP/TLS routes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosmesh_ext.istio._checks import (
    DNS_LABEL,
    HTTP_STATUS_CODES,
    RETRY_ON_POLICIES,
    Cause,
    as_int,
    as_list,
    as_map,
    duration_causes,
    gateway_ref_problem,
    host_problem,
    labels_problem,
    objects_in,
    percentage_causes,
    port_causes,
)
from chaosmesh_ext.istio.hosts import host_matches
from chaosmesh_ext.istio.resources import GRPC_STATUS_CODES


def virtual_service_causes(spec: Mapping[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    hosts = as_list(spec.get("hosts"))
    gateways = as_list(spec.get("gateways"))
    if not hosts:
        # Without hosts this is a delegate VirtualService.
        if gateways:
            out.append(
                Cause("spec.gateways", "delegate virtual service must have no gateways specified")
            )
        if spec.get("tls"):
            out.append(
                Cause("spec.tls", "delegate virtual service must have no tls route specified")
            )
        if spec.get("tcp"):
            out.append(
                Cause("spec.tcp", "delegate virtual service must have no tcp route specified")
            )
    for i, ref in enumerate(gateways):
        problem = gateway_ref_problem(ref)
        if problem:
            out.append(Cause(f"spec.gateways[{i}]", problem))
    applies_to_mesh = not gateways or "mesh" in gateways
    valid_hosts = True
    for i, host in enumerate(hosts):
        problem = host_problem(host, allow_ip=True)
        if problem:
            out.append(Cause(f"spec.hosts[{i}]", problem))
            valid_hosts = False
        elif applies_to_mesh and host == "*":
            out.append(
                Cause(
                    f"spec.hosts[{i}]",
                    "wildcard host * is not allowed for virtual services bound to the mesh gateway",
                )
            )
            valid_hosts = False
    if valid_hosts:
        for i, a in enumerate(hosts):
            for b in hosts[i + 1 :]:
                if host_matches(a, b) or host_matches(b, a):
                    out.append(
                        Cause("spec.hosts", f"duplicate hosts in virtual service: {a} & {b}")
                    )
    if not spec.get("http") and not spec.get("tcp") and not spec.get("tls"):
        out.append(Cause("spec", "http, tcp or tls must be provided in virtual service"))
    for i, route in enumerate(as_list(spec.get("http"))):
        if not isinstance(route, Mapping):
            out.append(Cause(f"spec.http[{i}]", "http route may not be null"))
            continue
        out.extend(http_route_causes(route, f"spec.http[{i}]", delegate=not hosts))
    for proto in ("tcp", "tls"):
        for i, route in objects_in(spec.get(proto)):
            path = f"spec.{proto}[{i}]"
            if proto == "tls" and not route.get("match"):
                out.append(
                    Cause(f"{path}.match", "TLS route must have at least one match condition")
                )
            for j, match in objects_in(route.get("match")):
                if proto == "tls" and not match.get("sniHosts"):
                    out.append(
                        Cause(
                            f"{path}.match[{j}].sniHosts",
                            "TLS match must have at least one SNI host",
                        )
                    )
                out.extend(port_causes(match.get("port"), f"{path}.match[{j}].port"))
            if not route.get("route"):
                out.append(Cause(f"{path}.route", f"{proto.upper()} route is required"))
            out.extend(_destinations(route.get("route"), f"{path}.route"))
    return out


def http_route_causes(route: Mapping[str, Any], path: str, delegate: bool = False) -> list[Cause]:
    """Problems Istio finds in one HTTP route (``path`` is where it sits)."""
    out: list[Cause] = []
    has_route = bool(route.get("route"))
    if route.get("delegate") is not None and not delegate:
        if route.get("redirect") is not None:
            out.append(Cause(f"{path}.redirect", "root HTTP route must not specify redirect"))
        if route.get("route") is not None:
            out.append(Cause(f"{path}.route", "root HTTP route must not specify route"))
    else:
        out.extend(_route_conflicts(route, path, has_route))
    if route.get("mirror") is not None and route.get("mirrors"):
        out.append(Cause(f"{path}.mirrors", "HTTP route cannot contain both mirror and mirrors"))
    for j, match in objects_in(route.get("match")):
        out.extend(_http_match(match, f"{path}.match[{j}]"))
    if route.get("fault") is not None:
        out.extend(fault_causes(route.get("fault"), f"{path}.fault"))
    if route.get("retries") is not None:
        out.extend(retry_causes(route.get("retries"), f"{path}.retries"))
    out.extend(duration_causes(route.get("timeout"), f"{path}.timeout"))
    out.extend(_destinations(route.get("route"), f"{path}.route"))
    if route.get("mirror") is not None:
        out.extend(_destination(route.get("mirror"), f"{path}.mirror"))
    for j, mirror in objects_in(route.get("mirrors")):
        if mirror.get("destination") is None:
            out.append(
                Cause(f"{path}.mirrors[{j}].destination", "destination is required for mirrors")
            )
        else:
            out.extend(_destination(mirror.get("destination"), f"{path}.mirrors[{j}].destination"))
        out.extend(_mirror_pct(mirror.get("percentage"), f"{path}.mirrors[{j}].percentage.value"))
    out.extend(_mirror_pct(route.get("mirrorPercentage"), f"{path}.mirrorPercentage.value"))
    redirect = route.get("redirect")
    if isinstance(redirect, Mapping):
        out.extend(_redirect_causes(redirect, route.get("match"), f"{path}.redirect"))
    direct = route.get("directResponse")
    if isinstance(direct, Mapping):
        status = as_int(direct.get("status"))
        if not 200 <= status <= 600:  # validateHTTPStatus: 600 passes, whatever its words
            out.append(
                Cause(
                    f"{path}.directResponse.status", f"HTTP status {status} is not in range 200-599"
                )
            )
    rewrite = route.get("rewrite")
    if isinstance(rewrite, Mapping):
        if rewrite.get("uri") and rewrite.get("uriRegexRewrite"):
            out.append(
                Cause(f"{path}.rewrite", "rewrite may only contain one of URI or UriRegexRewrite")
            )
        elif not (rewrite.get("uri") or rewrite.get("uriRegexRewrite") or rewrite.get("authority")):
            out.append(
                Cause(
                    f"{path}.rewrite",
                    "rewrite must specify at least one of URI, UriRegexRewrite, or authority",
                )
            )
    return out


def _redirect_causes(redirect: Mapping[str, Any], matches: Any, path: str) -> list[Cause]:
    """istiod's validateHTTPRedirect: ``port`` and ``derivePort`` count as a port (the
    ``redirect_port`` oneof is set by either key, even ``port: 0``)."""
    out: list[Cause] = []
    if redirect.get("uri") and redirect.get("prefixRewrite"):
        out.append(Cause(path, "redirect may only specify one of uri or prefix_rewrite"))
    if redirect.get("prefixRewrite"):
        for _, match in objects_in(matches):
            uri = match.get("uri")
            if isinstance(uri, Mapping) and "prefix" not in uri:
                out.append(
                    Cause(
                        f"{path}.prefixRewrite",
                        "redirect prefix_rewrite requires all URI matches to use prefix match type",
                    )
                )
                break
    has_port = redirect.get("port") is not None or redirect.get("derivePort") is not None
    if not has_port and not any(
        redirect.get(k) for k in ("uri", "prefixRewrite", "authority", "scheme")
    ):
        out.append(Cause(path, "redirect must specify URI, authority, scheme, or port"))
    code = as_int(redirect.get("redirectCode"))
    if code and not 300 <= code <= 399:
        out.append(
            Cause(f"{path}.redirectCode", f"{code} is not a valid redirect code, must be 3xx")
        )
    if redirect.get("scheme") not in (None, "", "http", "https"):
        out.append(Cause(f"{path}.scheme", 'invalid redirect scheme, must be "http" or "https"'))
    out.extend(port_causes(redirect.get("port"), f"{path}.port"))
    return out


def _route_conflicts(route: Mapping[str, Any], path: str, has_route: bool) -> list[Cause]:
    out: list[Cause] = []
    for key in ("redirect", "directResponse"):
        if route.get(key) is None:
            continue
        if has_route:
            out.append(Cause(f"{path}.route", f"HTTP route cannot contain both route and {key}"))
        for other in ("fault", "rewrite"):
            if route.get(other) is not None:
                out.append(
                    Cause(f"{path}.{other}", f"HTTP route cannot contain both {other} and {key}")
                )
    if route.get("redirect") is not None and route.get("directResponse") is not None:
        out.append(
            Cause(
                f"{path}.directResponse",
                "HTTP route cannot contain both redirect and directResponse",
            )
        )
    if not has_route and route.get("redirect") is None and route.get("directResponse") is None:
        out.append(Cause(f"{path}.route", "HTTP route, redirect or direct_response is required"))
    return out


def _string_match(value: Any, path: str, where: str) -> list[Cause]:
    sm = as_map(value)
    set_keys = [k for k in ("exact", "prefix", "regex") if k in sm]
    if len(set_keys) > 1:
        return [Cause(path, f"only one of exact, prefix, regex may be set, got {set_keys}")]
    if "prefix" in sm and sm["prefix"] == "":
        return [Cause(path, f"{where!r}: prefix string match should not be empty")]
    if "regex" in sm and sm["regex"] == "":
        return [Cause(path, f"{where!r}: regex string match should not be empty")]
    return []


def _http_match(match: Mapping[str, Any], path: str) -> list[Cause]:
    out: list[Cause] = []
    for group in ("headers", "withoutHeaders", "queryParams"):
        for name, sm in as_map(match.get(group)).items():
            if group != "queryParams" and not name:
                out.append(Cause(f"{path}.{group}", "header name cannot be empty"))
            if group == "headers" and sm is None:
                out.append(Cause(f"{path}.{group}.{name}", f"header match {name} cannot be null"))
            if group == "withoutHeaders" and as_map(sm).get("regex") == "*":
                continue
            out.extend(_string_match(sm, f"{path}.{group}.{name}", group))
    for field in ("scheme", "method", "authority"):
        out.extend(_string_match(match.get(field), f"{path}.{field}", field))
    uri = as_map(match.get("uri"))
    if "regex" in uri and uri["regex"] == "":
        out.append(Cause(f"{path}.uri", "'uri': regex string match should not be empty"))
    out.extend(port_causes(match.get("port"), f"{path}.port"))
    problem = labels_problem(match.get("sourceLabels"))
    if problem:
        out.append(Cause(f"{path}.sourceLabels", problem))
    for k, ref in enumerate(as_list(match.get("gateways"))):
        problem = gateway_ref_problem(ref)
        if problem:
            out.append(Cause(f"{path}.gateways[{k}]", problem))
    ns = match.get("sourceNamespace")
    if isinstance(ns, str) and ns and not DNS_LABEL.match(ns):
        out.append(Cause(f"{path}.sourceNamespace", f"sourceNamespace match {ns} is invalid"))
    return out


def _mirror_pct(value: Any, path: str) -> list[Cause]:
    pct = as_map(value).get("value")
    if isinstance(pct, int | float) and not isinstance(pct, bool) and not 0 <= pct <= 100:
        return [Cause(path, f"mirror percentage must be in 0..100 (it has {pct})")]
    return []


def fault_causes(fault: Any, path: str) -> list[Cause]:
    """Problems in one ``HTTPFaultInjection`` block."""
    f = as_map(fault)
    if f.get("delay") is None and f.get("abort") is None:
        return [Cause(path, "HTTP fault injection must have an abort and/or a delay")]
    out: list[Cause] = []
    delay = f.get("delay")
    if isinstance(delay, Mapping):
        out.extend(percentage_causes(delay.get("percentage"), f"{path}.delay.percentage.value"))
        pct = delay.get("percent")
        if isinstance(pct, int) and not isinstance(pct, bool) and not 0 <= pct <= 100:
            out.append(Cause(f"{path}.delay.percent", f"percentage {pct} is not in range 0..100"))
        if delay.get("fixedDelay") is not None and delay.get("exponentialDelay") is not None:
            out.append(
                Cause(f"{path}.delay", "only one of fixedDelay, exponentialDelay may be set")
            )
        out.extend(duration_causes(delay.get("fixedDelay"), f"{path}.delay.fixedDelay"))
        if delay.get("exponentialDelay") is not None:
            out.append(
                Cause(f"{path}.delay.exponentialDelay", "exponentialDelay not supported yet")
            )
    abort = f.get("abort")
    if isinstance(abort, Mapping):
        out.extend(percentage_causes(abort.get("percentage"), f"{path}.abort.percentage.value"))
        kinds = [k for k in ("httpStatus", "grpcStatus", "http2Error") if abort.get(k) is not None]
        if len(kinds) > 1:
            out.append(
                Cause(
                    f"{path}.abort",
                    f"only one of httpStatus, grpcStatus, http2Error may be set, got {kinds}",
                )
            )
        status = abort.get("httpStatus")
        # validateHTTPStatus lets 600 through (its message says 599).
        if isinstance(status, int) and not isinstance(status, bool) and not 200 <= status <= 600:
            out.append(
                Cause(f"{path}.abort.httpStatus", f"HTTP status {status} is not in range 200-599")
            )
        grpc = abort.get("grpcStatus")
        if isinstance(grpc, str) and grpc not in GRPC_STATUS_CODES:
            out.append(
                Cause(
                    f"{path}.abort.grpcStatus",
                    f"gRPC status {grpc!r} is not supported; use a name such as 'UNAVAILABLE'",
                )
            )
        if abort.get("http2Error") is not None:
            out.append(
                Cause(f"{path}.abort.http2Error", "HTTP/2 abort fault injection not supported yet")
            )
    return out


def retry_causes(retries: Any, path: str) -> list[Cause]:
    """Problems in one ``HTTPRetry`` block (absent ``attempts`` counts as 0, as in Istio)."""
    r = as_map(retries)
    out: list[Cause] = []
    attempts = as_int(r.get("attempts"))
    if attempts < 0:
        out.append(Cause(f"{path}.attempts", "attempts cannot be negative"))
    if attempts == 0 and (
        r.get("perTryTimeout") is not None
        or r.get("retryOn")
        or r.get("retryRemoteLocalities") is not None
    ):
        out.append(
            Cause(
                f"{path}.attempts",
                "http retry policy configured when attempts are set to 0 (disabled)",
            )
        )
    out.extend(duration_causes(r.get("perTryTimeout"), f"{path}.perTryTimeout"))
    out.extend(duration_causes(r.get("backoff"), f"{path}.backoff"))
    retry_on = r.get("retryOn")
    if isinstance(retry_on, str) and retry_on:
        for policy in retry_on.split(","):  # no trimming: Istio rejects " reset" too
            if policy in RETRY_ON_POLICIES:
                continue
            if policy.isdigit() and int(policy) in HTTP_STATUS_CODES:
                continue
            out.append(Cause(f"{path}.retryOn", f"{policy!r} is not a valid retryOn policy"))
    return out


def _destinations(value: Any, path: str) -> list[Cause]:
    out: list[Cause] = []
    entries = as_list(value)
    total = 0
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            out.append(Cause(f"{path}[{i}]", "weight may not be nil"))
            continue
        if entry.get("destination") is None:
            out.append(Cause(f"{path}[{i}].destination", "destination is required"))
        else:
            out.extend(_destination(entry.get("destination"), f"{path}[{i}].destination"))
        weight = as_int(entry.get("weight"))
        if weight < 0:
            out.append(Cause(f"{path}[{i}].weight", f"weight {weight} < 0"))
        total += weight
    if len(entries) > 1 and total == 0:
        out.append(Cause(path, "total destination weight = 0"))
    return out


def _destination(value: Any, path: str) -> list[Cause]:
    dest = as_map(value)
    out: list[Cause] = []
    host = dest.get("host")
    if host == "*":
        out.append(Cause(f"{path}.host", "invalid destination host *"))
    else:
        problem = host_problem(host)
        if problem:
            out.append(Cause(f"{path}.host", problem))
    subset = dest.get("subset")
    if isinstance(subset, str) and subset and not DNS_LABEL.match(subset):
        out.append(Cause(f"{path}.subset", f"subset name is invalid: {subset}"))
    port = dest.get("port")
    if isinstance(port, Mapping):
        number = as_int(port.get("number"))
        if not 1 <= number <= 65535:
            out.append(
                Cause(f"{path}.port.number", f"port number {number} must be in the range 1..65535")
            )
    return out
