"""Envoy killed (SIGKILL) while load runs through the gateway: the supervisor restarts it with
the configuration the API last accepted, the requests that failed are only those that found no
Envoy, and ``mesh status`` reports the restart and how long the mesh was down."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

import pytest

from chaosmesh_ext.load.engine import run as run_load
from chaosmesh_ext.load.options import LoadOptions

from .conftest import Mesh, chaosmesh, request

pytestmark = pytest.mark.envoy

VS = "/apis/networking.istio.io/v1/namespaces/istio-test/virtualservices/canary"
FQDN = "canary.istio-test.svc.cluster.local"


def _only(subset: str) -> bytes:
    other = "v1" if subset == "v2" else "v2"
    route = [
        {"destination": {"host": FQDN, "subset": subset}, "weight": 100},
        {"destination": {"host": FQDN, "subset": other}, "weight": 0},
    ]
    return json.dumps({"spec": {"http": [{"route": route}]}}).encode()


def _patch(mesh: Mesh, body: bytes) -> None:
    status, answer = mesh.api(
        "PATCH", VS, body, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert status == 200, answer


def test_envoy_killed_during_load_comes_back_with_the_latest_config_and_reports_the_outage(
    mesh_up,
) -> None:
    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test")
    gateway = mesh.gateway()["url"]
    _patch(mesh, _only("v2"))  # the latest configuration: all traffic to v2 (was 90/10)
    before = mesh.status()["envoy"]
    assert before["restarts"] == 0 and before["last_outage_s"] is None

    result: dict[str, Any] = {}

    def load() -> None:
        options = LoadOptions(
            url=gateway, qps=200, duration=4.0, open_loop=True, timeout=5.0,
            allow_initial_errors=True,
        )  # fmt: skip
        result.update(run_load(options))

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(1.5)
    os.kill(before["pid"], signal.SIGKILL)
    loader.join(timeout=60)
    assert not loader.is_alive()

    after = mesh.status()["envoy"]
    assert after["running"] and after["pid"] != before["pid"]
    assert after["restarts"] == 1
    assert after["last_outage_s"] > 0 and after["down_for_s"] is None
    text = chaosmesh("mesh", "status", cwd=mesh.workdir).stdout
    assert "restarts 1 (last outage " in text

    # The only failures are requests that found no Envoy (no answer at all): never an answer
    # from a half-configured data plane.
    codes = {int(code): n for code, n in result["RetCodes"].items()}
    assert set(codes) <= {200, -1}, codes
    assert codes.get(200, 0) > 0
    # After the restart everything is served with the latest configuration ...
    answers = [request(gateway)[2].split()[0] for _ in range(30)]
    assert set(answers) == {b"appv2"}
    # ... and the API's next change reaches the new Envoy.
    _patch(mesh, _only("v1"))
    assert request(gateway)[2].split()[0] == b"appv1"
