"""Benchmark: the embedded mesh with a large configuration loaded.

The configuration (``benchmarks/large_mesh.py``): the seed's canary among 200 Services (two
versions each, 10 of them with running replicas), 1,000 VirtualServices (one mesh
VirtualService per Service, the rest on three ingress Gateways), 200 DestinationRules. On one
real ``chaosmesh mesh up`` of it:

1. ``mesh up`` to serving (the command returns, then a request through the canary's Gateway
   answers 200);
2. a merge patch of the canary VirtualService (weights 100/0 <-> 0/100) to enforced on the
   next request through its Gateway, over open keep-alive connections;
3. the same for a mesh VirtualService (``svc-000``'s split), through its sidecar listener;
4. a merge patch of a DestinationRule (a connection-pool limit) to the API's answer (the API
   answers once Envoy serves the change);
5. RSS of the daemon and of Envoy afterwards.

The canary patch is measured again on a mesh of the seed's canary alone, for reference.
Target: p95 under 50 ms for both VirtualService patches with the large configuration.

``python -m benchmarks.bench_mesh_scale [CHANGES]``; returns 0 when the targets are met.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import large_mesh
from benchmarks.bench_mesh_change import CANARY, _connect, _connect_api, _percentile

CHANGES = 50
TARGET_P95_MS = 50.0
CLI_TIMEOUT = 300.0
GROUP = "/apis/networking.istio.io/v1/namespaces"
MERGE = "application/merge-patch+json"


class Mesh:
    """One ``chaosmesh mesh up`` in a temporary state directory, stopped on exit."""

    def __init__(self, manifest: Path):
        self.manifest = manifest
        self.tmp = tempfile.TemporaryDirectory(prefix="chaosmesh-bench-scale-")
        self.state = Path(self.tmp.name) / "state"
        self.cli = [sys.executable, "-m", "chaosmesh_ext.cli", "mesh"]
        self.up_seconds = 0.0
        self.info: dict[str, Any] = {}

    def __enter__(self) -> Mesh:
        started = time.perf_counter()
        subprocess.run(
            [*self.cli, "up", "-f", str(self.manifest), "-n", large_mesh.CANARY_NAMESPACE,
             "--state-dir", str(self.state)],
            check=True, capture_output=True, timeout=CLI_TIMEOUT,
        )  # fmt: skip
        self.info = json.loads((self.state / "mesh.json").read_text())
        gateway = _connect(self.gateway_url)
        gateway.request("GET", "/")
        answer = gateway.getresponse()
        answer.read()
        gateway.close()
        self.up_seconds = time.perf_counter() - started
        if answer.status != 200:
            raise AssertionError(f"the canary gateway answered {answer.status} after mesh up")
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run([*self.cli, "down", "--state-dir", str(self.state)],
                       capture_output=True, timeout=CLI_TIMEOUT, check=False)  # fmt: skip
        self.tmp.cleanup()

    @property
    def gateway_url(self) -> str:
        return next(
            g["url"] for g in self.info["gateways"] if g["name"] == "canary-gateway"
        )

    def service(self, name: str) -> dict[str, Any]:
        return next(s for s in self.info["services"] if s["name"] == name)

    def rss_mb(self, role: str) -> float:
        pid = next(p["pid"] for p in self.info["pids"] if p["role"] == role)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


def _patch(
    api: http.client.HTTPConnection, auth: dict[str, str], path: str, body: dict[str, Any]
) -> None:
    api.request("PATCH", path, body=json.dumps(body).encode(),
                headers={"Content-Type": MERGE, **auth})  # fmt: skip
    answer = api.getresponse()
    text = answer.read()
    if answer.status != 200:
        raise AssertionError(f"PATCH {path} answered {answer.status}: {text[:300]!r}")


def _canary_patch(weight_v1: int) -> dict[str, Any]:
    fqdn = f"canary.{large_mesh.CANARY_NAMESPACE}.svc.cluster.local"
    route = [
        {"destination": {"host": fqdn, "subset": "v1"}, "weight": weight_v1},
        {"destination": {"host": fqdn, "subset": "v2"}, "weight": 100 - weight_v1},
    ]
    return {"spec": {"http": [{"route": route}]}}


def _enforced(
    mesh: Mesh,
    path: str,
    patch: Any,
    url: str,
    host: str | None,
    want: Any,
    changes: int,
) -> list[float]:
    """Milliseconds from sending each PATCH to the first answer from the version it picks."""
    api, auth = _connect_api(mesh.info)
    target = _connect(url)
    headers = {"Host": host} if host else {}
    samples = []
    try:
        for i in range(changes):
            weight_v1 = 0 if i % 2 == 0 else 100
            started = time.perf_counter()
            _patch(api, auth, path, patch(weight_v1))
            target.request("GET", "/", headers=headers)
            body = target.getresponse().read()
            samples.append((time.perf_counter() - started) * 1000)
            if not body.startswith(want(weight_v1)):
                raise AssertionError(f"change {i}: got {body[:40]!r} right after the PATCH")
    finally:
        api.close()
        target.close()
    return samples


def canary_changes(mesh: Mesh, changes: int) -> list[float]:
    path = f"{GROUP}/{large_mesh.CANARY_NAMESPACE}/virtualservices/canary"
    return _enforced(
        mesh, path, _canary_patch, mesh.gateway_url, None,
        lambda w: b"appv1" if w else b"appv2", changes,
    )  # fmt: skip


def mesh_vs_changes(mesh: Mesh, changes: int) -> list[float]:
    vs = large_mesh.mesh_virtual_service(0)
    name, ns = vs["metadata"]["name"], vs["metadata"]["namespace"]
    service = mesh.service(name)

    def patch(weight_v1: int) -> dict[str, Any]:
        return {"spec": large_mesh.mesh_virtual_service(0, weight_v1)["spec"]}

    return _enforced(
        mesh, f"{GROUP}/{ns}/virtualservices/{name}", patch, service["url"],
        service["host_header"], lambda w: f"{name}-v1".encode() if w else f"{name}-v2".encode(),
        changes,
    )  # fmt: skip


def rule_changes(mesh: Mesh, changes: int) -> list[float]:
    """Milliseconds from sending a DestinationRule PATCH to the API's answer."""
    rule = large_mesh.destination_rule(0)
    path = f"{GROUP}/{rule['metadata']['namespace']}/destinationrules/{rule['metadata']['name']}"
    api, auth = _connect_api(mesh.info)
    samples = []
    try:
        for i in range(changes):
            pool = {"tcp": {"maxConnections": 100 + i % 2}}
            started = time.perf_counter()
            _patch(api, auth, path, {"spec": {"trafficPolicy": {"connectionPool": pool}}})
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        api.close()
    return samples


