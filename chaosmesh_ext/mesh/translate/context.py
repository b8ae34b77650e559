"""What translating a route needs besides the VirtualService: the listener and the Services.

istiod builds routes per proxy and per listener port; ``RouteContext`` carries that port, the
ports of every Service (to pick a destination port), the gateway being served, the
DestinationRules (for consistent hashing) and whether the server terminates TLS.
"""

from __future__ import annotations

from .model import JSON
from .names import cluster_name, resolve_gateway_name, resolve_host


class RouteContext:
    """What a route needs besides the VirtualService: the listener port and the Service ports."""

    def __init__(
        self,
        listen_port: int,
        service_ports: dict[str, list[int]],
        domain: str,
        gateway_names: frozenset[str] = frozenset({"mesh"}),
        rules: dict[str, JSON] | None = None,
        is_tls: bool = False,
    ):
        self.listen_port = listen_port
        self.service_ports = service_ports  # fqdn -> its ports
        self.domain = domain
        # "mesh" for sidecars; "<ns>/<name>" of the Gateway whose server is being built.
        self.gateway_names = gateway_names
        # DestinationRules by host (for consistent-hash policies on routes).
        self.rules = rules or {}
        # A gateway server with TLS settings (istiod's RouteOptions.IsTLS: redirect schemes).
        self.is_tls = is_tls

    def match_applies(self, match: JSON | None, vs_namespace: str) -> bool:
        """istiod drops a match bound to another port or to other gateways (TranslateRoute,
        sourceMatchHTTP); ``sourceLabels`` are matched per caller (``source_applies``)."""
        if match is None:
            return True
        if match.get("port") and int(match["port"]) != self.listen_port:
            return False
        gateways = match.get("gateways") or []
        if gateways:
            wanted = {resolve_gateway_name(str(g), vs_namespace) for g in gateways}
            return bool(wanted & self.gateway_names)
        return True

    def destination_cluster(self, destination: JSON, namespace: str) -> tuple[str, str, int]:
        """istiod's GetDestinationCluster: (cluster, fqdn, port) for a route destination."""
        fqdn = resolve_host(str(destination.get("host") or ""), namespace, self.domain)
        port = int((destination.get("port") or {}).get("number") or 0)
        if not port:
            ports = self.service_ports.get(fqdn) or []
            # A single-port Service needs no port; otherwise the listener's port is meant.
            port = ports[0] if len(ports) == 1 else self.listen_port
        return cluster_name(port, str(destination.get("subset") or ""), fqdn), fqdn, port
