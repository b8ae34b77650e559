"""Names and small value conversions istiod uses: host resolution, cluster names, durations.

The istio layer owns the canonical ``istio.hosts`` / ``istio.durations``; the translator keeps
its own few lines so it never depends on validation code and stays importable on its own.
"""

from __future__ import annotations

import re
from typing import Any

# Envoy's "unlimited" for circuit-breaker thresholds: istiod sets 2^32-1 when a field is unset.
MAX_UINT32 = 4294967295

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)(ms|us|µs|ns|s|m|h)\s*$")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class TranslationError(ValueError):
    """Input the translator cannot map; the message names the object and the field."""


def namespace_of(obj: dict[str, Any]) -> str:
    """A Kubernetes object's namespace (``default`` when the manifest leaves it out)."""
    return str((obj.get("metadata") or {}).get("namespace") or "default")


def name_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def resolve_host(host: str, namespace: str, domain: str) -> str:
    """Istio's ResolveShortnameToFQDN: a name without dots is a Service in ``namespace``."""
    if host == "*" or "." in host:
        return host
    return f"{host}.{namespace}.svc.{domain}"


def host_matches(pattern: str, fqdn: str) -> bool:
    """Does a VirtualService/Gateway host (possibly ``*`` or ``*.suffix``) cover ``fqdn``?"""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return fqdn.endswith(pattern[1:])
    return pattern == fqdn


def hosts_intersect(a: str, b: str) -> str | None:
    """The more specific of two hosts when they overlap (Istio's gateway host intersection)."""
    if host_matches(a, b):
        return b
    if host_matches(b, a):
        return a
    return None


def cluster_name(port: int, subset: str, fqdn: str) -> str:
    """istiod's BuildSubsetKey: ``outbound|<port>|<subset>|<fqdn>``."""
    return f"outbound|{port}|{subset}|{fqdn}"


def parse_duration(value: Any, where: str) -> float:
    """Seconds from an Istio/protobuf duration string (``"2s"``, ``"100ms"``, ``"3m"``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise TranslationError(f"{where}: not a duration: {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: float) -> str:
    """Protobuf JSON duration: ``"2s"``, ``"0.100s"`` (Envoy's admin prints the same)."""
    nanos = round(seconds * 1e9)
    whole, frac = divmod(nanos, 1_000_000_000)
    if frac == 0:
        return f"{whole}s"
    text = f"{whole}.{frac:09d}".rstrip("0")
    # protobuf prints 3, 6 or 9 fractional digits
    digits = len(text.split(".")[1])
    width = 3 if digits <= 3 else 6 if digits <= 6 else 9
    return f"{whole}.{frac:09d}"[: len(str(whole)) + 1 + width] + "s"


def duration(value: Any, where: str) -> str:
    """An Istio duration re-spelt for Envoy."""
    return format_duration(parse_duration(value, where))


def labels_match(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """Kubernetes equality-based selection (an empty selector selects nothing, as for Services)."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def creation_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    """istiod's conflict order (sortConfigByCreationTime): oldest first, then name, namespace."""
    meta = obj.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), name_of(obj), namespace_of(obj))
