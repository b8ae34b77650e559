"""Name resolution as a pod sees it, for load sent through the embedded mesh's sidecar.

On a cluster, ``fortio load http://nosuch:8000/`` fails before any request: the pod's DNS
does not know ``nosuch``. The embedded mesh hands every outbound port to Envoy by port
alone, so without this check such a run would quietly collect Envoy's ``404`` (no route)
answers instead of the error a user gets on a cluster.

A name resolves when it is a Service of the mesh under one of the forms a pod's DNS search
path accepts (``name`` from the same namespace, ``name.ns``, ``name.ns.svc``,
``name.ns.svc.cluster.local``), or when the machine's own DNS resolves it (a host outside
the mesh). The Services come from the mesh's ``mesh.json``, which sits beside the sidecar's
outbound file in the state directory; with no such file there is nothing to check against
and every name is accepted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._sidecar import Sidecar

DOMAIN = "cluster.local"
DNS_TIMEOUT = 2.0

# mesh.json path -> (mtime_ns, names by namespace); the file changes when services are added.
_cache: dict[str, tuple[int, list[tuple[str, str]]]] = {}


def service_hostnames(services: Iterable[tuple[str, str]], namespace: str) -> set[str]:
    """Every name a pod in ``namespace`` can use for these ``(name, namespace)`` Services."""
    names: set[str] = set()
    for name, ns in services:
        names |= {f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.{DOMAIN}"}
        if ns == namespace:
            names.add(name)
    return {n.lower() for n in names}


def _mesh_services(sidecar: Sidecar) -> list[tuple[str, str]] | None:
    if not sidecar.outbound_file:
        return None
    path = Path(sidecar.outbound_file).with_name("mesh.json")
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return None
    cached = _cache.get(str(path))
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        doc: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return cached[1] if cached else None
    entries = doc.get("services") if isinstance(doc, Mapping) else None
    if not isinstance(entries, list):
        return None
    services = [
        (str(e["name"]), str(e.get("namespace") or "default"))
        for e in entries
        if isinstance(e, Mapping) and e.get("name")
    ]
    _cache[str(path)] = (mtime, services)
    return services


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def unresolvable_reason(host: str, sidecar: Sidecar) -> str | None:
    """Why a pod of this sidecar could not resolve ``host``; None when it can (or we can't tell)."""
    if _is_ip(host):
        return None
    services = _mesh_services(sidecar)
    if services is None:
        return None
    namespace = sidecar.namespace or "default"
    name = host.lower().rstrip(".")
    if name in service_hostnames(services, namespace):
        return None
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.getaddrinfo(name, None), DNS_TIMEOUT)
    except (OSError, TimeoutError):
        known = ", ".join(sorted({f"{n}.{ns}" for n, ns in services})) or "none"
        return (
            f"no such host {host!r}: not a Service of the mesh as seen from namespace"
            f" {namespace} (Services: {known}), and DNS does not resolve it"
        )
    return None
