"""The API's access rule (bearer token from the kubeconfig, no browser requests) and its
streams (a watch never carries a second response; the service proxy's round robin).

Everything is real, set up as the daemon does: the server over TLS on 127.0.0.1 with a
certificate from ``api.tls.make``, the kubeconfig the mesh writes (``mesh.kubeconfig.write``),
kubectl, the official client, and echo workloads over HTTP.
"""

from __future__ import annotations

import http.client
import json
import ssl
import stat
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from chaosmesh_ext.mesh import kubeconfig
from chaosmesh_ext.mesh.api import ApiServer, Store, resources, tls
from tests.support.tools import require_tool

T = 10
TOKEN = "s3cret-token-for-this-test"
VS_PATH = "/apis/networking.istio.io/v1/namespaces/default/virtualservices"


class _Echo(BaseHTTPRequestHandler):
    """A workload: answers with its port and the Authorization header it received."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "who": self.server.server_address[1],
                "authorization": self.headers.get("Authorization"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Secured:
    server: ApiServer
    store: Store
    kubeconfig: Path
    calls: list[bytes]  # bodies the daemon endpoint was handed
    client_tls: ssl.SSLContext

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    store = Store()
    calls: list[bytes] = []

    def manifests(method: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        calls.append(body)
        return 200, {"applied": True}

    cert = tls.make(tmp_path / ".chaosmesh")
    server = ApiServer(
        store,
        token=TOKEN,
        tls=cert.server_context(),
        extra={"/chaosmesh/v1/manifests": manifests},
    ).start()
    path = kubeconfig.write(
        tmp_path / ".chaosmesh" / "kubeconfig", server.url, "default", TOKEN, cert.cert_pem
    )
    try:
        yield Secured(server, store, path, calls, tls.client_context(cert.cert_pem))
    finally:
        server.stop()


@pytest.fixture
def echoes() -> Iterator[list[ThreadingHTTPServer]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Echo) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield servers
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def _connect(api: Secured) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", api.port, timeout=T, context=api.client_tls)


def _raw(
    api: Secured, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, bytes]:
    conn = _connect(api)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _kubectl(api: Secured, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = require_tool("kubectl")
    return subprocess.run(
        [binary, "--kubeconfig", str(api.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )


def _services_and_pods(store: Store, ports: list[int]) -> None:
    store.set_readonly(
        resources.SERVICES,
        [
            {
                "metadata": {"name": "echo", "namespace": "default"},
                "spec": {"selector": {"app": "echo"}, "ports": [{"name": "http", "port": 80}]},
            }
        ],
    )
    store.set_readonly(
        resources.PODS,
        [
            {
                "metadata": {
                    "name": f"echo-{i}",
                    "namespace": "default",
                    "labels": {"app": "echo"},
                    "annotations": {"chaosmesh.io/local-port": str(port)},
                },
                "status": {
                    "podIP": "127.0.0.1",
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
            for i, port in enumerate(ports)
        ],
    )


def test_the_kubeconfig_and_key_are_private_and_carry_the_credentials(secured: Secured) -> None:
    assert stat.S_IMODE(secured.kubeconfig.stat().st_mode) == 0o600
    assert stat.S_IMODE((secured.kubeconfig.parent / "api.key").stat().st_mode) == 0o600
    token, ca_pem = kubeconfig.credentials(secured.kubeconfig)
    assert token == TOKEN and ca_pem and b"BEGIN CERTIFICATE" in ca_pem
    assert secured.server.url.startswith("https://127.0.0.1:")


def test_plain_http_to_the_api_gets_no_answer(secured: Secured) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", secured.port, timeout=T)
    try:
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            conn.request("GET", VS_PATH, headers=_bearer())
            conn.getresponse()
    finally:
        conn.close()


def test_requests_without_the_right_token_get_a_401_status(secured: Secured) -> None:
    for headers in ({}, _bearer("wrong"), {"Authorization": TOKEN}, {"Authorization": "Basic x"}):
        code, body = _raw(secured, "GET", VS_PATH, headers)
        status = json.loads(body)
        assert code == 401, headers
        assert (status["kind"], status["reason"], status["code"]) == ("Status", "Unauthorized", 401)
    assert _raw(secured, "GET", "/version", {})[0] == 401  # discovery too
    assert _raw(secured, "GET", VS_PATH, _bearer())[0] == 200


def test_the_daemon_endpoint_refuses_strangers_and_browser_pages(secured: Secured) -> None:
    body = b'{"namespace": "default", "manifests": []}'
    # A page in a local browser: a "simple" text/plain POST (no CORS preflight) with Origin.
    page = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
    assert _raw(secured, "POST", "/chaosmesh/v1/manifests", page, body)[0] == 403
    code, answer = _raw(secured, "POST", "/chaosmesh/v1/manifests", {**page, **_bearer()})
    assert code == 403 and json.loads(answer)["reason"] == "Forbidden"  # even with the token
    assert _raw(secured, "POST", "/chaosmesh/v1/manifests", {}, body)[0] == 401
    assert secured.calls == []  # nothing reached the handler
    assert _raw(secured, "POST", "/chaosmesh/v1/manifests", _bearer(), body)[0] == 200
    assert secured.calls == [body]


def test_only_a_websocket_naming_the_api_itself_may_carry_an_origin(secured: Secured) -> None:
    """WebSocket client libraries send ``Origin: <the server's URL>`` (the official client's
    exec does); a browser page's origin, or a plain request, is still refused."""
    secured.store.set_readonly(resources.PODS, [{"metadata": {"name": "web-0"}}])
    exec_path = "/api/v1/namespaces/default/pods/web-0/exec?command=ls"
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", **_bearer()}
    code, body = _raw(secured, "GET", exec_path, {**upgrade, "Origin": secured.server.url})
    assert code == 400 and "pods/exec is not supported" in json.loads(body)["message"]
    assert _raw(secured, "GET", exec_path, {**upgrade, "Origin": "http://evil.example"})[0] == 403
    plain = {**_bearer(), "Origin": secured.server.url}
    assert _raw(secured, "GET", VS_PATH, plain)[0] == 403
    no_token = {"Upgrade": "websocket", "Connection": "Upgrade", "Origin": secured.server.url}
    assert _raw(secured, "GET", exec_path, no_token)[0] == 401


