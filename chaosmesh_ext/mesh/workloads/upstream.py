"""Where a proxy workload sends its requests: the ``chaosmesh.io/upstream`` URLs (pure).

One URL (``http://tomcat-svc:8080``) or several separated by commas or whitespace
(``http://details:9080, http://reviews:9080``): the proxy calls each in that order.

Its own module, apart from ``spec``, because the proxy replica needs it at run time and must
not import what ``spec`` needs for the launcher (dataclasses, pathlib, shlex): see ``_http``.
"""

from __future__ import annotations

from urllib.parse import urlsplit


class Upstream:
    """``http://host:port[/base]`` split into its parts."""

    __slots__ = ("base_path", "host", "port")

    def __init__(self, host: str, port: int, base_path: str) -> None:
        self.host = host
        self.port = port
        self.base_path = base_path

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Upstream):
            return NotImplemented
        return (self.host, self.port, self.base_path) == (other.host, other.port, other.base_path)

    def __hash__(self) -> int:
        return hash((self.host, self.port, self.base_path))

    def __repr__(self) -> str:
        return f"Upstream(host={self.host!r}, port={self.port!r}, base_path={self.base_path!r})"

    @property
    def host_header(self) -> str:
        # As a client would write it: the default port is left out.
        return self.host if self.port == 80 else f"{self.host}:{self.port}"


def parse_upstream(url: str, where: str) -> Upstream:
    """Split ``http://tomcat-svc:8080[/base]`` into host, port and base path."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or 80
    except ValueError as exc:
        raise ValueError(f"{where}: not a valid URL {url!r}: {exc}") from None
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{where}: expected an http:// URL with a host, got {url!r}")
    return Upstream(host=parts.hostname, port=port, base_path=parts.path.rstrip("/"))


def parse_upstreams(text: str, where: str) -> list[Upstream]:
    """Every URL of a comma- or whitespace-separated list (at least one), in order."""
    urls = text.replace(",", " ").split()
    if not urls:
        raise ValueError(f"{where}: expected one or more http:// URLs, got {text!r}")
    return [parse_upstream(url, where) for url in urls]
