"""What an answering workload says about itself and the request it got (pure, lean).

Every echo and proxy answer starts with one identity line, ``<deployment> <pod>
version=<version>``, that a body regex such as ``version=(v\\d+)`` classifies, then the
request as the workload saw it, in the field format of Istio's own echo test app
(istio/istio ``pkg/test/echo``: one ``Field=value`` per line)::

    ServiceVersion=v1
    Host=reviews:9080
    URL=/reviews/0?x=1
    Method=GET
    Proto=HTTP/1.1
    IP=127.0.0.1
    RequestHeader=End-User:jason
    Hostname=reviews-v1-0
    StatusCode=200

So which replica and version answered, and what Envoy made of the request on the way (Host
rewrites, added headers, the path), can be read from the caller for any path. Header names
are shown as Go's ``net/http`` canonicalises them and ``Host`` is its own field, as in
Istio's echo app.

Loaded by every echo and proxy replica: nothing here imports more than the standard
library's always-loaded modules (see ``_http``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # no typing at run time: see _http's docstring
if TYPE_CHECKING:
    from ._http import Request


class Identity:
    """Who this replica is: what every answer reports."""

    __slots__ = ("deployment", "namespace", "pod", "version")

    def __init__(self, deployment: str, namespace: str, pod: str, version: str | None) -> None:
        self.deployment = deployment
        self.namespace = namespace
        self.pod = pod
        self.version = version

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("x-chaosmesh-workload", self.deployment),
            ("x-chaosmesh-version", self.version or ""),
            ("x-chaosmesh-pod", self.pod),
        ]

    def line(self) -> str:
        return f"{self.deployment} {self.pod} version={self.version or 'none'}"


# Response headers that carry a replica's identity: a proxy replaces its upstream's with its own.
IDENTITY_HEADERS = frozenset({"x-chaosmesh-workload", "x-chaosmesh-version", "x-chaosmesh-pod"})


# Header names repeat from request to request: canonicalising each anew cost more than the
# rest of an echo answer. Bounded, as names are the caller's to choose.
_CANONICAL: dict[str, str] = {}
_CANONICAL_MAX = 1024


def canonical_header(name: str) -> str:
    """``x-request-id`` -> ``X-Request-Id``, as Go's ``textproto.CanonicalMIMEHeaderKey``."""
    found = _CANONICAL.get(name)
    if found is None:
        found = "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
        if len(_CANONICAL) >= _CANONICAL_MAX:
            _CANONICAL.clear()
        _CANONICAL[name] = found
    return found


def request_lines(identity: Identity, request: Request, status: int) -> list[str]:
    """The identity line and the echo fields for ``request``, answered with ``status``."""
    lines = [
        identity.line(),
        f"ServiceVersion={identity.version or ''}",
        f"Host={request.header('host') or ''}",
        f"URL={request.target}",
        f"Method={request.method}",
        f"Proto={request.version}",
        f"IP={request.peer}",
    ]
    # Sorted by name, each value on its own line in arrival order (a stable sort).
    shown = sorted(
        ((canonical_header(name), value) for name, value in request.headers),
        key=lambda item: item[0],
    )
    lines += [f"RequestHeader={name}:{value}" for name, value in shown if name != "Host"]
    lines += [f"Hostname={identity.pod}", f"StatusCode={status}"]
    return lines
