"""Listener names as values: which listener of the one Envoy a name stands for.

istiod names the sidecar's outbound listener for a Service port ``0.0.0.0_<port>`` and the
ingress gateway's for a Gateway server port ``gateway_<port>``; Envoy, its stats, the access
log, ``MeshSnapshot.listener_ports`` and ``mesh.json`` carry those texts. Code keeps a
``ListenerName`` and spells it with ``str()``. Pure, and a leaf (no imports of ours), so the
translator, the daemon's views and the metrics exporter share it cheaply.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

OUTBOUND: Literal["outbound"] = "outbound"
GATEWAY: Literal["gateway"] = "gateway"
_OUTBOUND_PREFIX = "0.0.0.0_"
_GATEWAY_PREFIX = "gateway_"
_GATEWAY_ROUTES_PREFIX = "http."  # plain-HTTP servers (HTTPS ones get a route each)


class ListenerName(NamedTuple):
    """One listener as istiod names it: the sidecar's outbound listener for a Service port
    (``0.0.0.0_<port>``, route configuration ``"<port>"``) or the ingress gateway's for a
    Gateway server port (``gateway_<port>``; route configuration ``http.<port>`` for plain
    HTTP servers, one per server for HTTPS ones).

    The text forms are what Envoy, its stats, the access log and ``mesh.json`` carry; code
    keeps the value and spells it with ``str()``.
    """

    kind: Literal["outbound", "gateway"]
    port: int

    @classmethod
    def outbound(cls, port: int) -> ListenerName:
        return cls(OUTBOUND, int(port))

    @classmethod
    def gateway(cls, port: int) -> ListenerName:
        return cls(GATEWAY, int(port))

    @classmethod
    def parse(cls, text: str) -> ListenerName | None:
        """The listener an Envoy listener name stands for (None for any other name)."""
        for kind, prefix in ((OUTBOUND, _OUTBOUND_PREFIX), (GATEWAY, _GATEWAY_PREFIX)):
            number = text.removeprefix(prefix)
            if number != text and number.isdigit():
                return cls(kind, int(number))
        return None

    def __str__(self) -> str:
        prefix = _GATEWAY_PREFIX if self.kind == GATEWAY else _OUTBOUND_PREFIX
        return f"{prefix}{self.port}"

    @property
    def route_config(self) -> str:
        """The RouteConfiguration this listener's HTTP connection manager reads over RDS
        (for a gateway port, that of its plain-HTTP servers)."""
        return f"{_GATEWAY_ROUTES_PREFIX}{self.port}" if self.kind == GATEWAY else str(self.port)

    @property
    def stat_prefix(self) -> str:
        """The HCM's stat prefix (istiod's ``outbound_0.0.0.0_<port>``; the gateway's name)."""
        return str(self) if self.kind == GATEWAY else f"outbound_{self}"
