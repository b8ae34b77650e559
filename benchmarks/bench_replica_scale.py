"""Benchmark: how ``mesh up`` time, memory and change latency grow with the replica count.

For 10, 100 and 300 echo replicas (Services of 3 replicas each, the last one takes the
remainder: 300 replicas are 100 Services), each Service with its VirtualService and
DestinationRule, a real ``chaosmesh mesh up``:

- up: seconds from starting ``mesh up`` until it returns, and until every Service has
  answered one request through Envoy (up and serving);
- memory: RSS of every process of the mesh (``mesh.json``'s pids; RSS counts shared pages
  in each process, as the target does) and PSS (shared pages split: what the machine pays),
  in total and per role (daemon, Envoy, workloads);
- change: a merge patch of one VirtualService (a new response header value) through the
  API, until the next request through Envoy carries it (p50/p95 over 40 changes).

Targets (300 replicas): up and serving in under 10 s, whole mesh under 600 MB RSS, marginal
RSS per replica under 2 MB (from 10 to 300 replicas). ``python -m benchmarks replica_scale``;
``REPLICA_SCALE_SIZES=10,100`` picks other sizes, ``REPLICA_SCALE_KIND=fortio`` (or
``httpbin``) another built-in workload kind for every replica (the pod template's
``chaosmesh.io/workload`` annotation); the 10 s and 600 MB targets are judged for echo only.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SIZES = (10, 100, 300)
REPLICAS_PER_SERVICE = 3
CHANGES = 40
CLI_TIMEOUT = 600.0
UP_TARGET_S = 10.0
RSS_TARGET_MB = 600.0
MARGINAL_TARGET_MB = 2.0
# A path each kind answers 200 on (fortio's REST API has nothing at "/").
PROBE_PATHS = {"echo": "/", "httpbin": "/get", "fortio": "/fortio/"}


def replica_counts(total: int) -> list[int]:
    """Replicas per Service: threes, the remainder in the last one."""
    counts = [REPLICAS_PER_SERVICE] * (total // REPLICAS_PER_SERVICE)
    if total % REPLICAS_PER_SERVICE:
        counts.append(total % REPLICAS_PER_SERVICE)
    return counts


def manifests(total: int, kind: str = "echo") -> str:
    docs = []
    template_meta: dict[str, Any] = {}
    if kind != "echo":
        template_meta["annotations"] = {"chaosmesh.io/workload": kind}
    for index, replicas in enumerate(replica_counts(total)):
        name = f"svc-{index}"
        fqdn = f"{name}.default.svc.cluster.local"
        docs += [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {
                    "selector": {"app": name},
                    "ports": [{"name": "http", "port": 8000, "targetPort": 8080}],
                },
            },
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": f"{name}-v1"},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": name, "version": "v1"}},
                    "template": {
                        "metadata": {"labels": {"app": name, "version": "v1"}, **template_meta},
                        "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]},
                    },
                },
            },
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": name},
                "spec": {"host": fqdn, "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
            },
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": name},
                "spec": {"hosts": [fqdn], "http": [_route(fqdn, "0")]},
            },
        ]
    return "\n---\n".join(json.dumps(doc) for doc in docs)


def _route(fqdn: str, revision: str) -> dict[str, Any]:
    return {
        "route": [{"destination": {"host": fqdn, "subset": "v1"}}],
        "headers": {"response": {"set": {"x-revision": revision}}},
    }


def _cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosmesh_ext.cli", "mesh", *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def _memory_kb(pid: int, field: str, source: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _roles(mesh: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Role -> (RSS MB, PSS MB), each process counted once."""
    seen: set[int] = set()
    out: dict[str, tuple[float, float]] = {}
    for record in mesh["pids"]:
        pid = int(record["pid"])
        if pid in seen:
            continue
        seen.add(pid)
        role = str(record["role"])
        role = "workloads" if role.startswith(("workload", "replica host")) else role
        rss = _memory_kb(pid, "VmRSS:", "status") / 1024
        pss = _memory_kb(pid, "Pss:", "smaps_rollup") / 1024
        before = out.get(role, (0.0, 0.0))
        out[role] = (before[0] + rss, before[1] + pss)
    return out


def _connection(url: str) -> http.client.HTTPConnection:
    split = urlsplit(url)
    return http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=10)


def _serving(mesh: dict[str, Any], deadline: float, path: str = "/") -> int:
    """How many Services answered 200 through Envoy (each retried until ``deadline``)."""
    answered = 0
    for service in mesh["services"]:
        while True:
            conn = _connection(service["url"])
            try:
                conn.request("GET", path, headers={"Host": service["host_header"]})
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    answered += 1
                    break
            except OSError:
                pass
            finally:
                conn.close()
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    return answered


def _api(mesh: dict[str, Any]) -> tuple[http.client.HTTPConnection, dict[str, str]]:
    from chaosmesh_ext.mesh.api.tls import client_context
    from chaosmesh_ext.mesh.kubeconfig import credentials

    token, ca_pem = credentials(Path(mesh["kubeconfig"]))
    split = urlsplit(mesh["api_url"])
    if split.scheme != "https" or ca_pem is None:
        return _connection(mesh["api_url"]), {}
    conn = http.client.HTTPSConnection(
        split.hostname or "127.0.0.1", split.port, timeout=30, context=client_context(ca_pem)
    )
    return conn, ({"Authorization": f"Bearer {token}"} if token else {})


