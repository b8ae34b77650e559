"""Benchmark: the embedded mesh as a user meets it — ``mesh up`` time, change latency, memory.

1. ``mesh up`` with the seed's canary manifests to serving (the command returns only when
   every workload accepts, Envoy serves and the API answers; a request through the gateway
   confirms it). Target: under 2 s on a 2-core machine.
2. A change through the Kubernetes API (merge patch of the canary weights with the official
   client: HTTP, store, Istio validation, translation, Envoy push) to enforced on the next
   request over an open keep-alive connection. Target: p95 under 20 ms (istiod's push
   debounce alone is 100 ms).
3. RSS of every process of a mesh running all four seed scenarios at once (each in its own
   namespace): daemon, Envoy, workloads. Target: under 250 MB. Measured right after
   ``mesh up`` and again after a few requests through every Service (connection threads,
   buffers and lazily imported modules count too); the target applies to the larger. PSS
   (shared pages split among the processes sharing them) is printed beside it.

``python -m benchmarks.bench_mesh [RUNS]``; returns 0 when every target is met.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SEED = Path(__file__).resolve().parent.parent / "tests" / "mesh" / "daemon" / "seed"
UP_TARGET_S = 2.0
CHANGE_TARGET_P95_MS = 20.0
RSS_TARGET_MB = 250.0
NGINX_AS_PROXY = {
    "chaosmesh.io/workload": "proxy",
    "chaosmesh.io/upstream": "http://tomcat-svc:8080",
}


def _cli(workdir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAOSMESH_STATE_DIR": str(workdir / ".chaosmesh")}
    proc = subprocess.run(
        [sys.executable, "-m", "chaosmesh_ext.cli", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"chaosmesh {' '.join(args)}: {proc.stderr}")
    return proc


def _state(workdir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((workdir / ".chaosmesh" / "mesh.json").read_text())
    return data


def _get(url: str) -> tuple[int, bytes]:
    split = urlsplit(url)
    conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=10)
    try:
        conn.request("GET", split.path or "/")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def bench_up(runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-mesh-") as tmp:
            workdir = Path(tmp)
            shutil.copytree(SEED / "canary", workdir / "canary")
            start = time.perf_counter()
            _cli(workdir, "mesh", "up", "-f", "canary", "--namespace", "istio-test")
            status, _ = _get(_state(workdir)["gateways"][0]["url"])
            samples.append(time.perf_counter() - start)
            _cli(workdir, "mesh", "down")
            if status != 200:
                raise RuntimeError(f"gateway answered {status} right after mesh up")
    return samples


def bench_change(changes: int) -> list[float]:
    from kubernetes import client
    from kubernetes import config as kube_config

    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as tmp:
        workdir = Path(tmp)
        shutil.copytree(SEED / "canary", workdir / "canary")
        _cli(workdir, "mesh", "up", "-f", "canary", "--namespace", "istio-test")
        try:
            state = _state(workdir)
            api = client.CustomObjectsApi(
                kube_config.new_client_from_config(config_file=state["kubeconfig"])
            )
            gateway = urlsplit(state["gateways"][0]["url"])
            conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
            samples = []
            for i in range(changes):
                winner = "appv2" if i % 2 == 0 else "appv1"
                weights = (0, 100) if winner == "appv2" else (100, 0)
                patch = {
                    "spec": {
                        "http": [
                            {
                                "route": [
                                    {
                                        "destination": {
                                            "host": "canary.istio-test.svc.cluster.local",
                                            "subset": "v1",
                                        },
                                        "weight": weights[0],
                                    },
                                    {
                                        "destination": {
                                            "host": "canary.istio-test.svc.cluster.local",
                                            "subset": "v2",
                                        },
                                        "weight": weights[1],
                                    },
                                ]
                            }
                        ]
                    }
                }
                start = time.perf_counter()
                api.patch_namespaced_custom_object(
                    "networking.istio.io",
                    "v1",
                    "istio-test",
                    "virtualservices",
                    "canary",
                    patch,
                    _content_type="application/merge-patch+json",
                    _request_timeout=10,
                )
                conn.request("GET", "/")
                body = conn.getresponse().read().decode()
                samples.append((time.perf_counter() - start) * 1000)
                if not body.startswith(winner):
                    raise RuntimeError(
                        f"change {i}: next request reached {body.split()[0]}, not {winner}"
                    )
            conn.close()
            return samples
        finally:
            _cli(workdir, "mesh", "down")


def _memory_kb(pid: int, field: str, source: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_kb(pid: int) -> int:
    return _memory_kb(pid, "VmRSS:", "status")


def _pss_kb(pid: int) -> int:
    # Proportional set size: shared pages (libpython, the interpreter's mapped files) are
    # split between the processes sharing them, so the sum is what the machine really pays.
    return _memory_kb(pid, "Pss:", "smaps_rollup")


def bench_rss() -> tuple[list[tuple[str, float, float]], list[tuple[str, float, float]]]:
    """Per-process memory right after ``mesh up`` and after some traffic."""
    import yaml

    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as tmp:
        workdir = Path(tmp)
        deployments = list(yaml.safe_load_all((SEED / "timeout" / "deployments.yaml").read_text()))
        for doc in deployments:
            if doc["metadata"]["name"] == "nginx":
                doc["spec"]["template"]["metadata"]["annotations"] = dict(NGINX_AS_PROXY)
        retry = (SEED / "retry" / "virtualservices-as-written.yaml").read_text()
        retry = retry.replace("- nginx-vs", "- nginx-svc").replace("- tomcat-vs", "- tomcat-svc")

        def scenario(name: str, namespace: str, files: dict[str, str]) -> None:
            folder = workdir / name
            folder.mkdir()
            for file_name, text in files.items():
                docs = [d for d in yaml.safe_load_all(text) if d]
                for doc in docs:
                    doc.setdefault("metadata", {})["namespace"] = namespace
                (folder / file_name).write_text(yaml.safe_dump_all(docs))

        scenario(
            "canary", "istio-test", {p.name: p.read_text() for p in (SEED / "canary").iterdir()}
        )
        scenario(
            "breaker",
            "breaker",
            {p.name: p.read_text() for p in (SEED / "circuit-breaker").iterdir()},
        )
        services = (SEED / "timeout" / "services.yaml").read_text()
        scenario(
            "timeout",
            "timeout",
            {
                "d.yaml": yaml.safe_dump_all(deployments),
                "s.yaml": services,
                "vs.yaml": (SEED / "timeout" / "virtualservices.yaml").read_text(),
            },
        )
        scenario(
            "retry",
            "retry",
            {"d.yaml": yaml.safe_dump_all(deployments), "s.yaml": services, "vs.yaml": retry},
        )
        _cli(workdir, "mesh", "up", "-f", "canary", "-f", "breaker", "-f", "timeout", "-f", "retry")
        try:
            state = _state(workdir)
            idle = _memory(state)
            _traffic(state)
            return idle, _memory(state)
        finally:
            _cli(workdir, "mesh", "down")


def _memory(state: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(role, RSS MB, PSS MB) of every process the mesh started."""
    return [
        (
            str(record["role"]),
            _rss_kb(int(record["pid"])) / 1024,
            _pss_kb(int(record["pid"])) / 1024,
        )
        for record in state["pids"]
    ]


