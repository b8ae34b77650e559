"""Benchmark: how fast the embedded mesh's Istio metrics keep up with Envoy's access log.

Three figures, each beside a reference measured in the same run:

- derive + count: records turned into Istio samples per second without the exporter's label
  cache (reference: bare ``json.loads`` of the same lines, the floor any Python exporter pays);
- follow: records/s from lines appended to ``access.jsonl`` to counts, through the running
  exporter's file tail (and the lag after the last write);
- render: one ``/metrics`` scrape's size and time with realistic label cardinality.

Target: the exporter follows at least 20 000 records/s (several times what the embedded
Envoy serves on two cores) and a scrape renders in under 50 ms.

``python -m benchmarks.bench_metrics [records]``
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from chaosmesh_ext.mesh.metrics import (
    MeshDirectory,
    MetricsRegistry,
    derive_samples,
    start_exporter,
)

TARGET_RECORDS_PER_S = 20_000
TARGET_RENDER_MS = 50.0


def _endpoints() -> list[dict[str, Any]]:
    return [
        {"pod": f"svc{s}-v{v}-0", "namespace": "default", "workload": f"svc{s}-v{v}",
         "labels": {"app": f"svc{s}", "version": f"v{v}"}, "address": "127.0.0.1",
         "port": 20000 + s * 10 + v}
        for s in range(5) for v in range(1, 3)
    ]  # fmt: skip


def _records(count: int) -> list[str]:
    codes = [(200, "-"), (200, "-"), (200, "-"), (503, "FI"), (503, "UO"), (504, "UT")]
    lines = []
    for i in range(count):
        s, v = i % 5, 1 + i % 2
        code, flags = codes[i % len(codes)]
        upstream = "-" if flags in ("FI", "UO") else f"127.0.0.1:{20000 + s * 10 + v}"
        lines.append(json.dumps({
            "start_time": "2026-11-26T23:00:00.000Z", "method": "GET", "path": "/",
            "authority": f"svc{s}:9080", "response_code": code, "response_flags": flags,
            "duration_ms": i % 300,
            "upstream_cluster": f"outbound|9080|v{v}|svc{s}.default.svc.cluster.local",
            "upstream_host": upstream, "attempts": 1, "route_name": None,
            "listener": "0.0.0.0_9080",
            "source_workload": f"client{i % 3}", "source_namespace": "default",
            "bytes_received": 0, "bytes_sent": 10,
        }))  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    count = int(argv[0]) if argv else 100_000
    lines = _records(count)
    directory = MeshDirectory.from_mesh_state({"endpoints": _endpoints()})

    started = time.perf_counter()
    for line in lines:
        json.loads(line)
    parse_rate = count / (time.perf_counter() - started)

    registry = MetricsRegistry()
    started = time.perf_counter()
    for line in lines:
        registry.observe(derive_samples(json.loads(line), directory))
    derive_rate = count / (time.perf_counter() - started)

    started = time.perf_counter()
    text = registry.render()
    render_ms = (time.perf_counter() - started) * 1000
    series = len(registry.requests_total())

    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        state = Path(tmp)
        (state / "mesh.json").write_text(json.dumps({"endpoints": _endpoints()}))
        exporter = start_exporter(state)
        try:
            started = time.perf_counter()
            with (state / "access.jsonl").open("a") as handle:
                for i in range(0, count, 1000):
                    handle.write("\n".join(lines[i : i + 1000]) + "\n")
                    handle.flush()
            written = time.perf_counter()
            deadline = written + 120
            while exporter.records < count and time.perf_counter() < deadline:
                time.sleep(0.005)
            done = time.perf_counter()
            with urllib.request.urlopen(exporter.url, timeout=10) as response:
                scrape_started = time.perf_counter()
                body = response.read()
            scrape_ms = (time.perf_counter() - scrape_started) * 1000
        finally:
            exporter.stop()
    follow_rate = exporter.records / (done - started)
    lag_ms = (done - written) * 1000

    print(f"records: {count}, series: {series} counters + histograms")
    print(f"{'json.loads only (reference)':<36} {parse_rate:>12,.0f} records/s")
    print(f"{'derive + count, no label cache':<36} {derive_rate:>12,.0f} records/s")
    print(f"{'follow access.jsonl (exporter, cache)':<36} {follow_rate:>12,.0f} records/s"
          f"   lag after last write {lag_ms:,.0f} ms")  # fmt: skip
    print(f"{'render /metrics':<36} {render_ms:>12.1f} ms   ({len(text) / 1024:,.0f} KiB)")
    print(f"{'scrape over HTTP (read)':<36} {scrape_ms:>12.1f} ms   ({len(body) / 1024:,.0f} KiB)")
    ok = follow_rate >= TARGET_RECORDS_PER_S and render_ms <= TARGET_RENDER_MS
    print(
        f"target: follow >= {TARGET_RECORDS_PER_S:,} records/s and render <= "
        f"{TARGET_RENDER_MS:.0f} ms: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
