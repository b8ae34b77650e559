"""Gateways + the VirtualServices bound to them -> ingress route configs (istiod's gateway.go).

A listener ``gateway_<port>`` per distinct server port, route config ``http.<port>``, one
virtual host per host in the intersection of the server's hosts and each bound
VirtualService's hosts. A request for any other host gets Envoy's 404 ``NR``.
"""

from __future__ import annotations

from .model import JSON, ROUTE_TYPE, MeshSnapshot
from .names import ListenerName, creation_key, hosts_intersect, name_of, namespace_of
from .routes import RouteContext, is_catch_all, routes_for_virtual_service
from .sidecar import headers_to_strip, resolved_hosts

HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC"}


def server_host(host: str) -> str:
    """Drop the ``namespace/`` part a Gateway host may carry (``*/foo``, ``./foo``)."""
    return host.split("/", 1)[1] if "/" in host else host


def gateway_ports(snapshot: MeshSnapshot) -> dict[int, list[tuple[JSON, JSON]]]:
    """port -> [(gateway, server)] for every plain-HTTP server."""
    ports: dict[int, list[tuple[JSON, JSON]]] = {}
    for gateway in sorted(snapshot.gateways, key=lambda g: (namespace_of(g), name_of(g))):
        for server in (gateway.get("spec") or {}).get("servers") or []:
            port = server.get("port") or {}
            if str(port.get("protocol") or "HTTP").upper() not in HTTP_PROTOCOLS:
                continue
            ports.setdefault(int(port["number"]), []).append((gateway, server))
    return ports


def bound_to(vs: JSON, gateway: JSON) -> bool:
    """Does ``spec.gateways`` name this Gateway (``name`` in the VS namespace, or ``ns/name``)?"""
    for ref in (vs.get("spec") or {}).get("gateways") or []:
        ns, _, name = str(ref).rpartition("/")
        if name == name_of(gateway) and (ns or namespace_of(vs)) == namespace_of(gateway):
            return True
    return False


def gateway_route_configs(snapshot: MeshSnapshot, fqdn_ports: dict[str, list[int]]) -> list[JSON]:
    strip = headers_to_strip(snapshot)
    configs = []
    for port, servers in sorted(gateway_ports(snapshot).items()):
        names = frozenset(f"{namespace_of(g)}/{name_of(g)}" for g, _ in servers)
        ctx = RouteContext(port, fqdn_ports, snapshot.domain, names)
        routes_by_host: dict[str, list[JSON]] = {}
        for vs in sorted(snapshot.virtual_services, key=creation_key):
            for gateway, server in servers:
                if not bound_to(vs, gateway):
                    continue
                for gw_host in server.get("hosts") or []:
                    for vs_host in resolved_hosts(vs, snapshot.domain):
                        host = hosts_intersect(server_host(str(gw_host)), vs_host)
                        if host is None:
                            continue
                        merged = routes_by_host.setdefault(host, [])
                        # VirtualServices for one host are merged in age order (istiod);
                        # nothing after a catch-all can match, and no host gets a VS twice.
                        if any(is_catch_all(r) for r in merged) or any(
                            r.get("_vs") == id(vs) for r in merged
                        ):
                            continue
                        merged += [dict(r, _vs=id(vs)) for r in routes_for_virtual_service(vs, ctx)]
        hosts = []
        for host in sorted(routes_by_host):
            routes = [{k: v for k, v in r.items() if k != "_vs"} for r in routes_by_host[host]]
            domains = [host] if host == "*" else [host, f"{host}:{port}"]
            hosts.append(
                {
                    "name": f"{host}:{port}",
                    "domains": domains,
                    "routes": routes,
                    "include_request_attempt_count": True,
                }
            )
        configs.append(
            {
                "@type": ROUTE_TYPE,
                "name": ListenerName.gateway(port).route_config,
                "virtual_hosts": hosts,
                "validate_clusters": False,
                "ignore_port_in_host_matching": True,
                "request_headers_to_remove": strip,
            }
        )
    return configs
