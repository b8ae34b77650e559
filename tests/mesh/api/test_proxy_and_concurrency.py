"""Service/pod proxy to real local HTTP servers; concurrent and keep-alive clients."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from chaosmesh_ext.mesh.api import resources

from .conftest import Api

T = 10


class _Echo(BaseHTTPRequestHandler):
    """Answers with what it received, so the test sees what the proxy forwarded."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "header": self.headers.get("X-Probe"),
                "body": self.rfile.read(length).decode(),
                "who": self.server.server_address[1],
            }
        ).encode()
        self.send_response(207)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "echo")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer


@pytest.fixture
def upstream() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _mesh_objects(api: Api, port: int, ready: bool = True) -> None:
    api.store.set_readonly(
        resources.SERVICES,
        [
            {
                "metadata": {"name": "fortio", "namespace": "default"},
                "spec": {"selector": {"app": "fortio"}, "ports": [{"name": "http", "port": 8080}]},
            }
        ],
    )
    api.store.set_readonly(
        resources.PODS,
        [
            {
                "metadata": {
                    "name": "fortio-0",
                    "namespace": "default",
                    "labels": {"app": "fortio"},
                    "annotations": {"chaosmesh.io/local-port": str(port)},
                },
                "status": {
                    "podIP": "127.0.0.1",
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                },
            }
        ],
    )


def _request(
    api: Api,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=T)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_service_proxy_forwards_method_query_headers_body(
    api: Api, upstream: ThreadingHTTPServer
) -> None:
    _mesh_objects(api, upstream.server_address[1])
    for target in ("fortio:8080", "fortio", "http:fortio:8080", "fortio:http"):
        status, headers, body = _request(
            api,
            "POST",
            f"/api/v1/namespaces/default/services/{target}/proxy/fortio/rest/run?qps=5&n=3",
            body=b'{"url": "x"}',
            headers={"X-Probe": "yes", "Content-Type": "application/json"},
        )
        seen = json.loads(body)
        assert status == 207 and headers["X-Upstream"] == "echo"
        assert seen == {
            "method": "POST",
            "path": "/fortio/rest/run?qps=5&n=3",
            "header": "yes",
            "body": '{"url": "x"}',
            "who": upstream.server_address[1],
        }


def test_service_proxy_through_the_official_client(
    api: Api, kube: client.ApiClient, upstream: ThreadingHTTPServer
) -> None:
    _mesh_objects(api, upstream.server_address[1])
    answer = client.CoreV1Api(kube).connect_get_namespaced_service_proxy_with_path(
        "fortio:8080", "default", "fortio/rest/status", _request_timeout=T, _preload_content=False
    )
    assert json.loads(answer.data)["path"] == "/fortio/rest/status"


def test_service_proxy_without_ready_endpoint_is_503_status(
    api: Api, upstream: ThreadingHTTPServer
) -> None:
    _mesh_objects(api, upstream.server_address[1], ready=False)
    status, _, body = _request(api, "GET", "/api/v1/namespaces/default/services/fortio:8080/proxy/")
    assert status == 503 and json.loads(body)["kind"] == "Status"
    status, _, body = _request(api, "GET", "/api/v1/namespaces/default/services/nope:80/proxy/")
    assert status == 404 and json.loads(body)["reason"] == "NotFound"


def test_pod_proxy_port_15020_reaches_the_envoy_admin(
    api: Api, upstream: ThreadingHTTPServer
) -> None:
    _mesh_objects(api, 1)  # the pod's own port is never used for 15020
    api.server.admin_url = f"http://127.0.0.1:{upstream.server_address[1]}"
    status, _, body = _request(
        api, "GET", "/api/v1/namespaces/default/pods/fortio-0:15020/proxy/stats/prometheus"
    )
    assert status == 207 and json.loads(body)["path"] == "/stats/prometheus"


def test_reads_are_not_blocked_by_a_write_waiting_on_the_data_plane(
    api: Api, kube: client.ApiClient
) -> None:
    objects = client.CustomObjectsApi(kube)
    body = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw"},
        "spec": {},
    }
    api.plane.gate = threading.Event()
    writer = threading.Thread(
        target=lambda: objects.create_namespaced_custom_object(
            "networking.istio.io", "v1", "default", "gateways", body, _request_timeout=T
        )
    )
    writer.start()
    try:
        assert api.plane.entered.wait(T)
        # The write is held inside its push: readers still get answers, without the object.
        for _ in range(5):
            listed = objects.list_namespaced_custom_object(
                "networking.istio.io", "v1", "default", "gateways", _request_timeout=T
            )
            assert listed["items"] == []
    finally:
        api.plane.gate.set()
        writer.join(T)
    listed = objects.list_namespaced_custom_object(
        "networking.istio.io", "v1", "default", "gateways", _request_timeout=T
    )
    assert [o["metadata"]["name"] for o in listed["items"]] == ["gw"]


def test_many_concurrent_writers_get_distinct_resource_versions(
    api: Api, kube: client.ApiClient
) -> None:
    objects = client.CustomObjectsApi(kube)
    results: list[str] = []

    def create(i: int) -> None:
        body = {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": f"dr-{i}"},
            "spec": {"host": f"svc-{i}"},
        }
        created = objects.create_namespaced_custom_object(
            "networking.istio.io", "v1", "default", "destinationrules", body, _request_timeout=T
        )
        results.append(created["metadata"]["resourceVersion"])

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(T)
    assert len(set(results)) == 16
    assert len(api.plane.pushes[-1]["destinationrules"]) == 16


def test_keep_alive_serves_several_requests_on_one_connection(api: Api) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=T)
    try:
        for path in ("/version", "/apis", "/apis/networking.istio.io/v1/virtualservices", "/nope"):
            conn.request("GET", path)
            response = conn.getresponse()
            payload = json.loads(response.read())
            assert response.status == (404 if path == "/nope" else 200)
            assert payload
        assert conn.sock is not None  # the server never closed it
    finally:
        conn.close()
