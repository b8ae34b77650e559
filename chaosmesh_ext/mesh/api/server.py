"""The embedded mesh's Kubernetes-style HTTP API, served on 127.0.0.1.

A threaded stdlib server speaking HTTP/1.1 with keep-alive: one thread per connection, so
concurrent clients (kubectl, the extension's actions, probes polling the pod proxy) do not
queue behind one another, and a write waiting on an Envoy push does not block reads.
Routing follows kube-apiserver's paths; semantics live in ``store.Store``; this module only
maps HTTP to store calls and back. Subresources: ``services|pods/{name}/proxy``,
``pods/{name}/log`` (from the daemon's ``pod_logs``), ``deployments/{name}/scale``; a pod's
``exec``, ``attach`` and ``portforward`` answer 400 saying why (a replica runs as a local
process, not in a container).

Access (the daemon passes a ``token`` and a TLS context, as Kubernetes clients send a token
only over TLS): every request must carry ``Authorization: Bearer <token>`` (the token is in
the kubeconfig the mesh writes, mode 0600), else 401 as kube-apiserver answers; any request
with an ``Origin`` header is refused (403), so a web page in a local browser can never drive
the API, even with a "simple" request that skips CORS.
"""

from __future__ import annotations

import hmac
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import discovery, resources, scale, tables
from . import warnings as api_warnings
from .proxy import ProxyError, forward
from .resources import ResourceType
from .selectors import field_selector, label_selector, matches_selector
from .status import (
    ApiError,
    bad_request,
    forbidden,
    method_not_allowed,
    path_not_found,
    service_unavailable,
    unauthorized,
    unsupported_media_type,
)
from .store import Store

# pilot-agent's port on an Istio pod: it serves the sidecar's merged stats there.
PILOT_AGENT_PORT = 15020
LOCAL_PORT_ANNOTATION = "chaosmesh.io/local-port"
WORKLOAD_ANNOTATION = "chaosmesh.io/workload"
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
PROTOBUF = "application/vnd.kubernetes.protobuf"

# An extra endpoint (the daemon's): (method, query, body) -> (status code, JSON body).
ExtraHandler = Callable[[str, dict[str, list[str]], bytes], tuple[int, Any]]
# A pod's log (the daemon's): (namespace, pod, query parameters) -> chunks of text to send;
# raises ApiError (404 for an unknown pod, 400 for a bad parameter).
PodLogs = Callable[[str, str, dict[str, str]], Iterable[bytes]]
# Subresources of a pod no replica on one machine can serve: there is no container to enter.
CONTAINER_SUBRESOURCES = ("exec", "attach", "portforward")
# Watches wait for events this long at a time, then check the client and their deadline.
WATCH_POLL_S = 1.0


@dataclass(frozen=True)
class Route:
    """What a request path names, as kube-apiserver's router would read it."""

    kind: str  # "discovery", "collection", "object", "proxy", "subresource"
    rt: ResourceType | None = None
    version: str | None = None
    namespace: str | None = None
    name: str | None = None
    rest: str = ""  # the proxied path, or the subresource's name
    document: Any = None


def parse_path(path: str) -> Route:
    """Map a request path to a ``Route``; raise 404 ``ApiError`` for anything unknown."""
    parts = [unquote(p) for p in path.split("/") if p]
    if not parts:
        raise path_not_found(path)
    head = parts[0]
    if head == "version" and len(parts) == 1:
        return Route("discovery", document=discovery.SERVER_VERSION)
    if head == "apis" and len(parts) == 1:
        return Route("discovery", document=discovery.group_list())
    if head == "apis" and len(parts) == 2:
        doc = discovery.group(parts[1])
        if doc is None:
            raise path_not_found(path)
        return Route("discovery", document=doc)
    if head == "api" and len(parts) == 1:
        return Route("discovery", document="core-versions")
    if head == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif head == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise path_not_found(path)
    if not rest:
        doc = discovery.resource_list(group, version)
        if doc is None:
            raise path_not_found(path)
        return Route("discovery", document=doc)
    namespace: str | None = None
    # /namespaces/{ns}/{plural}... ; but /namespaces and /namespaces/{name} are Namespace objects
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    rt = resources.find(group, version, rest[0])
    if rt is None:
        raise path_not_found(path)
    if len(rest) == 1:
        return Route("collection", rt, version, namespace)
    name = rest[1]
    if len(rest) == 2:
        return Route("object", rt, version, namespace, name)
    if rest[2] == "proxy" and rt.plural in ("services", "pods") and namespace:
        # Decoded, as Go's URL.Path is: the official client sends "fortio%2Frest%2Fstatus".
        tail = unquote("/".join(path.split("/proxy", 1)[1:]))
        return Route("proxy", rt, version, namespace, name, rest=tail or "/")
    if len(rest) == 3 and namespace and (rt.plural, rest[2]) in _SUBRESOURCES:
        return Route("subresource", rt, version, namespace, name, rest=rest[2])
    raise path_not_found(path)


