"""Validation of VirtualService, DestinationRule and Gateway as Istio's webhook does it.

``validate(obj)`` returns every problem as a :class:`Cause` (dotted field path and message,
in Istio's words where Istio has words for it); an empty list means Istio would accept the
object. The embedded API answers 422 with these causes, the edits re-validate their output
and ``lint`` reports them. It follows ``pkg/config/validation`` (istio 1.2x) and tries not to
reject anything Istio accepts; with ``strict=True`` fields the schema does not know are
reported too (what ``kubectl apply --validate=strict`` reports).
"""

from __future__ import annotations

import http
import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chaosmesh_ext.istio import schema
from chaosmesh_ext.istio.durations import istio_duration_problem
from chaosmesh_ext.istio.hosts import host_matches
from chaosmesh_ext.istio.resources import GROUP, VERSIONS, is_istio_api_version


@dataclass(frozen=True)
class Cause:
    """One reason an object is invalid: the field (``spec.http[0].timeout``) and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


# Envoy retry-on policies Istio accepts in retryOn (besides HTTP status codes).
RETRY_ON_POLICIES = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "envoy-ratelimited",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
GRPC_STATUS_CODES: dict[str, int] = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
GATEWAY_PROTOCOLS = frozenset(
    {
        "HTTP",
        "HTTPS",
        "GRPC",
        "GRPC-WEB",
        "HTTP2",
        "HTTP_PROXY",
        "MONGO",
        "REDIS",
        "MYSQL",
        "TCP",
        "TLS",
        "UDP",
    }
)
_HTTP_STATUS_TEXT = {int(s) for s in http.HTTPStatus}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Istio's DNS-1123 label for hosts: letters of either case, digits and '-' (no '_').
_HOST_LABEL = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_LABEL_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def validate(obj: object, strict: bool = False) -> list[Cause]:
    """Every reason Istio would reject ``obj`` (a VirtualService, DestinationRule or Gateway)."""
    if not isinstance(obj, Mapping):
        return [Cause("", f"must be an object, got {type(obj).__name__}")]
    causes: list[Cause] = []
    kind = obj.get("kind")
    if kind not in schema.SPECS:
        return [Cause("kind", f"must be one of {sorted(schema.SPECS)}, got {kind!r}")]
    if not is_istio_api_version(obj.get("apiVersion")):
        causes.append(
            Cause(
                "apiVersion",
                f"must be {GROUP}/<{'|'.join(VERSIONS)}>, got {obj.get('apiVersion')!r}",
            )
        )
    causes.extend(_check_metadata(obj.get("metadata"), dns_label=kind == "Gateway"))
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        causes.append(Cause("spec", "is required" if spec is None else "must be an object"))
        return causes
    unknown: list[Cause] = []
    causes.extend(check_shape(spec, schema.SPECS[kind], "spec", unknown))
    if strict:
        causes.extend(unknown)
    semantic = {
        "VirtualService": _virtual_service,
        "DestinationRule": _destination_rule,
        "Gateway": _gateway,
    }[kind]
    causes.extend(semantic(spec))
    return causes


def check_shape(value: Any, spec: schema.Spec, path: str, unknown: list[Cause]) -> list[Cause]:
    """Type errors in ``value`` against ``spec``; unknown fields go to ``unknown``."""
    out: list[Cause] = []
    if value is None:  # null means unset to the API server
        return out
    if isinstance(spec, str):
        problem = _scalar_problem(value, spec)
        if problem:
            out.append(Cause(path, problem))
    elif isinstance(spec, dict):
        if not isinstance(value, Mapping):
            return [Cause(path, f"must be an object, got {_type_name(value)}")]
        for key, item in value.items():
            if key not in spec:
                unknown.append(Cause(f"{path}.{key}", f"unknown field {key!r}"))
                continue
            out.extend(check_shape(item, spec[key], f"{path}.{key}", unknown))
    elif isinstance(spec, list):
        if not isinstance(value, list):
            return [Cause(path, f"must be a list, got {_type_name(value)}")]
        for i, item in enumerate(value):
            out.extend(check_shape(item, spec[0], f"{path}[{i}]", unknown))
    elif isinstance(spec, tuple) and spec[0] == "map":
        if not isinstance(value, Mapping):
            return [Cause(path, f"must be an object, got {_type_name(value)}")]
        for key, item in value.items():
            out.extend(check_shape(item, spec[1], f"{path}.{key}", unknown))
    return out


def _type_name(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "object",
    }.get(type(value), type(value).__name__)


def _scalar_problem(value: Any, kind: str) -> str | None:
    if kind == "any":
        return None
    if kind in ("str", "duration"):
        return (
            None
            if isinstance(value, str)
            else f"must be a string, got {_type_name(value)} {value!r}"
        )
    if kind == "bool":
        return (
            None
            if isinstance(value, bool)
            else f"must be a boolean, got {_type_name(value)} {value!r}"
        )
    if kind in ("int", "uint"):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {_type_name(value)} {value!r}"
        if kind == "uint" and value < 0:
            return f"must be a non-negative integer, got {value}"
        return None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {_type_name(value)} {value!r}"
        return None
    if kind == "strmap":
        if not isinstance(value, Mapping):
            return f"must be a map of strings, got {_type_name(value)}"
        bad = [k for k, v in value.items() if not isinstance(v, str)]
        return f"values must be strings (quote them), not for {bad}" if bad else None
    raise AssertionError(f"unknown schema type {kind}")  # pragma: no cover


# --- small accessors that tolerate wrong types (check_shape already reported them) -------


def _d(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _items(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for i, item in enumerate(_l(value)):
        if isinstance(item, Mapping):
            yield i, item


def _check_metadata(meta: Any, dns_label: bool) -> list[Cause]:
    if not isinstance(meta, Mapping):
        return [Cause("metadata", "is required")]
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        if meta.get("generateName"):
            return []
        return [Cause("metadata.name", "is required")]
    if dns_label and not _DNS_LABEL.match(name):
        return [
            Cause("metadata.name", f"invalid gateway name: {name!r} (must be a DNS-1123 label)")
        ]
    if len(name) > 253 or not all(_DNS_LABEL.match(p) for p in name.split(".")):
        return [Cause("metadata.name", f"{name!r} is not a valid DNS-1123 subdomain")]
    return []


# --- hosts and names -------------------------------------------------------------------


def host_problem(host: Any, allow_ip: bool = False) -> str | None:
    """Why ``host`` is not a valid (possibly wildcard) Istio host, or ``None``."""
    if not isinstance(host, str) or not host:
        return 'domain name "" invalid (empty)'
    if host == "*":
        return None
    if allow_ip and _is_ip(host):
        return None
    if len(host) > 255:
        return f"domain name {host!r} too long (max 255)"
    name = host[2:] if host.startswith("*.") else host
    if "*" in name:
        return f"domain name {host!r} invalid: only a leading '*.' wildcard is allowed"
    for label in name.rstrip(".").split("."):
        if len(label) > 63 or not _HOST_LABEL.match(label):
            return f"domain name {host!r} invalid (label {label!r})"
    return None


def gateway_ref_problem(ref: Any) -> str | None:
    if not isinstance(ref, str) or not ref:
        return "gateway name must not be empty"
    if ref == "mesh":
        return None
    ns, sep, name = ref.partition("/")
    if not sep:
        return host_problem(ref)
    if not ns or not name:
        return "config namespace and gateway name cannot be empty"
    if not _DNS_LABEL.match(ns):
        return f"invalid value for namespace: {ns!r}"
    if not _DNS_LABEL.match(name):
        return f"invalid value for gateway name: {name!r}"
    return None


def _labels_problem(labels: Any) -> str | None:
    for key, value in _d(labels).items():
        if not isinstance(key, str) or not _LABEL_NAME.match(key):
            return f"invalid label key {key!r}"
        if isinstance(value, str) and (len(value) > 63 or not _LABEL_VALUE.match(value)):
            return f"invalid label value {value!r} for {key!r}"
    return None


def _percentage(value: Any, path: str) -> list[Cause]:
    pct = _d(value).get("value")
    if (
        isinstance(pct, int | float)
        and not isinstance(pct, bool)
        and (pct < 0 or pct > 100 or 0 < pct < 0.0001)
    ):
        return [Cause(path, f"percentage {pct} is neither 0.0, nor in range [0.0001, 100.0]")]
    return []


def _duration(value: Any, path: str, allow_zero: bool = False) -> list[Cause]:
    if not isinstance(value, str):
        return []
    problem = istio_duration_problem(value, allow_zero=allow_zero)
    return [Cause(path, problem)] if problem else []


# --- VirtualService ----------------------------------------------------------------------


def _virtual_service(spec: Mapping[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    hosts = _l(spec.get("hosts"))
    gateways = _l(spec.get("gateways"))
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
    for i, route in enumerate(_l(spec.get("http"))):
        if not isinstance(route, Mapping):
            out.append(Cause(f"spec.http[{i}]", "http route may not be null"))
            continue
        out.extend(http_route_causes(route, f"spec.http[{i}]", delegate=not hosts))
    for proto in ("tcp", "tls"):
        for i, route in _items(spec.get(proto)):
            path = f"spec.{proto}[{i}]"
            if proto == "tls" and not route.get("match"):
                out.append(
                    Cause(f"{path}.match", "TLS route must have at least one match condition")
                )
            for j, match in _items(route.get("match")):
                if proto == "tls" and not match.get("sniHosts"):
                    out.append(
                        Cause(
                            f"{path}.match[{j}].sniHosts",
                            "TLS match must have at least one SNI host",
                        )
                    )
                out.extend(_port(match.get("port"), f"{path}.match[{j}].port"))
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
    for j, match in _items(route.get("match")):
        out.extend(_http_match(match, f"{path}.match[{j}]"))
    if route.get("fault") is not None:
        out.extend(fault_causes(route.get("fault"), f"{path}.fault"))
    if route.get("retries") is not None:
        out.extend(retry_causes(route.get("retries"), f"{path}.retries"))
    out.extend(_duration(route.get("timeout"), f"{path}.timeout"))
    out.extend(_destinations(route.get("route"), f"{path}.route"))
    if route.get("mirror") is not None:
        out.extend(_destination(route.get("mirror"), f"{path}.mirror"))
    for j, mirror in _items(route.get("mirrors")):
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
        if not any(redirect.get(k) for k in ("uri", "authority", "port", "scheme")):
            out.append(
                Cause(f"{path}.redirect", "redirect must specify URI, authority, scheme, or port")
            )
        code = _int(redirect.get("redirectCode"))
        if code and not 300 <= code <= 399:
            out.append(
                Cause(
                    f"{path}.redirect.redirectCode",
                    f"{code} is not a valid redirect code, must be 3xx",
                )
            )
        if redirect.get("scheme") not in (None, "", "http", "https"):
            out.append(
                Cause(
                    f"{path}.redirect.scheme", 'invalid redirect scheme, must be "http" or "https"'
                )
            )
    direct = route.get("directResponse")
    if isinstance(direct, Mapping):
        status = _int(direct.get("status"))
        if not 200 <= status <= 599:
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
    sm = _d(value)
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
        for name, sm in _d(match.get(group)).items():
            if group != "queryParams" and not name:
                out.append(Cause(f"{path}.{group}", "header name cannot be empty"))
            if group == "headers" and sm is None:
                out.append(Cause(f"{path}.{group}.{name}", f"header match {name} cannot be null"))
            if group == "withoutHeaders" and _d(sm).get("regex") == "*":
                continue
            out.extend(_string_match(sm, f"{path}.{group}.{name}", group))
    for field in ("scheme", "method", "authority"):
        out.extend(_string_match(match.get(field), f"{path}.{field}", field))
    uri = _d(match.get("uri"))
    if "regex" in uri and uri["regex"] == "":
        out.append(Cause(f"{path}.uri", "'uri': regex string match should not be empty"))
    out.extend(_port(match.get("port"), f"{path}.port"))
    problem = _labels_problem(match.get("sourceLabels"))
    if problem:
        out.append(Cause(f"{path}.sourceLabels", problem))
    for k, ref in enumerate(_l(match.get("gateways"))):
        problem = gateway_ref_problem(ref)
        if problem:
            out.append(Cause(f"{path}.gateways[{k}]", problem))
    ns = match.get("sourceNamespace")
    if isinstance(ns, str) and ns and not _DNS_LABEL.match(ns):
        out.append(Cause(f"{path}.sourceNamespace", f"sourceNamespace match {ns} is invalid"))
    return out


def _port(value: Any, path: str) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool) and value and not 1 <= value <= 65535:
        return [Cause(path, f"port number {value} must be in the range 1..65535")]
    return []


def _mirror_pct(value: Any, path: str) -> list[Cause]:
    pct = _d(value).get("value")
    if isinstance(pct, int | float) and not isinstance(pct, bool) and not 0 <= pct <= 100:
        return [Cause(path, f"mirror percentage must be in 0..100 (it has {pct})")]
    return []


def fault_causes(fault: Any, path: str) -> list[Cause]:
    """Problems in one ``HTTPFaultInjection`` block."""
    f = _d(fault)
    if f.get("delay") is None and f.get("abort") is None:
        return [Cause(path, "HTTP fault injection must have an abort and/or a delay")]
    out: list[Cause] = []
    delay = f.get("delay")
    if isinstance(delay, Mapping):
        out.extend(_percentage(delay.get("percentage"), f"{path}.delay.percentage.value"))
        pct = delay.get("percent")
        if isinstance(pct, int) and not isinstance(pct, bool) and not 0 <= pct <= 100:
            out.append(Cause(f"{path}.delay.percent", f"percentage {pct} is not in range 0..100"))
        if delay.get("fixedDelay") is not None and delay.get("exponentialDelay") is not None:
            out.append(
                Cause(f"{path}.delay", "only one of fixedDelay, exponentialDelay may be set")
            )
        out.extend(_duration(delay.get("fixedDelay"), f"{path}.delay.fixedDelay"))
        if delay.get("exponentialDelay") is not None:
            out.append(
                Cause(f"{path}.delay.exponentialDelay", "exponentialDelay not supported yet")
            )
    abort = f.get("abort")
    if isinstance(abort, Mapping):
        out.extend(_percentage(abort.get("percentage"), f"{path}.abort.percentage.value"))
        kinds = [k for k in ("httpStatus", "grpcStatus", "http2Error") if abort.get(k) is not None]
        if len(kinds) > 1:
            out.append(
                Cause(
                    f"{path}.abort",
                    f"only one of httpStatus, grpcStatus, http2Error may be set, got {kinds}",
                )
            )
        status = abort.get("httpStatus")
        if isinstance(status, int) and not isinstance(status, bool) and not 200 <= status <= 599:
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
    r = _d(retries)
    out: list[Cause] = []
    attempts = _int(r.get("attempts"))
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
    out.extend(_duration(r.get("perTryTimeout"), f"{path}.perTryTimeout"))
    out.extend(_duration(r.get("backoff"), f"{path}.backoff"))
    retry_on = r.get("retryOn")
    if isinstance(retry_on, str) and retry_on:
        for policy in retry_on.split(","):  # no trimming: Istio rejects " reset" too
            if policy in RETRY_ON_POLICIES:
                continue
            if policy.isdigit() and int(policy) in _HTTP_STATUS_TEXT:
                continue
            out.append(Cause(f"{path}.retryOn", f"{policy!r} is not a valid retryOn policy"))
    return out


def _destinations(value: Any, path: str) -> list[Cause]:
    out: list[Cause] = []
    entries = _l(value)
    total = 0
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            out.append(Cause(f"{path}[{i}]", "weight may not be nil"))
            continue
        if entry.get("destination") is None:
            out.append(Cause(f"{path}[{i}].destination", "destination is required"))
        else:
            out.extend(_destination(entry.get("destination"), f"{path}[{i}].destination"))
        weight = _int(entry.get("weight"))
        if weight < 0:
            out.append(Cause(f"{path}[{i}].weight", f"weight {weight} < 0"))
        total += weight
    if len(entries) > 1 and total == 0:
        out.append(Cause(path, "total destination weight = 0"))
    return out


def _destination(value: Any, path: str) -> list[Cause]:
    dest = _d(value)
    out: list[Cause] = []
    host = dest.get("host")
    if host == "*":
        out.append(Cause(f"{path}.host", "invalid destination host *"))
    else:
        problem = host_problem(host)
        if problem:
            out.append(Cause(f"{path}.host", problem))
    subset = dest.get("subset")
    if isinstance(subset, str) and subset and not _DNS_LABEL.match(subset):
        out.append(Cause(f"{path}.subset", f"subset name is invalid: {subset}"))
    port = dest.get("port")
    if isinstance(port, Mapping):
        number = _int(port.get("number"))
        if not 1 <= number <= 65535:
            out.append(
                Cause(f"{path}.port.number", f"port number {number} must be in the range 1..65535")
            )
    return out


# --- DestinationRule -----------------------------------------------------------------------


def _destination_rule(spec: Mapping[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    problem = host_problem(spec.get("host"))
    if problem:
        out.append(Cause("spec.host", problem))
    if spec.get("trafficPolicy") is not None:
        out.extend(traffic_policy_causes(spec.get("trafficPolicy"), "spec.trafficPolicy"))
    seen: set[str] = set()
    for i, subset in enumerate(_l(spec.get("subsets"))):
        path = f"spec.subsets[{i}]"
        if not isinstance(subset, Mapping):
            out.append(Cause(path, "subset may not be null"))
            continue
        name = subset.get("name")
        if not isinstance(name, str) or not name:
            out.append(Cause(f"{path}.name", "subset name cannot be empty"))
        elif not _DNS_LABEL.match(name):
            out.append(Cause(f"{path}.name", f"subset name is invalid: {name}"))
        elif name in seen:
            out.append(Cause(f"{path}.name", f"duplicate subset names: {name}"))
        if isinstance(name, str):
            seen.add(name)
        problem = _labels_problem(subset.get("labels"))
        if problem:
            out.append(Cause(f"{path}.labels", problem))
        if subset.get("trafficPolicy") is not None:
            out.extend(traffic_policy_causes(subset.get("trafficPolicy"), f"{path}.trafficPolicy"))
    return out


def traffic_policy_causes(policy: Any, path: str) -> list[Cause]:
    """Problems in a ``TrafficPolicy`` (top level or a subset's)."""
    p = _d(policy)
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
    for i, port_policy in enumerate(_l(p.get("portLevelSettings"))):
        pp = _d(port_policy)
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
    cp = _d(pool)
    if cp.get("http") is None and cp.get("tcp") is None:
        return [Cause(path, "connection pool must have at least one field")]
    out: list[Cause] = []
    for group, fields in _NON_NEGATIVE.items():
        block = _d(cp.get(group))
        for field, words in fields.items():
            if _int(block.get(field)) < 0:
                out.append(Cause(f"{path}.{group}.{field}", f"{words} must be non-negative"))
    http_block, tcp = _d(cp.get("http")), _d(cp.get("tcp"))
    out.extend(_duration(http_block.get("idleTimeout"), f"{path}.http.idleTimeout"))
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
    out.extend(_duration(tcp.get("connectTimeout"), f"{path}.tcp.connectTimeout"))
    out.extend(_duration(tcp.get("maxConnectionDuration"), f"{path}.tcp.maxConnectionDuration"))
    out.extend(_duration(tcp.get("idleTimeout"), f"{path}.tcp.idleTimeout", allow_zero=True))
    keepalive = _d(tcp.get("tcpKeepalive"))
    out.extend(_duration(keepalive.get("time"), f"{path}.tcp.tcpKeepalive.time"))
    out.extend(_duration(keepalive.get("interval"), f"{path}.tcp.tcpKeepalive.interval"))
    return out


def outlier_causes(outlier: Any, path: str) -> list[Cause]:
    od = _d(outlier)
    out: list[Cause] = []
    out.extend(_duration(od.get("baseEjectionTime"), f"{path}.baseEjectionTime"))
    out.extend(_duration(od.get("interval"), f"{path}.interval"))
    if (
        not od.get("splitExternalLocalOriginErrors")
        and _int(od.get("consecutiveLocalOriginFailures")) > 0
    ):
        out.append(
            Cause(
                f"{path}.consecutiveLocalOriginFailures",
                "outlier detection consecutive local origin failures is specified, "
                "but split external local origin errors is set to false",
            )
        )
    for field in ("maxEjectionPercent", "minHealthPercent"):
        value = _int(od.get(field))
        if not 0 <= value <= 100:
            out.append(Cause(f"{path}.{field}", f"percentage {value} is not in range 0..100"))
    return out


# --- Gateway ----------------------------------------------------------------------------


def _gateway(spec: Mapping[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    servers = _l(spec.get("servers"))
    if not servers:
        out.append(Cause("spec.servers", "gateway must have at least one server"))
    port_names: set[str] = set()
    for i, server in enumerate(servers):
        path = f"spec.servers[{i}]"
        if not isinstance(server, Mapping):
            out.append(Cause(path, "server may not be nil"))
            continue
        hosts = _l(server.get("hosts"))
        if not hosts:
            out.append(Cause(f"{path}.hosts", "server config must contain at least one host"))
        for j, host in enumerate(hosts):
            problem = _gateway_host_problem(host)
            if problem:
                out.append(Cause(f"{path}.hosts[{j}]", problem))
        port = server.get("port")
        if not isinstance(port, Mapping):
            out.append(Cause(f"{path}.port", "port is required"))
            continue
        protocol = str(port.get("protocol") or "").upper()
        if protocol not in GATEWAY_PROTOCOLS:
            out.append(
                Cause(
                    f"{path}.port.protocol",
                    f"invalid protocol {port.get('protocol')!r}, supported protocols are "
                    "HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP, HTTPS, TLS",
                )
            )
        number = _int(port.get("number"))
        bind = server.get("bind")
        if (
            not (number == 0 and isinstance(bind, str) and bind.startswith("unix://"))
            and not 1 <= number <= 65535
        ):
            out.append(
                Cause(f"{path}.port.number", f"port number {number} must be in the range 1..65535")
            )
        if _int(port.get("targetPort")) > 0:
            out.append(Cause(f"{path}.port.targetPort", "targetPort has no impact on Gateways"))
        name = port.get("name")
        if not name:
            out.append(Cause(f"{path}.port.name", "port name must be set"))
        elif str(name) in port_names:
            out.append(
                Cause(
                    f"{path}.port.name",
                    f"port names in servers must be unique: duplicate name {name}",
                )
            )
        else:
            port_names.add(str(name))
        tls = server.get("tls")
        if protocol in ("HTTPS", "TLS") and tls is None:
            out.append(
                Cause(f"{path}.tls", "server must have TLS settings for HTTPS/TLS protocols")
            )
        elif (
            protocol not in ("HTTPS", "TLS")
            and isinstance(tls, Mapping)
            and set(tls) - {"httpsRedirect"}
        ):
            out.append(
                Cause(
                    f"{path}.tls",
                    "server cannot have TLS settings for plain text HTTP ports"
                    if protocol in ("HTTP", "HTTP2", "GRPC", "GRPC-WEB")
                    else "server cannot have TLS settings for non HTTPS/TLS ports",
                )
            )
    return out


def _gateway_host_problem(host: Any) -> str | None:
    if not isinstance(host, str) or not host:
        return "host must not be empty"
    ns, sep, name = host.partition("/")
    if not sep:
        return host_problem(host)
    if ns not in ("*", ".", "~") and not _DNS_LABEL.match(ns):
        return f"invalid namespace {ns!r} in host {host!r}"
    return host_problem(name)