def _row(label: str, samples: list[float]) -> str:
    return (
        f"  {label:<58} p50 {statistics.median(samples):7.1f} ms  "
        f"p95 {_percentile(samples, 95):7.1f} ms  max {max(samples):7.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    changes = int(argv[0]) if argv else CHANGES
    with tempfile.TemporaryDirectory(prefix="chaosmesh-bench-scale-") as tmp:
        manifest = large_mesh.write(Path(tmp) / "large.yaml")
        with Mesh(CANARY) as small:
            alone = canary_changes(small, changes)
        with Mesh(manifest) as mesh:
            canary = canary_changes(mesh, changes)
            mesh_vs = mesh_vs_changes(mesh, changes)
            rules = rule_changes(mesh, changes)
            daemon_mb, envoy_mb = mesh.rss_mb("daemon"), mesh.rss_mb("envoy")
            up = mesh.up_seconds
            small_up = small.up_seconds
    print(
        "large configuration: 200 Services (10 with replicas), 1,000 VirtualServices, "
        f"200 DestinationRules, 4 Gateways; {changes} changes each"
    )
    print(f"  mesh up to serving: {up:.1f} s (the seed's canary alone: {small_up:.1f} s)")
    print(_row("canary VS merge patch -> enforced (gateway), canary alone", alone))
    print(_row("canary VS merge patch -> enforced (gateway), large config", canary))
    print(_row("mesh VS svc-000 merge patch -> enforced (sidecar listener)", mesh_vs))
    print(_row("DestinationRule svc-000 merge patch -> applied (API answer)", rules))
    print(f"  RSS after the changes: daemon {daemon_mb:.0f} MB, Envoy {envoy_mb:.0f} MB")
    worst = max(_percentile(canary, 95), _percentile(mesh_vs, 95))
    verdict = "OK" if worst < TARGET_P95_MS else "OVER TARGET"
    print(f"  target p95 < {TARGET_P95_MS:.0f} ms for both VirtualService patches: {verdict}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
