"""Building blocks of validation shared by the per-kind checks: causes, types, names.

Accessors (``as_map``, ``as_list``...) tolerate values of the wrong type: ``check_shape``
reports those once, and the semantic checks must not crash on them.
"""

from __future__ import annotations

import http
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chaosmesh_ext.istio import schema
from chaosmesh_ext.istio.durations import istio_duration_problem
from chaosmesh_ext.istio.hosts import is_ip


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
HTTP_STATUS_CODES = {int(s) for s in http.HTTPStatus}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Istio's DNS-1123 label for hosts: letters of either case, digits and '-' (no '_').
HOST_LABEL = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
LABEL_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def check_shape(value: Any, spec: schema.Spec, path: str, unknown: list[Cause]) -> list[Cause]:
    """Type errors in ``value`` against ``spec``; unknown fields go to ``unknown``."""
    out: list[Cause] = []
    if value is None:  # null means unset to the API server
        return out
    if isinstance(spec, str):
        problem = scalar_problem(value, spec)
        if problem:
            out.append(Cause(path, problem))
    elif isinstance(spec, dict):
        if not isinstance(value, Mapping):
            return [Cause(path, f"must be an object, got {type_name(value)}")]
        for key, item in value.items():
            if key not in spec:
                unknown.append(Cause(f"{path}.{key}", f"unknown field {key!r}"))
                continue
            out.extend(check_shape(item, spec[key], f"{path}.{key}", unknown))
    elif isinstance(spec, list):
        if not isinstance(value, list):
            return [Cause(path, f"must be a list, got {type_name(value)}")]
        for i, item in enumerate(value):
            out.extend(check_shape(item, spec[0], f"{path}[{i}]", unknown))
    elif isinstance(spec, tuple) and spec[0] == "enum":
        if not isinstance(value, str):
            out.append(Cause(path, f"must be a string, got {type_name(value)} {value!r}"))
        elif value not in spec[1]:
            allowed = ", ".join(f'"{v}"' for v in spec[1])
            out.append(Cause(path, f'Unsupported value: "{value}": supported values: {allowed}'))
    elif isinstance(spec, tuple) and spec[0] == "map":
        if not isinstance(value, Mapping):
            return [Cause(path, f"must be an object, got {type_name(value)}")]
        for key, item in value.items():
            out.extend(check_shape(item, spec[1], f"{path}.{key}", unknown))
    return out


def type_name(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "object",
    }.get(type(value), type(value).__name__)


def scalar_problem(value: Any, kind: str) -> str | None:
    if kind in ("str", "duration"):
        return (
            None
            if isinstance(value, str)
            else f"must be a string, got {type_name(value)} {value!r}"
        )
    if kind == "bool":
        return (
            None
            if isinstance(value, bool)
            else f"must be a boolean, got {type_name(value)} {value!r}"
        )
    if kind in ("int", "uint"):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {type_name(value)} {value!r}"
        if kind == "uint" and value < 0:
            return f"must be a non-negative integer, got {value}"
        return None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {type_name(value)} {value!r}"
        return None
    if kind == "strmap":
        if not isinstance(value, Mapping):
            return f"must be a map of strings, got {type_name(value)}"
        bad = [k for k, v in value.items() if not isinstance(v, str)]
        return f"values must be strings (quote them), not for {bad}" if bad else None
    raise AssertionError(f"unknown schema type {kind}")  # pragma: no cover


# --- small accessors that tolerate wrong types (check_shape already reported them) -------


def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def objects_in(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for i, item in enumerate(as_list(value)):
        if isinstance(item, Mapping):
            yield i, item


def metadata_causes(meta: Any, dns_label: bool) -> list[Cause]:
    if not isinstance(meta, Mapping):
        return [Cause("metadata", "is required")]
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        if meta.get("generateName"):
            return []
        return [Cause("metadata.name", "is required")]
    if dns_label and not DNS_LABEL.match(name):
        return [
            Cause("metadata.name", f"invalid gateway name: {name!r} (must be a DNS-1123 label)")
        ]
    if len(name) > 253 or not all(DNS_LABEL.match(p) for p in name.split(".")):
        return [Cause("metadata.name", f"{name!r} is not a valid DNS-1123 subdomain")]
    return []


# --- hosts and names -------------------------------------------------------------------


def host_problem(host: Any, allow_ip: bool = False) -> str | None:
    """Why ``host`` is not a valid (possibly wildcard) Istio host, or ``None``."""
    if not isinstance(host, str) or not host:
        return 'domain name "" invalid (empty)'
    if host == "*":
        return None
    if allow_ip and is_ip(host):
        return None
    if len(host) > 255:
        return f"domain name {host!r} too long (max 255)"
    name = host[2:] if host.startswith("*.") else host
    if "*" in name:
        return f"domain name {host!r} invalid: only a leading '*.' wildcard is allowed"
    for label in name.rstrip(".").split("."):
        if len(label) > 63 or not HOST_LABEL.match(label):
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
    if not DNS_LABEL.match(ns):
        return f"invalid value for namespace: {ns!r}"
    if not DNS_LABEL.match(name):
        return f"invalid value for gateway name: {name!r}"
    return None


def labels_problem(labels: Any) -> str | None:
    for key, value in as_map(labels).items():
        if not isinstance(key, str) or not LABEL_NAME.match(key):
            return f"invalid label key {key!r}"
        if isinstance(value, str) and (len(value) > 63 or not LABEL_VALUE.match(value)):
            return f"invalid label value {value!r} for {key!r}"
    return None


def percentage_causes(value: Any, path: str) -> list[Cause]:
    pct = as_map(value).get("value")
    if (
        isinstance(pct, int | float)
        and not isinstance(pct, bool)
        and (pct < 0 or pct > 100 or 0 < pct < 0.0001)
    ):
        return [Cause(path, f"percentage {pct} is neither 0.0, nor in range [0.0001, 100.0]")]
    return []


def duration_causes(value: Any, path: str, allow_zero: bool = False) -> list[Cause]:
    if not isinstance(value, str):
        return []
    problem = istio_duration_problem(value, allow_zero=allow_zero)
    return [Cause(path, problem)] if problem else []


def port_causes(value: Any, path: str) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool) and value and not 1 <= value <= 65535:
        return [Cause(path, f"port number {value} must be in the range 1..65535")]
    return []
