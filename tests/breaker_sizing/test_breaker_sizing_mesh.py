"""The knee probe and the advised breaker through real Envoy, on the embedded mesh.

One replica of two workers at 20 ms a request: at most 100 requests per second. Steps are
half a second, so each test takes a few seconds. Assertions are about behaviour (a knee is
found below the first failing rate, and no higher than the replica can physically serve;
the breaker sheds a surge and restore removes it), never about how fast this machine is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from chaosmesh_ext.actions import apply_advised_breaker, restore
from chaosmesh_ext.load.knee import KEEP_UP_SHARE
from chaosmesh_ext.probes import breaker_stats, capacity_knee, fortio_load

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "chaosmesh_ext.cli"]
WORKERS, SERVICE_S = 2, 0.020
CAPACITY = WORKERS / SERVICE_S  # 100 requests per second
SLOW = f"""
apiVersion: v1
kind: Service
metadata: {{name: slow}}
spec:
  selector: {{app: slow}}
  ports: [{{name: http, port: 8000, targetPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: slow}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: slow}}}}
  template:
    metadata:
      labels: {{app: slow}}
      annotations: {{chaosmesh.io/capacity: "workers={WORKERS},service={SERVICE_S * 1000:g}ms"}}
    spec:
      containers: [{{name: slow, image: example.com/slow:1}}]
"""
URL = "http://slow:8000/"
# Short steps from well below the capacity; a search takes a few seconds.
QUICK = {
    "start_qps": 20,
    "step_qps": 20,
    "max_qps": 400,
    "step_duration": "0.5s",
    "refine": 0,
    "warmup": "0.3s",
    "max_duration": "40s",
}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("breaker-sizing-mesh")
    (tmp / "slow.yaml").write_text(SLOW)
    env = {**os.environ, "CHAOSMESH_LEDGER_DIR": str(tmp / "ledger")}
    state_dir = tmp / "mesh"
    up = [*CLI, "mesh", "up", "--state-dir", str(state_dir)]
    up += [
        "-f",
        str(ROOT / "experiments" / "manifests" / "fortio.yaml"),
        "-f",
        str(tmp / "slow.yaml"),
    ]
    try:
        proc = subprocess.run(up, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        state = json.loads((state_dir / "mesh.json").read_text())
        yield {"configuration": {"kubeconfig_path": state["kubeconfig"]}}
    finally:
        subprocess.run(
            [*CLI, "mesh", "down", "--state-dir", str(state_dir)], env=env, timeout=60, check=False
        )


def test_the_knee_is_found_below_what_the_replica_can_serve(mesh: dict[str, Any]) -> None:
    found = capacity_knee(URL, max_p99_ms=150, pods=1, configuration=mesh["configuration"], **QUICK)
    steps = found["steps"]
    rates = [s["offered_qps"] for s in steps]
    assert rates == sorted(rates) and rates[0] == 20
    assert [s["passed"] for s in steps] == [True] * (len(steps) - 1) + [False]
    knee = found["knee"]
    assert knee["qps"] == steps[-2]["offered_qps"] < found["first_failing_qps"]
    # Two workers of 20 ms complete at most 100 requests a second (plus the rounding of a
    # quarter-second window): a rate passes only if 95 % of it was served.
    assert knee["qps"] <= (CAPACITY + 2 / 0.25) / KEEP_UP_SHARE
    assert knee["concurrency"] == pytest.approx(knee["qps"] * knee["mean_ms"] / 1000, rel=1e-3)
    assert knee["qps_per_pod"] == knee["qps"] and found["knee_qps"] == knee["qps"]
    assert found["warmup"]["offered_qps"] == 20


def test_no_knee_or_no_service_is_an_error_naming_the_argument(mesh: dict[str, Any]) -> None:
    configuration = mesh["configuration"]
    with pytest.raises(ActivityFailed) as nowhere:
        capacity_knee("http://nowhere:8000/", max_p99_ms=150, configuration=configuration, **QUICK)
    assert "url http://nowhere:8000/" in str(nowhere.value)
    # One long step at 40 % of the capacity under a loose bound: its served rate is counted
    # over the step's second half, and a half-second step counts 10 calls there, so one
    # completion pushed past the end by a busy machine would read as falling behind.
    no_knee_plan = {**QUICK, "start_qps": 40, "max_qps": 40, "step_duration": "4s"}
    with pytest.raises(ActivityFailed) as no_knee:
        capacity_knee(URL, max_p99_ms=2000, configuration=configuration, **no_knee_plan)
    assert "max_qps: no knee within 40 qps" in str(no_knee.value)
    with pytest.raises(ActivityFailed) as too_strict:
        capacity_knee(URL, max_p99_ms=5, configuration=configuration, **QUICK)
    assert "max_p99_ms: 5 ms is below the service's own latency" in str(too_strict.value)


def _destination_rule(configuration: dict[str, Any]) -> dict[str, Any] | None:
    api = config.new_client_from_config(config_file=configuration["kubeconfig_path"])
    try:
        rule: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "networking.istio.io", "v1", "default", "destinationrules", "slow", _request_timeout=10
        )
        return rule
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    finally:
        api.close()


def test_the_advised_breaker_is_measured_applied_sheds_a_surge_and_is_restored(
    mesh: dict[str, Any],
) -> None:
    configuration = {**mesh["configuration"], "chaosmesh_run_id": "advised-breaker"}
    assert _destination_rule(configuration) is None
    try:
        result = apply_advised_breaker(
            "slow",
            host="slow",
            pods=1,
            p99_slo="150ms",
            measure={"url": URL, "max_p99_ms": 150, **QUICK},
            configuration=configuration,
        )
        knee = result["knee_search"]["knee"]
        policy = _destination_rule(configuration)["spec"]["trafficPolicy"]  # type: ignore[index]
        assert policy == result["advice"]["trafficPolicy"]
        # One pod: nothing to lose, so no outlier detection; the limit is requests in flight.
        assert "outlierDetection" not in policy
        assert policy["connectionPool"]["http"]["http2MaxRequests"] >= knee["concurrency"]
        before = breaker_stats("slow", port=8000, configuration=configuration)["shed"]
        surge = fortio_load(
            URL, qps=2 * knee["qps"], t="1s", c=4, open_loop=True, configuration=configuration
        )
        assert surge["codes"].get(503, 0) > 0 and surge["codes"].get(200, 0) > 0
        shed = breaker_stats("slow", port=8000, configuration=configuration)["shed"] - before
        assert shed == surge["codes"][503]
    finally:
        restore(configuration=configuration)
    assert _destination_rule(configuration) is None