def test_a_refused_request_with_a_body_does_not_poison_the_connection(secured: Secured) -> None:
    conn = _connect(secured)
    try:
        conn.request("POST", VS_PATH, body=b'{"kind": "GET / HTTP/1.1"}')
        response = conn.getresponse()
        assert response.status == 401
        response.read()
        conn.request("GET", VS_PATH, headers=_bearer())  # reconnects if the server closed
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_kubectl_and_the_official_client_work_with_the_written_kubeconfig(
    secured: Secured, tmp_path: Path
) -> None:
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "r"}}]}]},
    }
    (tmp_path / "vs.json").write_text(json.dumps(vs))
    applied = _kubectl(secured, tmp_path, "apply", "-f", str(tmp_path / "vs.json"))
    assert applied.returncode == 0, applied.stderr
    got = _kubectl(secured, tmp_path, "get", "virtualservices", "-o", "name")
    assert got.stdout.strip() == "virtualservice.networking.istio.io/reviews"

    api_client = config.new_client_from_config(str(secured.kubeconfig))
    try:
        items = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
            "networking.istio.io", "v1", "default", "virtualservices", _request_timeout=T
        )
    finally:
        api_client.close()
    assert [i["metadata"]["name"] for i in items["items"]] == ["reviews"]


def test_kubectl_with_a_wrong_token_is_told_it_is_unauthorized(
    secured: Secured, tmp_path: Path
) -> None:
    stolen = tmp_path / "wrong-token"
    _, ca_pem = kubeconfig.credentials(secured.kubeconfig)
    kubeconfig.write(stolen, secured.server.url, "default", "guessed", ca_pem)
    secured.kubeconfig = stolen
    got = _kubectl(secured, tmp_path, "get", "virtualservices")
    assert got.returncode != 0 and "You must be logged in to the server" in got.stderr


def test_service_proxy_with_the_token_never_hands_it_to_the_workload(
    secured: Secured, echoes: list[ThreadingHTTPServer]
) -> None:
    _services_and_pods(secured.store, [echoes[0].server_address[1]])
    api_client = config.new_client_from_config(str(secured.kubeconfig))
    try:
        answer = client.CoreV1Api(api_client).connect_get_namespaced_service_proxy_with_path(
            "echo:80", "default", "whoami", _request_timeout=T, _preload_content=False
        )
    finally:
        api_client.close()
    assert json.loads(answer.data)["authorization"] is None


def test_a_watch_with_a_bad_selector_is_one_clean_400(secured: Secured) -> None:
    """Before the fix the server sent 200 + chunked headers, then a 400 response inside."""
    conn = _connect(secured)
    try:
        conn.request("GET", f"{VS_PATH}?watch=true&labelSelector=a%20in%20(", headers=_bearer())
        response = conn.getresponse()
        status = json.loads(response.read())
        assert response.status == 400 and status["reason"] == "BadRequest"
        assert "unable to parse requirement" in status["message"]
    finally:
        conn.close()


def test_service_proxy_round_robin_stays_exact_under_concurrent_callers(
    secured: Secured, echoes: list[ThreadingHTTPServer]
) -> None:
    _services_and_pods(secured.store, [e.server_address[1] for e in echoes])
    got: Counter[int] = Counter()
    lock = threading.Lock()
    path = "/api/v1/namespaces/default/services/echo:80/proxy/"

    def caller() -> None:
        for _ in range(40):
            code, body = _raw(secured, "GET", path, _bearer())
            assert code == 200
            with lock:
                got[json.loads(body)["who"]] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        threads = [threading.Thread(target=caller) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(interval)
    # Each call takes the next turn: 320 calls over 2 pods is exactly 160 each.
    assert sorted(got.values()) == [160, 160]
