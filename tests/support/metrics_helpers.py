"""Hand-written mesh state and access-log records for the metrics tests."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any


def endpoint(workload: str, version: str, port: int, app: str = "reviews") -> dict[str, Any]:
    """One mesh.json endpoint: a replica of ``workload`` listening on 127.0.0.1:``port``."""
    return {
        "pod": f"{workload}-0",
        "namespace": "default",
        "workload": workload,
        "labels": {"app": app, "version": version},
        "address": "127.0.0.1",
        "port": port,
    }


REVIEWS_V1 = endpoint("reviews-v1", "v1", 41001)
REVIEWS_V2 = endpoint("reviews-v2", "v2", 41002)
PRODUCTPAGE = endpoint("productpage-v1", "v1", 41003, app="productpage")
RATINGS_V1 = endpoint("ratings-v1", "v1", 41004, app="ratings")
CLUSTER_V1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
CLUSTER_V2 = "outbound|9080|v2|reviews.default.svc.cluster.local"
RATINGS_CLUSTER = "outbound|9080||ratings.default.svc.cluster.local"


def record(**overrides: Any) -> dict[str, Any]:
    """One access.jsonl record: productpage -> reviews v1, 200 in 3 ms, unless overridden."""
    base: dict[str, Any] = {
        "start_time": "2026-11-26T23:00:00.000Z", "method": "GET", "path": "/reviews/1",
        "authority": "reviews:9080", "response_code": 200, "response_flags": "-",
        "duration_ms": 3, "upstream_cluster": CLUSTER_V1, "upstream_host": "127.0.0.1:41001",
        "attempts": 1, "route_name": "default", "listener": "0.0.0.0_9080",
        "source_workload": "productpage-v1", "source_namespace": "default",
        "bytes_received": 0, "bytes_sent": 120,
    }  # fmt: skip
    base.update(overrides)
    return base


def aborted(code: int = 503) -> dict[str, Any]:
    """A request the client sidecar aborted by itself (fault injection): no upstream host."""
    return record(response_code=code, response_flags="FI", upstream_host="-", duration_ms=0)


def delayed(duration_ms: float, service_time_ms: float = 3) -> dict[str, Any]:
    """productpage -> ratings through an injected delay (DI): the client waited duration_ms."""
    return record(
        authority="ratings:9080", upstream_cluster=RATINGS_CLUSTER, upstream_host="127.0.0.1:41004",
        response_flags="DI", duration_ms=duration_ms, upstream_service_time=str(service_time_ms),
    )  # fmt: skip


def write_mesh_state(state_dir: Path, endpoints: list[dict[str, Any]] | None = None) -> None:
    if endpoints is None:
        endpoints = [REVIEWS_V1, REVIEWS_V2, PRODUCTPAGE, RATINGS_V1]
    (state_dir / "mesh.json").write_text(json.dumps({"endpoints": endpoints}))


def append_records(state_dir: Path, records: list[dict[str, Any]]) -> None:
    with (state_dir / "access.jsonl").open("a") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in records))


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def scrape(url: str) -> str:
    """The exposition once every series has been shown: new series read 0 on their first
    scrape (see MetricsRegistry.hold_new_series), so this is the second of two scrapes."""
    for _ in range(2):
        with urllib.request.urlopen(url, timeout=5) as response:
            text = str(response.read().decode())
    return text


def series(text: str, metric: str = "istio_requests_total") -> dict[frozenset, float]:
    """Parse the exposition into {frozenset(label pairs): value} for one metric name."""
    found: dict[frozenset, float] = {}
    for line in text.splitlines():
        match = re.match(rf"^{metric}\{{(.*)\}} (\S+)$", line)
        if match:
            pairs = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1)))
            found[pairs] = float(match.group(2))
    return found


def total(text: str, **selector: str) -> float:
    """The sum of istio_requests_total over the series whose labels include ``selector``."""
    wanted = set(selector.items())
    return sum(v for labels, v in series(text).items() if wanted <= labels)