_SUBRESOURCES = {
    ("pods", "log"),
    *(("pods", sub) for sub in CONTAINER_SUBRESOURCES),
    ("deployments", "scale"),
}


def _split_target(target: str) -> tuple[str, str]:
    """``name``, ``name:port`` or ``scheme:name:port`` -> (name, port token)."""
    pieces = target.split(":")
    if len(pieces) == 3:
        return pieces[1], pieces[2]
    if len(pieces) == 2:
        return pieces[0], pieces[1]
    return pieces[0], ""


class ApiServer:
    """The HTTP face of a ``Store``; ``start()`` serves in a thread, ``stop()`` ends it."""

    def __init__(
        self,
        store: Store,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_url: str | Callable[[], str | None] | None = None,
        proxy_timeout: float = 300.0,
        extra: dict[str, ExtraHandler] | None = None,
        token: str | None = None,
        tls: ssl.SSLContext | None = None,
        pod_logs: PodLogs | None = None,
    ) -> None:
        """``token``: the bearer token every request must carry; ``tls``: serve HTTPS with
        it. None for both (plain HTTP, no authentication) only for a server a test builds
        in-process; the daemon always passes both. ``pod_logs`` serves ``pods/{name}/log``."""
        self.store = store
        self.pod_logs = pod_logs
        self.token = token
        self.tls = tls
        self.admin_url = admin_url
        self.proxy_timeout = proxy_timeout
        self.extra: dict[str, ExtraHandler] = dict(extra or {})
        self._round_robin = 0
        self._round_robin_lock = threading.Lock()  # one counter for all handler threads
        self._httpd = _Server((host, port), _Handler)
        self._httpd.api = self
        self._httpd.tls = tls
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host!s}:{port}"

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> ApiServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="chaosmesh-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def admit(self, origin: str | None, authorization: str | None, websocket: bool = False) -> None:
        """Raise 403 for a browser's request (any ``Origin``), 401 without the token.

        One exception: a WebSocket handshake naming this server itself as its origin, which
        is what WebSocket client libraries send (the official client's ``stream`` for exec);
        it still needs the token, which no web page can add to a WebSocket."""
        if origin is not None and not (websocket and origin.rstrip("/") == self.url):
            raise forbidden("requests from a web page (with an Origin header) are not allowed")
        if self.token is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        ):
            raise unauthorized()

    # ---- proxy targets -----------------------------------------------------------------
    def service_endpoint(self, namespace: str, target: str) -> tuple[str, int]:
        name, port_token = _split_target(target)
        service = self.store.get(resources.SERVICES, namespace, name)
        ports = (service.get("spec") or {}).get("ports") or []
        if port_token:
            wanted = [
                p for p in ports if str(p.get("port")) == port_token or p.get("name") == port_token
            ]
            if not wanted:
                raise service_unavailable(
                    f'no endpoints available for service "{name}:{port_token}"'
                )
        selector = (service.get("spec") or {}).get("selector") or {}
        pods, _ = self.store.list_objects(resources.PODS, namespace)
        ready = [
            p
            for p in pods
            if matches_selector(selector, (p.get("metadata") or {}).get("labels") or {})
            and _pod_ready(p)
        ]
        if not ready:
            raise service_unavailable(f'no endpoints available for service "{name}"')
        with self._round_robin_lock:
            self._round_robin += 1
            turn = self._round_robin
        pod = ready[turn % len(ready)]
        return _pod_address(pod)

    def pod_endpoint(self, namespace: str, target: str) -> tuple[str, int]:
        name, port_token = _split_target(target)
        pod = self.store.get(resources.PODS, namespace, name)
        if port_token == str(PILOT_AGENT_PORT):
            # A callable follows Envoy across supervisor restarts (its admin port changes).
            admin = self.admin_url() if callable(self.admin_url) else self.admin_url
            if not admin:
                raise service_unavailable("the mesh's Envoy admin is not available")
            split = urlsplit(admin)
            return split.hostname or "127.0.0.1", int(split.port or 80)
        return _pod_address(pod)


