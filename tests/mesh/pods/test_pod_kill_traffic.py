"""Calls in flight on a replica that is deleted fail as Envoy reports them on a cluster: 503
with the UC flag (the upstream connection was reset). Istio's default retry policy does not
retry resets, so callers see those 503s; a VirtualService retrying on ``reset`` hides them.

Calls go through the caller's sidecar (the mesh's outbound listener for ``slow:8000``, as
``mesh.json`` lists it), from a few threads that each call again as soon as an answer comes,
while chaostoolkit-kubernetes deletes one of the three replicas."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest
from chaosk8s.pod.actions import terminate_pods
from kubernetes import client

from tests.support.embedded_mesh import RunningMesh

from .conftest import settled

pytestmark = [pytest.mark.envoy, pytest.mark.slow]
T = 30
CALLERS = 12
HOST = "slow.default.svc.cluster.local"
RETRY_RESETS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "slow"},
    "spec": {
        "hosts": ["slow"],
        "http": [
            {
                "route": [{"destination": {"host": "slow"}}],
                "retries": {"attempts": 3, "retryOn": "reset,connect-failure,refused-stream,503"},
            }
        ],
    },
}


def _call_until(url: str, stop: threading.Event, codes: Counter[int], lock: threading.Lock) -> None:
    split = urlsplit(url)
    conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=T)
    try:
        while not stop.is_set():
            try:
                conn.request("GET", "/", headers={"Host": HOST})
                response = conn.getresponse()
                response.read()
                code = response.status
            except (OSError, http.client.HTTPException):
                code = 0  # the sidecar itself failed us: never expected
                conn.close()
            with lock:
                codes[code] += 1
    finally:
        conn.close()


def _kill_one_under_load(mesh: RunningMesh) -> tuple[Counter[int], list[dict[str, Any]]]:
    """Calls for ~2.5 s, one replica deleted after 1 s; the codes callers got, and the access
    log's records of the calls made meanwhile."""
    log = mesh.state_dir / "access.jsonl"
    offset = log.stat().st_size
    url = next(s["url"] for s in mesh.state["services"] if s["name"] == "slow")
    codes: Counter[int] = Counter()
    lock, stop = threading.Lock(), threading.Event()
    callers = [
        threading.Thread(target=_call_until, args=(url, stop, codes, lock), daemon=True)
        for _ in range(CALLERS)
    ]
    for caller in callers:
        caller.start()
    time.sleep(1)
    assert len(terminate_pods(label_selector="app=slow")) == 1
    time.sleep(1.5)
    stop.set()
    for caller in callers:
        caller.join(T)
    time.sleep(0.5)  # Envoy writes its access log asynchronously
    with open(log, "rb") as handle:
        handle.seek(offset)
        records = [json.loads(line) for line in handle.read().splitlines() if line.strip()]
    return codes, [r for r in records if "slow.default" in str(r.get("upstream_cluster"))]


def test_calls_cut_off_by_a_deleted_replica_fail_unless_retried_on_reset(
    k8s: RunningMesh, core: client.CoreV1Api
) -> None:
    settled(core, "app=slow", 3)
    codes, records = _kill_one_under_load(k8s)
    failed = [r for r in records if r["response_code"] == 503]
    assert codes[503] >= 1 and codes[503] == len(failed)  # what callers saw, as Envoy logged
    assert {r["response_flags"] for r in failed} == {"UC"}
    assert {r["attempts"] for r in failed} == {1}  # Istio's default: resets are not retried
    assert set(codes) == {200, 503}

    objects = client.CustomObjectsApi(core.api_client)
    objects.create_namespaced_custom_object(
        "networking.istio.io", "v1", "default", "virtualservices", RETRY_RESETS, _request_timeout=T
    )
    try:
        settled(core, "app=slow", 3)
        codes, records = _kill_one_under_load(k8s)
        assert set(codes) == {200}, codes  # every cut-off call was tried again elsewhere
        retried = [r for r in records if r["attempts"] > 1]
        assert retried and all(r["response_code"] == 200 for r in retried)
    finally:
        objects.delete_namespaced_custom_object(
            "networking.istio.io", "v1", "default", "virtualservices", "slow", _request_timeout=T
        )