def _traffic(state: dict[str, Any], requests: int = 3) -> None:
    """A few requests through every Service, in parallel (the timeout scenario takes 2 s)."""
    import threading

    def send(url: str, host: str | None) -> None:
        split = urlsplit(url)
        for _ in range(requests):
            conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=15)
            try:
                conn.request("GET", "/get", headers={"Host": host} if host else {})
                conn.getresponse().read()
            except OSError:
                pass  # an injected fault or timeout is an answer too; only the memory matters
            finally:
                conn.close()

    threads = [
        threading.Thread(target=send, args=(s["url"], s.get("host_header")), daemon=True)
        for s in [*state["services"], *state["gateways"]]
        if s.get("url")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


def _report(title: str, rows: list[tuple[str, float, float]]) -> float:
    print(f"{title}:")
    for role, rss, pss in sorted(rows):
        print(f"  {role:<36} RSS {rss:6.1f} MB  PSS {pss:6.1f} MB")
    total_rss = sum(rss for _, rss, _ in rows)
    by_role: dict[str, float] = {}
    for role, rss, _ in rows:
        by_role[role.split(" ")[0]] = by_role.get(role.split(" ")[0], 0.0) + rss
    roles = ", ".join(f"{role} {mb:.0f} MB" for role, mb in sorted(by_role.items()))
    print(
        f"  total RSS {total_rss:.0f} MB ({roles}); PSS {sum(p for _, _, p in rows):.0f} MB "
        f"(target RSS < {RSS_TARGET_MB:.0f} MB)"
    )
    return total_rss


def main(argv: list[str] | None = None) -> int:
    # `python -m benchmarks` calls main() with no argument: its own argv is not ours.
    runs = int(argv[0]) if argv else 5
    ok = True
    up = bench_up(runs)
    median_up = statistics.median(up)
    ok &= max(up) < UP_TARGET_S
    print(
        f"mesh up (seed canary) to serving: median {median_up:.2f} s, max {max(up):.2f} s "
        f"over {runs} runs (target < {UP_TARGET_S:.0f} s)"
    )
    change = sorted(bench_change(100))
    p50 = statistics.median(change)
    p95 = change[int(len(change) * 0.95) - 1]
    ok &= p95 < CHANGE_TARGET_P95_MS
    print(
        f"API merge patch -> enforced on next request: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
        f"(target p95 < {CHANGE_TARGET_P95_MS:.0f} ms; istiod debounce alone: 100 ms)"
    )
    idle, loaded = bench_rss()
    total = max(
        _report("memory, all four seed scenarios in one mesh, right after mesh up", idle),
        _report("same mesh after 3 requests through every Service and gateway", loaded),
    )
    ok &= total < RSS_TARGET_MB
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
