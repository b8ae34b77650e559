"""Discovery and the real kubectl against the embedded API (a real, independent client)."""

from __future__ import annotations

import json
import urllib.request

from kubernetes import client

from chaosmesh_ext.mesh.api import resources
from tests.support.tools import require_tool

from .conftest import Api

T = 10

CANARY = """\
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: canary
spec:
  hosts:
  - "*"
  gateways:
  - canary-gateway
  http:
  - route:
    - destination:
        host: canary.istio-test.svc.cluster.local
        subset: v1
      weight: {v1}
    - destination:
        host: canary.istio-test.svc.cluster.local
        subset: v2
      weight: {v2}
"""


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=T) as response:
        return json.loads(response.read())


def test_discovery_through_the_official_client(kube: client.ApiClient) -> None:
    version = client.VersionApi(kube).get_code(_request_timeout=T)
    assert version.major == "1"
    groups = client.ApisApi(kube).get_api_versions(_request_timeout=T)
    assert "networking.istio.io" in [g.name for g in groups.groups]
    core = client.CoreApi(kube).get_api_versions(_request_timeout=T)
    assert core.versions == ["v1"]
    listed = client.CustomObjectsApi(kube).get_api_resources(
        "networking.istio.io", "v1beta1", _request_timeout=T
    )
    short = {r.name: r.short_names for r in listed.resources}
    assert short == {"virtualservices": ["vs"], "destinationrules": ["dr"], "gateways": ["gw"]}


def test_discovery_answers_with_trailing_slashes(api: Api) -> None:
    expected = {
        "/api/": "APIVersions",
        "/apis/": "APIGroupList",
        "/apis/networking.istio.io/": "APIGroup",
        "/apis/networking.istio.io/v1alpha3/": "APIResourceList",
    }
    for path, kind in expected.items():
        assert get_json(api.url + path)["kind"] == kind
    assert get_json(api.url + "/version/")["gitVersion"].startswith("v1.")


def test_kubectl_apply_get_reapply_patch_delete(api: Api, kubectl) -> None:
    out = kubectl("apply", "-f", "-", stdin=CANARY.format(v1=90, v2=10)).stdout
    assert "virtualservice.networking.istio.io/canary created" in out
    table = kubectl("get", "vs").stdout.splitlines()
    assert table[0].split() == ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert table[1].split()[:3] == ["canary", '["canary-gateway"]', '["*"]']

    # Client-side apply of new weights: kubectl sends a JSON merge patch for a custom resource.
    out = kubectl("apply", "-f", "-", stdin=CANARY.format(v1=50, v2=50)).stdout
    assert "configured" in out
    got = json.loads(kubectl("get", "virtualservice", "canary", "-o", "json").stdout)
    assert [r["weight"] for r in got["spec"]["http"][0]["route"]] == [50, 50]
    assert got["metadata"]["generation"] == 2
    assert api.plane.pushes[-1]["virtualservices"][0]["spec"]["http"][0]["route"][0]["weight"] == 50

    kubectl("patch", "vs", "canary", "--type", "merge", "-p", '{"spec":{"hosts":["canary"]}}')
    kubectl(
        "patch",
        "vs",
        "canary",
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/http/0/route/0/weight","value":70}]',
    )
    got = json.loads(kubectl("get", "vs", "canary", "-o", "json").stdout)
    assert got["spec"]["hosts"] == ["canary"]
    assert got["spec"]["http"][0]["route"][0]["weight"] == 70

    refused = kubectl("patch", "vs", "canary", "-p", '{"spec":{"hosts":["x"]}}', check=False)
    assert refused.returncode != 0 and "strategic-merge-patch" in refused.stderr

    yaml_out = kubectl("get", "vs", "canary", "-o", "yaml").stdout
    assert "apiVersion: networking.istio.io/v1" in yaml_out and "resourceVersion:" in yaml_out

    assert "deleted" in kubectl("delete", "vs", "canary").stdout
    assert "No resources found" in kubectl("get", "vs").stderr


def test_kubectl_apply_of_an_invalid_object_names_the_field(api: Api, kubectl) -> None:
    bad = CANARY.format(v1=90, v2=-1)
    proc = kubectl("apply", "-f", "-", stdin=bad, check=False)
    assert proc.returncode != 0
    assert "spec.http[0].route[1].weight" in proc.stderr
    assert "No resources found" in kubectl("get", "vs").stderr


def test_kubectl_reads_services_deployments_pods_namespaces(api: Api, kubectl) -> None:
    api.store.set_readonly(resources.NAMESPACES, [{"metadata": {"name": "default"}}])
    api.store.set_readonly(
        resources.SERVICES,
        [
            {
                "metadata": {
                    "name": "httpbin",
                    "namespace": "default",
                    "labels": {"app": "httpbin"},
                },
                "spec": {
                    "selector": {"app": "httpbin"},
                    "ports": [{"name": "http", "port": 8000, "targetPort": 80}],
                },
            }
        ],
    )
    api.store.set_readonly(
        resources.DEPLOYMENTS,
        [
            {
                "metadata": {"name": "httpbin", "namespace": "default"},
                "spec": {"replicas": 1},
                "status": {"readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1},
            }
        ],
    )
    api.store.set_readonly(
        resources.PODS,
        [
            {
                "metadata": {
                    "name": "httpbin-0",
                    "namespace": "default",
                    "labels": {"app": "httpbin"},
                },
                "status": {
                    "phase": "Running",
                    "podIP": "127.0.0.1",
                    "containerStatuses": [{"name": "httpbin", "ready": True, "restartCount": 0}],
                },
            }
        ],
    )
    out = kubectl("get", "pods,svc,deploy").stdout
    assert "pod/httpbin-0" in out and "1/1" in out and "Running" in out
    assert "service/httpbin" in out and "8000/TCP" in out
    assert "deployment.apps/httpbin" in out
    assert "default" in kubectl("get", "ns").stdout
    assert "app=httpbin" in kubectl("get", "svc", "--show-labels").stdout
    refused = kubectl("delete", "svc", "httpbin", check=False)
    assert refused.returncode != 0 and "read-only" in refused.stderr


def test_kubectl_get_watch_prints_changes(api: Api, kubectl, tmp_path) -> None:
    import queue
    import subprocess
    import threading

    kubectl("apply", "-f", "-", stdin=CANARY.format(v1=90, v2=10))
    watcher = subprocess.Popen(
        [
            require_tool("kubectl"),
            "--kubeconfig",
            str(api.kubeconfig),
            "get",
            "vs",
            "-w",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert watcher.stdout is not None
    threading.Thread(
        target=lambda: [lines.put(line) for line in watcher.stdout or []], daemon=True
    ).start()
    try:
        assert lines.get(timeout=T).split()[:2] == ["NAME", "GATEWAYS"]
        assert lines.get(timeout=T).startswith("canary")
        kubectl("patch", "vs", "canary", "--type", "merge", "-p", '{"spec":{"hosts":["canary"]}}')
        # The watch event arrives as a one-row Table, so kubectl keeps the VirtualService columns.
        assert lines.get(timeout=T).split()[:3] == ["canary", '["canary-gateway"]', '["canary"]']
    finally:
        watcher.kill()
        watcher.wait(timeout=T)
