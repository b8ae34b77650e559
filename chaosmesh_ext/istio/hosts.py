"""Istio host names: how short names resolve, and which short names a service answers to.

Istio (``ResolveShortnameToFQDN``) appends ``.<namespace>.svc.<domain>`` only to names
without a dot; anything with a dot, ``*`` and IP addresses are taken as written. The
namespace is that of the resource the name appears in (VirtualService, DestinationRule).
"""

from __future__ import annotations

import ipaddress

DEFAULT_DOMAIN = "cluster.local"


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP address literal (v4 or v6)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def fqdn(host: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> str:
    """Istio's fully qualified form of ``host`` as written in ``namespace``."""
    if not host or host == "*" or "." in host or is_ip(host):
        return host
    return f"{host}.{namespace or 'default'}.svc.{domain}"


def service_fqdn(name: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> str:
    """The name of the Kubernetes Service ``namespace/name`` in the mesh."""
    return f"{name}.{namespace or 'default'}.svc.{domain}"


def short_names(full: str, domain: str = DEFAULT_DOMAIN) -> list[str]:
    """Shorter names a client in the service's own namespace may use for ``full``.

    ``reviews.default.svc.cluster.local`` -> ``["reviews", "reviews.default",
    "reviews.default.svc"]`` (the extra domains of a sidecar's virtual host). Names outside
    ``.svc.<domain>`` have no short forms.
    """
    suffix = f".svc.{domain}"
    if not full.endswith(suffix):
        return []
    parts = full[: -len(suffix)].split(".")
    if len(parts) != 2:
        return []
    name, namespace = parts
    return [name, f"{name}.{namespace}", f"{name}.{namespace}.svc"]


def host_matches(pattern: str, host: str) -> bool:
    """Whether the (possibly wildcard) Istio host ``pattern`` covers ``host``.

    ``*`` covers everything, ``*.example.com`` covers ``a.example.com`` and
    ``a.b.example.com``; otherwise names compare exactly (both already fully qualified).
    """
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return pattern == host
