"""The embedded mesh is never silently different from Istio, as a user meets it: kubectl prints
the API's ``Warning:`` headers, a field the mesh does not support is refused (422 naming it;
``mesh up -f`` starts nothing), HTTPS gateway servers use the manifests' Secret.

A real ``chaosmesh mesh up`` (Envoy, the API, workloads) and the kubectl binary.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.api import tls
from tests.support.https_client import https_get, tls_secret

from .conftest import SEED, Mesh, chaosmesh, envoy_listener_port

pytestmark = pytest.mark.envoy

DR_SIMPLE_TLS = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: canary-tls, namespace: istio-test}
spec:
  host: canary
  trafficPolicy:
    tls: {mode: SIMPLE}
"""


def test_kubectl_prints_the_warning_headers_of_an_accepted_object(mesh_up):
    """istiod's validation warning ("abort configured, but error type not set") and the
    fidelity warning for a no-effect field come back as Warning: headers kubectl prints; the
    abort is dropped as TranslateFault drops it and the route keeps serving."""
    mesh = mesh_up(["canary"], "--namespace", "istio-test")
    vs = json.loads(mesh.kubectl("get", "vs", "canary", "-n", "istio-test", "-o", "json").stdout)
    vs["spec"]["http"][0]["fault"] = {"abort": {"percentage": {"value": 100}}}
    vs["spec"]["exportTo"] = ["."]
    applied = mesh.kubectl("apply", "-f", "-", stdin=json.dumps(vs))
    assert "Warning: spec.http[0].fault.abort: abort configured, but error type not set" in (
        applied.stderr
    )
    assert "Warning: spec.exportTo: no effect on the embedded mesh" in applied.stderr
    gateway = mesh.gateway()
    for _ in range(5):
        assert _status(gateway["url"], "canary.example.com") == 200


def _status(url: str, host: str) -> int:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_an_unsupported_field_is_refused_422_naming_it_and_nothing_changes(mesh_up):
    mesh = mesh_up(["canary"], "--namespace", "istio-test")
    before = mesh.kubectl("get", "dr", "-n", "istio-test", "-o", "json").stdout
    refused = mesh.kubectl("apply", "-f", "-", stdin=DR_SIMPLE_TLS, check=False)
    assert refused.returncode != 0
    assert "spec.trafficPolicy.tls.mode" in refused.stderr
    assert "not supported by the embedded mesh: tls.mode SIMPLE" in refused.stderr
    assert mesh.kubectl("get", "dr", "-n", "istio-test", "-o", "json").stdout == before
    status, body = mesh.api(
        "POST",
        "/apis/networking.istio.io/v1/namespaces/istio-test/destinationrules",
        json.dumps(__import__("yaml").safe_load(DR_SIMPLE_TLS)).encode(),
        {"Content-Type": "application/json"},
    )
    answer = json.loads(body)
    assert (status, answer["reason"]) == (422, "Invalid")
    assert [c["field"] for c in answer["details"]["causes"]] == ["spec.trafficPolicy.tls.mode"]


def test_mesh_up_refuses_an_unsupported_field_before_starting_anything(tmp_path: Path):
    (tmp_path / "dr.yaml").write_text(DR_SIMPLE_TLS)
    proc = chaosmesh(
        "mesh", "up", "-f", str(SEED / "canary"), "-f", str(tmp_path / "dr.yaml"),
        "--namespace", "istio-test", cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "nothing started" in proc.stderr
    assert "DestinationRule istio-test/canary-tls: spec.trafficPolicy.tls.mode: not supported" in (
        proc.stderr
    )
    assert not (tmp_path / ".chaosmesh" / "mesh.json").exists()


HTTPS_GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: canary-gateway, namespace: istio-test}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [canary.example.com]
    tls: {mode: SIMPLE, credentialName: canary-credential}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [canary.example.com]
    tls: {httpsRedirect: true}
"""


def test_https_gateway_with_the_manifests_secret_and_https_redirect(mesh_up, tmp_path: Path):
    """A production Gateway unchanged: SIMPLE TLS with credentialName from a kubernetes.io/tls
    Secret in the manifests, served by Envoy; the HTTP server's httpsRedirect answers 301."""
    cert = tls.make(tmp_path / "user-cert", name="canary", common_name="canary.example.com")
    key = cert.key_path.read_bytes()
    secret = tls_secret(cert.cert_pem, key, "canary-credential", "istio-system")
    mesh = mesh_up(
        ["canary"],
        "--namespace",
        "istio-test",
        extra={"secret.json": json.dumps(secret), "https-gateway.yaml": HTTPS_GATEWAY},
    )
    status, _, subject = https_get(envoy_listener_port(mesh, "gateway_443"), "canary.example.com")
    assert (status, subject) == (200, "CN=canary.example.com")
    conn = http.client.HTTPConnection(
        "127.0.0.1", envoy_listener_port(mesh, "gateway_80"), timeout=10
    )
    conn.request("GET", "/cart", headers={"Host": "canary.example.com"})
    response = conn.getresponse()
    response.read()
    conn.close()
    assert (response.status, response.getheader("location")) == (
        301,
        "https://canary.example.com/cart",
    )


def test_https_server_without_its_secret_serves_a_generated_certificate_and_says_so(
    tmp_path: Path,
):
    """No Secret for credentialName: a generated self-signed certificate is served, and
    ``mesh up`` prints the warning; ``mesh down`` afterwards."""
    (tmp_path / "https-gateway.yaml").write_text(HTTPS_GATEWAY)
    up = chaosmesh(
        "mesh", "up", "-f", str(SEED / "canary"), "-f", str(tmp_path / "https-gateway.yaml"),
        "--namespace", "istio-test", cwd=tmp_path,
    )  # fmt: skip
    try:
        assert (
            "warning: Gateway istio-test/canary-gateway: spec.servers[0].tls.credentialName: no "
            "kubernetes.io/tls Secret 'canary-credential' in the manifests: serving a generated "
            "self-signed certificate instead"
        ) in up.stdout
        assert "warning: spec.selector: no effect on the embedded mesh" in up.stderr
        state = json.loads((tmp_path / ".chaosmesh" / "mesh.json").read_text())
        mesh = Mesh(tmp_path, state)
        port = envoy_listener_port(mesh, "gateway_443")
        status, _, subject = https_get(port, "canary.example.com")
        assert (status, subject) == (200, "CN=chaosmesh-gateway")
    finally:
        chaosmesh("mesh", "down", cwd=tmp_path, check=False)