def _pod_ready(pod: dict[str, Any]) -> bool:
    """Ready and not being deleted: what an Endpoints object lists as a ready address."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _pod_address(pod: dict[str, Any]) -> tuple[str, int]:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    ip = (pod.get("status") or {}).get("podIP") or "127.0.0.1"
    return ip, int(annotations[LOCAL_PORT_ANNOTATION])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    api: ApiServer
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the connection's own thread: the TLS handshake happens here, so a slow or
        silent client never holds up ``accept`` for the others."""
        if self.tls is not None:
            assert isinstance(request, socket.socket)
            request.settimeout(10)  # a handshake that stalls frees its thread
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                request.close()  # e.g. plain HTTP sent to the HTTPS port
                return
            request.settimeout(None)
            try:
                super().finish_request(request, client_address)
            finally:
                request.close()  # the plain socket socketserver closes was detached by wrap
            return
        super().finish_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # no 40 ms stalls between header and body segments
    timeout = 120  # an idle keep-alive connection (or a stalled client) frees its thread
    server: _Server
    server_version = "chaosmesh-api"
    _headers_buffer: list[bytes]  # BaseHTTPRequestHandler's, undeclared in typeshed

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the daemon's log is for the mesh, not for every GET

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_OPTIONS(self) -> None:
        self._handle("OPTIONS")

    def send_response(self, code: int, message: str | None = None) -> None:
        # Remembered so an error after this point never appends a second response to a
        # stream already under way (a watch, a proxied answer).
        self._responded = True
        super().send_response(code, message)

    # ---- plumbing ----------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _send(
        self,
        code: int,
        payload: bytes,
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        for key, value in headers or []:
            self.send_header(key, value)
        for warning in getattr(self, "_warnings", ()):
            if warning.concerns(getattr(self, "_subject", None)):
                self.send_header("Warning", api_warnings.header_value(warning.text))
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache, private")
        if self.close_connection:
            self.send_header("Connection", "close")  # e.g. a refused request's unread body
        # Header and body in one write: with Nagle off, two small writes still cost a packet.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(payload)
        self.flush_headers()

    def _decoded(self, body: bytes) -> Any:
        """The request's JSON body (None when empty)."""
        if not body.strip():
            return None
        return _decode(body, self.headers.get("Content-Type"))

    def _json(self, code: int, document: Any) -> None:
        self._send(code, json.dumps(document, separators=(",", ":")).encode())

    def _handle(self, method: str) -> None:
        # Warnings raised while serving this request go back as `Warning:` headers.
        with api_warnings.collecting() as self._warnings:
            self._subject: api_warnings.Subject | None = None
            self._serve(method)

    def _serve(self, method: str) -> None:
        api = self.server.api
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        self._responded = False
        try:
            try:
                api.admit(
                    self.headers.get("Origin"),
                    self.headers.get("Authorization"),
                    websocket=(self.headers.get("Upgrade") or "").lower() == "websocket",
                )
            except ApiError:
                # The body of a refused request is never read: drop the connection after.
                self.close_connection = True
                raise
            body = self._body()
            if split.path.startswith("/chaosmesh/"):
                handler = api.extra.get(split.path.rstrip("/"))
                if handler is None:
                    raise path_not_found(split.path)
                code, doc = handler(method, query, body)
                self._json(code, doc)
                return
            if split.path.rstrip("/") == "/openapi/v2":
                # kubectl's client-side validation (its fallback when /openapi/v3 is absent)
                # needs this document, in protobuf. An empty message is a valid, empty
                # OpenAPI v2 Document: no schema for any kind, so kubectl validates nothing and,
                # for custom resources, computes a JSON merge patch, as against a cluster.
                self._send(200, b"", OPENAPI_V2_PROTOBUF)
                return
            route = parse_path(split.path)
            if route.kind == "proxy":
                self._proxy(route, split.query, body)
                return
            if route.kind == "subresource":
                self._subresource(method, route, query, body)
                return
            if route.kind == "discovery":
                if method not in ("GET", "HEAD"):
                    raise method_not_allowed(f"the server does not allow {method} on {split.path}")
                doc = route.document
                if doc == "core-versions":
                    doc = discovery.core_versions(f"127.0.0.1:{api.port}")
                self._json(200, doc)
                return
            self._subject = _subject(route, None)
            code, doc = self._resource(method, route, query, body)
            if code == -1:
                return  # streamed (watch)
            self._subject = _subject(route, doc)
            self._json(code, doc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            if self._responded:
                # Mid-stream: another status line would be read as body; end the stream.
                self.close_connection = True
            elif isinstance(exc, ApiError):
                self._json(exc.code, exc.to_status())
            else:  # an answer, never a dropped connection, for a bug of ours
                error = ApiError(500, "InternalError", f"internal error: {exc!r}")
                self._json(500, error.to_status())

    def _resource(
        self, method: str, route: Route, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any]:
        store = self.server.api.store
        rt = route.rt
        assert rt is not None
        namespace = route.namespace or ""
        if rt.namespaced and route.kind == "object" and not route.namespace:
            raise path_not_found(self.path)
        one = {k: v[-1] for k, v in query.items()}
        dry_run = _dry_run(query.get("dryRun") or [])
        accept = self.headers.get("Accept") or ""
        if route.kind == "collection":
            if method == "GET":
                if one.get("watch") in ("1", "true"):
                    self._watch(rt, route, one)
                    return -1, None
                items, revision = store.list_objects(
                    rt,
                    route.namespace if rt.namespaced else None,
                    route.version,
                    one.get("labelSelector"),
                    one.get("fieldSelector"),
                )
                if tables.wants_table(accept):
                    return 200, tables.to_table(
                        rt.plural,
                        items,
                        revision,
                        one.get("includeObject", "Metadata"),
                        tables.table_version(accept),
                    )
                return 200, {
                    "apiVersion": rt.api_version(route.version),
                    "kind": f"{rt.kind}List",
                    "metadata": {"resourceVersion": revision},
                    "items": items,
                }
            if method == "POST":
                if not route.namespace and rt.namespaced:
                    raise method_not_allowed("create needs a namespace in the path")
                # Before the body: kubectl sends built-in kinds as protobuf, which is not read.
                store.check_writable(rt, "create")
                return 201, store.create(
                    rt, namespace, self._decoded(body), route.version, dry_run=dry_run
                )
            if method == "DELETE" and route.namespace:
                if dry_run:
                    raise bad_request("dryRun is not supported on a collection delete here")
                deleted = store.delete_collection(
                    rt,
                    namespace,
                    _delete_options(self._decoded(body), one),
                    route.version,
                    one.get("labelSelector"),
                    one.get("fieldSelector"),
                )
                return 200, {
                    "apiVersion": rt.api_version(route.version),
                    "kind": f"{rt.kind}List",
                    "metadata": {"resourceVersion": store.revision},
                    "items": deleted,
                }
            raise method_not_allowed(
                f"the server does not allow {method} on {rt.plural} collections"
            )
        name = route.name or ""
        if method == "GET":
            obj = store.get(rt, namespace, name, route.version)
            if tables.wants_table(accept):
                return 200, tables.to_table(
                    rt.plural,
                    [obj],
                    obj["metadata"].get("resourceVersion", ""),
                    one.get("includeObject", "Metadata"),
                    tables.table_version(accept),
                )
            return 200, obj
        if method == "PUT":
            store.check_writable(rt, "update")
            return 200, store.replace(
                rt, namespace, name, self._decoded(body), route.version, dry_run=dry_run
            )
        if method == "PATCH":
            content_type = self.headers.get("Content-Type") or ""
            return 200, store.patch(
                rt, namespace, name, content_type, body, route.version, dry_run=dry_run
            )
        if method == "DELETE":
            options = _delete_options(self._decoded(body), one)
            if isinstance(options, dict) and options.get("dryRun"):
                dry_run = _dry_run(options["dryRun"])  # DeleteOptions may carry it too
            return 200, store.delete(rt, namespace, name, options, route.version, dry_run=dry_run)
        raise method_not_allowed(f"the server does not allow {method} on {rt.plural}")

    def _proxy(self, route: Route, raw_query: str, body: bytes) -> None:
        api = self.server.api
        assert route.rt is not None and route.namespace and route.name
        if route.rt.plural == "services":
            host, port = api.service_endpoint(route.namespace, route.name)
        else:
            host, port = api.pod_endpoint(route.namespace, route.name)
        path = route.rest if route.rest.startswith("/") else "/" + route.rest
        if raw_query:
            path += "?" + raw_query
        try:
            answer = forward(
                self.command, host, port, path, dict(self.headers.items()), body, api.proxy_timeout
            )
        except ProxyError as exc:
            raise ApiError(503, "ServiceUnavailable", str(exc)) from None
        content_type = "application/octet-stream"
        kept = []
        for key, value in answer.headers:
            if key.lower() == "content-type":
                content_type = value
            else:
                kept.append((key, value))
        self._send(answer.status, answer.body, content_type, kept)

    def _subresource(
        self, method: str, route: Route, query: dict[str, list[str]], body: bytes
    ) -> None:
        api = self.server.api
        store = api.store
        namespace, name = route.namespace or "", route.name or ""
        one = {k: v[-1] for k, v in query.items()}
        if route.rest == "scale":
            self._subject = ("Deployment", namespace, name)
            if method == "GET":
                self._json(200, scale.read(store, namespace, name))
            elif method == "PUT":
                self._json(200, scale.replace(store, namespace, name, self._decoded(body)))
            elif method == "PATCH":
                content_type = self.headers.get("Content-Type") or ""
                self._json(200, scale.patch(store, namespace, name, content_type, body))
            else:
                raise method_not_allowed(f"the server does not allow {method} on scale")
            return
        pod = store.get(resources.PODS, namespace, name)  # 404 first, as on a cluster
        if route.rest in CONTAINER_SUBRESOURCES:
            kind = ((pod.get("metadata") or {}).get("annotations") or {}).get(
                WORKLOAD_ANNOTATION, "local"
            )
            self.close_connection = True  # a refused upgrade: nothing more on this connection
            raise bad_request(
                f"pods/{route.rest} is not supported by the embedded mesh: pod {namespace}/"
                f"{name} runs as a local {kind} process, not a container, so there is no "
                f"container to {route.rest.replace('portforward', 'forward ports of')} "
                "(run the command against a cluster, or use the pod's service proxy)"
            )
        if method != "GET":
            raise method_not_allowed(f"the server does not allow {method} on pods/log")
        if api.pod_logs is None:
            raise path_not_found(self.path)
        chunks = api.pod_logs(namespace, name, one)
        if one.get("follow") not in ("1", "true"):
            self._send(200, b"".join(chunks), "text/plain")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _watch(self, rt: ResourceType, route: Route, one: dict[str, str]) -> None:
        """A watch, as kube-apiserver serves it: from ``resourceVersion`` (none or "0": the
        current objects as ADDED first), every change in order from the store's event log,
        until ``timeoutSeconds`` (capped at 5 minutes) or the client leaves."""
        store = self.server.api.store
        timeout = min(float(one.get("timeoutSeconds") or 300), 300.0)
        namespace = route.namespace if rt.namespaced else None
        match_labels = label_selector(one.get("labelSelector"))
        match_fields = field_selector(one.get("fieldSelector"))

        def matches(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            meta = obj.get("metadata") or {}
            return (
                (namespace is None or meta.get("namespace", "") == namespace)
                and match_labels(meta.get("labels") or {})
                and match_fields(obj)
            )

        accept = self.headers.get("Accept") or ""

        def emit(kind: str, obj: dict[str, Any]) -> None:
            if tables.wants_table(accept):
                # As kube-apiserver does for `kubectl get -w`: each event carries a one-row Table.
                obj = tables.to_table(
                    rt.plural,
                    [obj],
                    obj["metadata"].get("resourceVersion", ""),
                    one.get("includeObject", "Metadata"),
                    tables.table_version(accept),
                )
            line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

        # Before the 200: a bad selector or resourceVersion is a 400 Status, not an error
        # inside the stream; a resourceVersion the log no longer reaches is 410 Gone.
        since = one.get("resourceVersion") or ""
        initial: list[dict[str, Any]] = []
        if since in ("", "0"):
            initial, revision = store.list_objects(
                rt, namespace, route.version, one.get("labelSelector"), one.get("fieldSelector")
            )
            after = int(revision)
        else:
            try:
                after = int(since)
            except ValueError:
                raise bad_request(f"invalid resourceVersion {since!r}") from None
            store.wait_events(rt, after, 0)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + timeout
        try:
            for obj in initial:
                emit("ADDED", obj)
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    events, after = store.wait_events(rt, after, min(remaining, WATCH_POLL_S))
                except ApiError as exc:  # fell out of the log: the client lists again
                    emit("ERROR", exc.to_status())
                    break
                for event in events:
                    now, before = matches(event.obj), matches(event.previous)
                    if event.type == "DELETED":
                        kind = "DELETED" if before else ""
                    elif now:
                        kind = "MODIFIED" if before else "ADDED"
                    else:  # no longer selected: gone from this watch's view
                        kind = "DELETED" if before else ""
                    if kind:
                        emit(kind, store.render(rt, event.obj, route.version))
                if not events and _client_left(self.connection):
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        self.close_connection = True


def _dry_run(values: list[str] | Any) -> bool:
    """kube-apiserver's ``dryRun``: absent, or ``All`` (the only stage there is)."""
    given = [values] if isinstance(values, str) else list(values or [])
    for value in given:
        if value != "All":
            raise bad_request(f'Invalid dryRun value: "{value}": supported values: "All"')
    return bool(given)


def _client_left(sock: Any) -> bool:
    """Whether a watcher has gone: it sends nothing after its request, so anything readable
    on its connection is its hang-up (a FIN, or TLS' close_notify)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _delete_options(options: Any, one: dict[str, str]) -> dict[str, Any] | None:
    """DeleteOptions (the decoded body, None without one), with the query's
    ``gracePeriodSeconds`` (kubectl sends it there too) when the body has none."""
    if options is not None and not isinstance(options, dict):
        raise bad_request("DeleteOptions must be a JSON object")
    if "gracePeriodSeconds" in one and (options or {}).get("gracePeriodSeconds") is None:
        options = {**(options or {}), "gracePeriodSeconds": one["gracePeriodSeconds"]}
    return options


def _subject(route: Route, doc: Any) -> api_warnings.Subject | None:
    """The object a request is about, for its warnings (a create learns its name late)."""
    if route.rt is None:
        return None
    name = route.name
    if name is None and isinstance(doc, dict) and doc.get("kind") == route.rt.kind:
        name = (doc.get("metadata") or {}).get("name")
    return (route.rt.kind, route.namespace or "", name) if name else None


def _decode(body: bytes, content_type: str | None = None) -> Any:
    """A JSON request body; 415 for protobuf (kubectl's choice for built-in kinds)."""
    if body and (content_type or "").split(";", 1)[0].strip().lower() == PROTOBUF:
        raise unsupported_media_type(PROTOBUF, ["application/json"])
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from None