def _changes(mesh: dict[str, Any], changes: int, probe: str = "/") -> list[float]:
    """Seconds from each PATCH to the next request through Envoy carrying the change."""
    api, auth = _api(mesh)
    service = mesh["services"][0]
    fqdn = service["host_header"]
    path = "/apis/networking.istio.io/v1/namespaces/default/virtualservices/svc-0"
    headers = {"Content-Type": "application/merge-patch+json", **auth}
    data = _connection(service["url"])
    samples = []
    try:
        for i in range(1, changes + 1):
            body = json.dumps({"spec": {"http": [_route(fqdn, str(i))]}}).encode()
            started = time.perf_counter()
            api.request("PATCH", path, body=body, headers=headers)
            answer = api.getresponse()
            text = answer.read()
            if answer.status != 200:
                raise AssertionError(f"PATCH answered {answer.status}: {text[:300]!r}")
            data.request("GET", probe, headers={"Host": fqdn})
            response = data.getresponse()
            response.read()
            samples.append(time.perf_counter() - started)
            if response.getheader("x-revision") != str(i):
                raise AssertionError(f"change {i}: x-revision {response.getheader('x-revision')}")
    finally:
        api.close()
        data.close()
    return samples


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(total: int, changes: int = CHANGES, kind: str = "echo") -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="chaosmesh-bench-scale-") as tmp:
        workdir = Path(tmp)
        (workdir / "mesh.yaml").write_text(manifests(total, kind))
        state = workdir / ".chaosmesh"
        started = time.monotonic()
        up = _cli(state, "up", "-f", str(workdir / "mesh.yaml"))
        up_s = time.monotonic() - started
        try:
            if up.returncode != 0:
                raise RuntimeError(f"mesh up: {up.stderr[-2000:]}")
            mesh = json.loads((state / "mesh.json").read_text())
            answered = _serving(mesh, time.monotonic() + 60, PROBE_PATHS[kind])
            serving_s = time.monotonic() - started
            roles = _roles(mesh)
            enforced = [x * 1000 for x in _changes(mesh, changes, PROBE_PATHS[kind])]
        finally:
            _cli(state, "down")
    return {
        "replicas": total,
        "services": len(replica_counts(total)),
        "answered": answered,
        "up_s": up_s,
        "serving_s": serving_s,
        "rss_mb": sum(rss for rss, _ in roles.values()),
        "pss_mb": sum(pss for _, pss in roles.values()),
        "workloads_rss_mb": roles.get("workloads", (0.0, 0.0))[0],
        "workloads_pss_mb": roles.get("workloads", (0.0, 0.0))[1],
        "envoy_rss_mb": roles.get("envoy", (0.0, 0.0))[0],
        "daemon_rss_mb": roles.get("daemon", (0.0, 0.0))[0],
        "change_p50_ms": statistics.median(enforced),
        "change_p95_ms": _p95(enforced),
    }


def main() -> int:
    sizes = tuple(
        int(x) for x in os.environ.get("REPLICA_SCALE_SIZES", ",".join(map(str, SIZES))).split(",")
    )
    kind = os.environ.get("REPLICA_SCALE_KIND", "echo")
    if kind not in PROBE_PATHS:
        raise SystemExit(f"REPLICA_SCALE_KIND: one of {', '.join(PROBE_PATHS)}, not {kind!r}")
    rows = []
    print(f"{kind} replicas", flush=True)
    print(
        f"{'replicas':>8} {'svcs':>5} {'up s':>6} {'serving s':>9} {'RSS MB':>7} {'PSS MB':>7} "
        f"{'wl RSS':>7} {'wl PSS':>7} {'envoy':>6} {'daemon':>6} {'chg p50':>8} {'chg p95':>8}",
        flush=True,
    )
    for total in sizes:
        row = measure(total, kind=kind)
        rows.append(row)
        print(
            f"{total:>8} {row['services']:>5.0f} {row['up_s']:>6.2f} {row['serving_s']:>9.2f} "
            f"{row['rss_mb']:>7.0f} {row['pss_mb']:>7.0f} {row['workloads_rss_mb']:>7.1f} "
            f"{row['workloads_pss_mb']:>7.1f} {row['envoy_rss_mb']:>6.0f} "
            f"{row['daemon_rss_mb']:>6.0f} "
            f"{row['change_p50_ms']:>8.1f} {row['change_p95_ms']:>8.1f}"
            + ("" if row["answered"] == row["services"] else f"  ONLY {row['answered']} served"),
            flush=True,
        )
    ok = all(r["answered"] == r["services"] for r in rows)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        added = last["replicas"] - first["replicas"]
        marginal = (last["rss_mb"] - first["rss_mb"]) / added
        workloads = (last["workloads_rss_mb"] - first["workloads_rss_mb"]) / added
        workloads_pss = (last["workloads_pss_mb"] - first["workloads_pss_mb"]) / added
        print(
            f"marginal RSS per replica {marginal:.2f} MB (target < {MARGINAL_TARGET_MB:g} MB); "
            f"workloads alone: RSS {workloads:.2f} MB, PSS {workloads_pss:.2f} MB"
        )
        ok &= marginal < MARGINAL_TARGET_MB
    big = rows[-1]
    if big["replicas"] >= 300 and kind == "echo":
        print(
            f"{big['replicas']:.0f} replicas: serving after {big['serving_s']:.1f} s "
            f"(target < {UP_TARGET_S:g} s), RSS {big['rss_mb']:.0f} MB "
            f"(target < {RSS_TARGET_MB:g} MB)"
        )
        ok &= big["serving_s"] < UP_TARGET_S and big["rss_mb"] < RSS_TARGET_MB
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
