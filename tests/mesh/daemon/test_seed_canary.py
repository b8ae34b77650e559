"""The seed's canary scenario, files as written: 90/10 through the ingress gateway, and new
weights applied with kubectl take effect on the very next request."""

from __future__ import annotations

import http.client
import math
from urllib.parse import urlsplit

import pytest

from .conftest import Mesh, chaosmesh, request

pytestmark = pytest.mark.envoy


def _count(url: str, n: int) -> dict[str, int]:
    split = urlsplit(url)
    conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=10)
    counts = {"appv1": 0, "appv2": 0}
    try:
        for _ in range(n):
            conn.request("GET", "/")
            response = conn.getresponse()
            body = response.read().decode()
            assert response.status == 200, body
            counts[body.split()[0]] += 1
    finally:
        conn.close()
    return counts


def test_canary_splits_90_10_and_kubectl_apply_takes_effect_next_request(mesh_up) -> None:
    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test")
    gateway = mesh.gateway()["url"]

    n = 1000
    counts = _count(gateway, n)
    sigma = math.sqrt(n * 0.9 * 0.1)  # binomial: 9.5 requests
    assert abs(counts["appv1"] - 900) <= 4 * sigma, counts

    new_weights = (mesh.workdir / "canary" / "virtualservice.yaml").read_text()
    new_weights = new_weights.replace("weight: 90", "weight: 0").replace(
        "weight: 10", "weight: 100"
    )
    out = mesh.kubectl("apply", "-n", "istio-test", "-f", "-", stdin=new_weights).stdout
    assert "configured" in out
    # kubectl returned: Envoy already serves the new weights, from the first request on.
    assert _count(gateway, 50) == {"appv1": 0, "appv2": 50}

    # The VirtualService is bound to the gateway only; inside the mesh (the service's outbound
    # listener) the default route still reaches both versions.
    service = mesh.service("canary")
    status, _, body = request(service["url"], host=service["host_header"])
    assert status == 200 and body.split()[0] in (b"appv1", b"appv2")

    status_out = chaosmesh("mesh", "status", cwd=mesh.workdir).stdout
    assert "appv1-0" in status_out and "healthy" in status_out
    assert "VirtualService" in status_out
    url_out = chaosmesh("mesh", "url", "canary:80", cwd=mesh.workdir).stdout
    assert "Host: canary.istio-test.svc.cluster.local" in url_out


def test_official_client_reads_pods_services_deployments(mesh_up) -> None:
    from kubernetes import client, config

    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test")
    api_client = config.new_client_from_config(mesh.state["kubeconfig"])
    core = client.CoreV1Api(api_client)
    pods = core.list_namespaced_pod("istio-test", label_selector="app=v2", _request_timeout=10)
    assert [(p.metadata.name, p.status.pod_ip, p.status.phase) for p in pods.items] == [
        ("appv2-0", "127.0.0.1", "Running")
    ]
    assert (
        core.read_namespaced_service("canary", "istio-test", _request_timeout=10).spec.ports[0].port
        == 80
    )
    deployments = client.AppsV1Api(api_client).list_namespaced_deployment(
        "istio-test", _request_timeout=10
    )
    assert sorted((d.metadata.name, d.status.ready_replicas) for d in deployments.items) == [
        ("appv1", 1),
        ("appv2", 1),
    ]
    assert "istio-test" in [n.metadata.name for n in core.list_namespace(_request_timeout=10).items]
