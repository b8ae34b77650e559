"""Benchmark: losing one replica of three under load, on the embedded mesh.

A real ``chaosmesh mesh up`` with ``experiments/manifests/pod-kill.yaml`` (three replicas,
every call holding a worker for 200 ms); 12 callers call it through the caller's sidecar (the
outbound listener), each again as soon as it is answered. Ten times, a pod is deleted through
the API (``delete_namespaced_pod``, as ``terminate_pods`` does) — five times under Istio's
default retry policy, five times with ``retryOn: reset,connect-failure,refused-stream,503`` —
and measured:

- how long after the DELETE returns the pod's endpoint leaves Envoy's cluster, and its
  replacement is Ready in the API and in Envoy's cluster (polled every 5 ms);
- how many calls failed per deleted pod, and what the access log says of them.

Targets: no failed call with retries on resets; the replacement in Envoy's endpoints within
2 s at p95 (a cluster needs the image's start plus the readiness probe's period).
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client, config

MANIFEST = Path(__file__).resolve().parent.parent / "experiments" / "manifests" / "pod-kill.yaml"
KILLS_PER_POLICY = 5
CALLERS = 12
CLI_TIMEOUT = 120.0
TARGET_JOIN_P95_S = 2.0
HOST = "catalog.default.svc.cluster.local"
RETRY_RESETS = {"attempts": 3, "retryOn": "reset,connect-failure,refused-stream,503"}


def _chaosmesh(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosmesh_ext.cli", *args, "--state-dir", str(workdir / "mesh")],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def _endpoints(admin: str) -> set[int]:
    with urllib.request.urlopen(f"{admin}/clusters?format=json", timeout=5) as answer:
        clusters = json.load(answer)["cluster_statuses"]
    return {
        int(host["address"]["socket_address"]["port_value"])
        for cluster in clusters
        if "|8000||catalog." in cluster["name"]
        for host in cluster.get("host_statuses") or []
    }


def _pods(core: client.CoreV1Api) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod("default", label_selector="app=catalog").items)


def _ready(pod: client.V1Pod) -> bool:
    return not pod.metadata.deletion_timestamp and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
    )


def _port(pod: client.V1Pod) -> int:
    return int(pod.metadata.annotations["chaosmesh.io/local-port"])


def _until(check: Any, timeout: float = 30.0) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError("gave up waiting")
        time.sleep(0.005)
    return time.monotonic() - started


def _callers(url: str, stop: threading.Event, codes: Counter[int]) -> list[threading.Thread]:
    lock = threading.Lock()
    split = urlsplit(url)

    def call() -> None:
        conn = http.client.HTTPConnection(split.hostname or "", split.port, timeout=30)
        while not stop.is_set():
            try:
                conn.request("GET", "/", headers={"Host": HOST})
                response = conn.getresponse()
                response.read()
                code = response.status
            except (OSError, http.client.HTTPException):
                code = 0
                conn.close()
            with lock:
                codes[code] += 1
        conn.close()

    threads = [threading.Thread(target=call, daemon=True) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    return threads


def _one_kill(core: client.CoreV1Api, admin: str, url: str) -> dict[str, Any]:
    before = [p for p in _pods(core) if _ready(p)]
    victim = before[0]
    codes: Counter[int] = Counter()
    stop = threading.Event()
    threads = _callers(url, stop, codes)
    time.sleep(1.0)
    core.delete_namespaced_pod(victim.metadata.name, "default", _request_timeout=10)
    left = _until(lambda: _port(victim) not in _endpoints(admin))
    known = {p.metadata.name for p in before}
    ready = _until(lambda: len([p for p in _pods(core) if _ready(p)]) == 3)
    (new,) = [p for p in _pods(core) if p.metadata.name not in known]
    joined = _until(lambda: _port(new) in _endpoints(admin))
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(30)
    return {
        "left_ms": left * 1000,
        "ready_ms": ready * 1000,
        "joined_ms": (ready + joined) * 1000,
        "calls": sum(codes.values()),
        "failed": sum(n for code, n in codes.items() if code != 200),
    }


def _flags(log: Path, offset: int) -> Counter[str]:
    with open(log, "rb") as handle:
        handle.seek(offset)
        records = [json.loads(line) for line in handle.read().splitlines() if line.strip()]
    return Counter(
        f"{r['response_code']} {r['response_flags']}"
        for r in records
        if r["response_code"] != 200 and "catalog" in str(r.get("upstream_cluster"))
    )


def _vs(retries: dict[str, Any] | None) -> dict[str, Any]:
    route: dict[str, Any] = {"name": "catalog", "route": [{"destination": {"host": "catalog"}}]}
    if retries:
        route["retries"] = retries
    return {"spec": {"hosts": ["catalog"], "http": [route]}}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-pod-loss-") as tmp:
        workdir = Path(tmp)
        up = _chaosmesh(workdir, "mesh", "up", "-f", str(MANIFEST))
        if up.returncode != 0:
            print(f"mesh up failed: {up.stderr}")
            return 1
        try:
            state = json.loads((workdir / "mesh" / "mesh.json").read_text())
            api = config.new_client_from_config(config_file=state["kubeconfig"])
            core = client.CoreV1Api(api)
            objects = client.CustomObjectsApi(api)
            url = next(s["url"] for s in state["services"] if s["name"] == "catalog")
            log = Path(state["access_log"]).with_name("access.jsonl")
            rows: dict[str, list[dict[str, Any]]] = {}
            flags: dict[str, Counter[str]] = {}
            for policy, retries in (("default retries", None), ("retry resets", RETRY_RESETS)):
                objects.patch_namespaced_custom_object(
                    "networking.istio.io", "v1", "default", "virtualservices", "catalog",
                    _vs(retries), _content_type="application/merge-patch+json",
                )  # fmt: skip
                offset = log.stat().st_size
                rows[policy] = [_one_kill(core, state["admin_url"], url) for _ in range(5)]
                time.sleep(0.5)
                flags[policy] = _flags(log, offset)
            api.close()
        finally:
            _chaosmesh(workdir, "mesh", "down")
    print(f"{'policy':<16} {'kills':>5} {'calls':>6} {'failed':>6} {'per kill':>9}  access log")
    for policy, results in rows.items():
        failed = [r["failed"] for r in results]
        shown = ", ".join(f"{n} x {what}" for what, n in flags[policy].items()) or "-"
        print(
            f"{policy:<16} {len(results):>5} {sum(r['calls'] for r in results):>6} "
            f"{sum(failed):>6} {statistics.mean(failed):>9.1f}  {shown}"
        )
    everything = [r for results in rows.values() for r in results]
    print(f"\n{'after the DELETE returns (ms)':<34} {'p50':>7} {'p95':>7} {'max':>7}")
    for key, label in (
        ("left_ms", "endpoint out of Envoy's cluster"),
        ("ready_ms", "replacement Ready in the API"),
        ("joined_ms", "replacement in Envoy's cluster"),
    ):
        values = sorted(r[key] for r in everything)
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        print(f"{label:<34} {statistics.median(values):>7.0f} {p95:>7.0f} {values[-1]:>7.0f}")
    joined = sorted(r["joined_ms"] for r in everything)
    p95_joined = joined[min(len(joined) - 1, round(0.95 * (len(joined) - 1)))] / 1000
    met = sum(r["failed"] for r in rows["retry resets"]) == 0 and p95_joined <= TARGET_JOIN_P95_S
    print(
        f"\ntargets: no failed call with retries on resets, replacement in Envoy p95 <= "
        f"{TARGET_JOIN_P95_S:g} s: {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
