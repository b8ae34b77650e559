"""Names the embedded mesh's sidecar would take by port alone must resolve as in a pod.

The sidecar hands every call on a mesh port to Envoy whatever the host, so the engine checks
the name first, against the Services in ``mesh.json`` (beside the sidecar's outbound file)
and the machine's DNS — ``fortio load http://nosuch:8000/`` fails in a pod before any
request, and must here too, instead of collecting Envoy's 404s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaosmesh_ext._sidecar import Sidecar
from chaosmesh_ext.load.engine import LoadTargetError, run
from chaosmesh_ext.load.options import LoadOptions
from tests.support.load_target import Target


def _sidecar(tmp_path: Path, listener: Target, namespace: str = "default") -> Sidecar:
    outbound = tmp_path / "outbound.json"
    outbound.write_text(json.dumps({"8000": f"127.0.0.1:{listener.port}"}))
    services = [
        {"name": "httpbin", "namespace": "default", "port": 8000},
        {"name": "reviews", "namespace": "shop", "port": 8000},
    ]
    (tmp_path / "mesh.json").write_text(json.dumps({"services": services}))
    return Sidecar(workload="fortio", namespace=namespace, outbound_file=str(outbound))


@pytest.mark.parametrize(
    "host",
    ["httpbin", "httpbin.default", "httpbin.default.svc", "httpbin.default.svc.cluster.local",
     "HTTPBIN.default.svc.cluster.local.", "reviews.shop"],
)  # fmt: skip
def test_service_names_a_pod_can_use_are_loaded(tmp_path: Path, target: Target, host: str) -> None:
    res = run(
        LoadOptions(url=f"http://{host}:8000/get", exactly=3, sidecar=_sidecar(tmp_path, target))
    )
    assert res["RetCodes"] == {"200": 3} and target.count == 3


@pytest.mark.parametrize("host", ["nosuch", "reviews", "httpbin.shop", "nosuch.invalid"])
def test_unknown_names_fail_before_any_request(tmp_path: Path, target: Target, host: str) -> None:
    # "reviews" alone names a Service of another namespace: a pod in "default" cannot use it.
    with pytest.raises(LoadTargetError, match=rf"cannot reach http://{host}:8000/: no such host"):
        run(LoadOptions(url=f"http://{host}:8000/", exactly=3, sidecar=_sidecar(tmp_path, target)))
    assert target.count == 0


def test_the_short_name_follows_the_pods_namespace(tmp_path: Path, target: Target) -> None:
    sidecar = _sidecar(tmp_path, target, namespace="shop")
    assert run(LoadOptions(url="http://reviews:8000/", exactly=2, sidecar=sidecar))["RetCodes"]
    with pytest.raises(LoadTargetError, match="as seen from namespace shop"):
        run(LoadOptions(url="http://httpbin:8000/", exactly=2, sidecar=sidecar))


def test_services_added_later_are_seen(tmp_path: Path, target: Target) -> None:
    sidecar = _sidecar(tmp_path, target)
    with pytest.raises(LoadTargetError):
        run(LoadOptions(url="http://ratings:8000/", exactly=1, sidecar=sidecar))
    mesh = tmp_path / "mesh.json"
    doc = json.loads(mesh.read_text())
    doc["services"].append({"name": "ratings", "namespace": "default", "port": 8000})
    mesh.write_text(json.dumps(doc) + "\n")  # another size: a new mtime even on coarse clocks
    assert run(LoadOptions(url="http://ratings:8000/", exactly=1, sidecar=sidecar))["RetCodes"]
