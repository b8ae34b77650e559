"""The API server's service and pod proxy: one bounded HTTP exchange with a workload.

As kube-apiserver does, the request goes straight to an endpoint (not through the mesh's
Envoy), keeping method, query, body and end-to-end headers. Hop-by-hop headers are dropped
in both directions (RFC 9110 §7.6.1).
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from dataclasses import dataclass

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
}


@dataclass(frozen=True)
class ProxyResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class ProxyError(Exception):
    """The endpoint could not be reached or did not answer in time."""


def forward(
    method: str,
    host: str,
    port: int,
    path_and_query: str,
    headers: Mapping[str, str],
    body: bytes,
    timeout: float,
) -> ProxyResponse:
    """Send one request to ``host:port`` and return its whole answer, or raise ``ProxyError``."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
        sent["Host"] = f"{host}:{port}"
        sent["Connection"] = "close"
        try:
            conn.request(method, path_and_query or "/", body=body or None, headers=sent)
            response = conn.getresponse()
            data = response.read()
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise ProxyError(
                f"error trying to reach {host}:{port}: {exc or type(exc).__name__}"
            ) from exc
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        return ProxyResponse(response.status, kept, data)
    finally:
        conn.close()
