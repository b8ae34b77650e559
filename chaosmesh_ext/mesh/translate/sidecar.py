"""Sidecar outbound route configurations: one per Service port, one virtual host per Service.

istiod's BuildSidecarOutboundVirtualHosts, for one Envoy standing in for every sidecar: a
virtual host ``fqdn:port`` answering to every name a pod could use for the Service; the
routes of the VirtualService bound to ``mesh`` that covers the host, else the default route.
"""

from __future__ import annotations

from ..._sidecar import SOURCE_NAMESPACE_HEADER, SOURCE_WORKLOAD_HEADER, label_header
from .clusters import service_fqdn, service_ports
from .model import JSON, ROUTE_TYPE, MeshSnapshot
from .names import (
    ListenerName,
    cluster_name,
    creation_key,
    host_matches,
    name_of,
    namespace_of,
    resolve_host,
)
from .routes import RouteContext, default_route, routes_for_virtual_service


def applies_to_mesh(vs: JSON) -> bool:
    """``gateways`` empty means the sidecars; otherwise only if it lists ``mesh``."""
    gateways = (vs.get("spec") or {}).get("gateways") or []
    return not gateways or "mesh" in gateways


def resolved_hosts(vs: JSON, domain: str) -> list[str]:
    ns = namespace_of(vs)
    return [resolve_host(str(h), ns, domain) for h in (vs.get("spec") or {}).get("hosts") or []]


def mesh_virtual_service_for(fqdn: str, snapshot: MeshSnapshot) -> JSON | None:
    """The one VirtualService that governs ``fqdn`` on sidecars.

    When several claim a host only one survives, as in istiod: the oldest (creationTimestamp,
    then name); an exact host beats a wildcard.
    """
    candidates = sorted(
        (vs for vs in snapshot.virtual_services if applies_to_mesh(vs)), key=creation_key
    )
    for exact in (True, False):
        for vs in candidates:
            for host in resolved_hosts(vs, snapshot.domain):
                if (host == fqdn) if exact else host_matches(host, fqdn):
                    return vs
    return None


def domains_for(fqdn: str, port: int) -> list[str]:
    """fqdn, short, short.ns, short.ns.svc — each also with ``:port``."""
    short, ns = fqdn.split(".")[:2]
    names = [fqdn, short, f"{short}.{ns}", f"{short}.{ns}.svc"]
    return [d for name in names for d in (name, f"{name}:{port}")]


def headers_to_strip(snapshot: MeshSnapshot) -> list[str]:
    """The mesh's identity headers: they tell Envoy who calls and must not reach the upstream."""
    keys = {k for e in snapshot.endpoints for k in e.labels}
    for vs in snapshot.virtual_services:
        for http in (vs.get("spec") or {}).get("http") or []:
            for match in http.get("match") or []:
                keys.update((match or {}).get("sourceLabels") or {})
    headers = {SOURCE_WORKLOAD_HEADER, SOURCE_NAMESPACE_HEADER} | {label_header(k) for k in keys}
    return sorted(headers)


def outbound_route_configs(snapshot: MeshSnapshot) -> list[JSON]:
    """RouteConfigurations named after each distinct Service port, sorted by port."""
    by_port: dict[int, list[JSON]] = {}
    fqdn_ports: dict[str, list[int]] = {}
    for service in sorted(snapshot.services, key=lambda s: (namespace_of(s), name_of(s))):
        fqdn_ports[service_fqdn(service, snapshot.domain)] = service_ports(service)
        for port in service_ports(service):
            by_port.setdefault(port, []).append(service)
    strip = headers_to_strip(snapshot)
    configs = []
    for port in sorted(by_port):
        ctx = RouteContext(port, fqdn_ports, snapshot.domain)
        claimed: set[str] = set()
        hosts = []
        for service in by_port[port]:
            fqdn = service_fqdn(service, snapshot.domain)
            # Two Services with one short name in different namespaces: the first keeps it.
            domains = [d for d in domains_for(fqdn, port) if d not in claimed]
            claimed.update(domains)
            vs = mesh_virtual_service_for(fqdn, snapshot)
            routes = routes_for_virtual_service(vs, ctx) if vs is not None else []
            if vs is None:
                routes = [default_route(cluster_name(port, "", fqdn), f"{fqdn}:{port}/*")]
            hosts.append(
                {
                    "name": f"{fqdn}:{port}",
                    "domains": domains,
                    "routes": routes,
                    "include_request_attempt_count": True,
                }
            )
        configs.append(
            {
                "@type": ROUTE_TYPE,
                "name": ListenerName.outbound(port).route_config,
                "virtual_hosts": sorted(hosts, key=lambda h: str(h["name"])),
                "validate_clusters": False,
                "ignore_port_in_host_matching": True,
                "request_headers_to_remove": strip,
            }
        )
    return configs
