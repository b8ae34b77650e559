"""Benchmark: what the pure Istio layer costs per call — edits, validation and lint.

Edits and validation run inside every action (and the embedded API's 422 check), so they
must stay far below the network round trip they precede; lint runs on whole manifest trees.
Timed on the seed's own objects (tests/istio/fixtures) and on a generated tree of
N Services + N VirtualServices + N DestinationRules + N Deployments, beside the floor of
just parsing that YAML (``yaml.safe_load_all``, libyaml when available).

``python -m benchmarks.bench_istio [N]``. Targets: every edit + re-validation under 1 ms at
the median; lint no slower than 10x parsing its files.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "istio" / "fixtures"
EDIT_TARGET_MS = 1.0
LINT_FACTOR_TARGET = 10.0


def _time(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def _load(relative: str, name: str) -> dict[str, Any]:
    for doc in yaml.safe_load_all((FIXTURES / relative).read_text()):
        if doc and doc["metadata"]["name"] == name:
            return doc
    raise LookupError(name)


def _tree(directory: Path, n: int) -> None:
    docs = []
    for i in range(n):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"svc{i}"},
                "spec": {"selector": {"app": f"svc{i}"}, "ports": [{"port": 80}]},
            }
        )
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": f"svc{i}"},
                "spec": {"template": {"metadata": {"labels": {"app": f"svc{i}", "version": "v1"}}}},
            }
        )
        docs.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": f"svc{i}"},
                "spec": {
                    "host": f"svc{i}",
                    "subsets": [{"name": "v1", "labels": {"version": "v1"}}],
                    "trafficPolicy": {
                        "outlierDetection": {"interval": "1s", "maxEjectionPercent": 100}
                    },
                },
            }
        )
        docs.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": f"svc{i}"},
                "spec": {
                    "hosts": [f"svc{i}"],
                    "http": [
                        {
                            "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                            "route": [{"destination": {"host": f"svc{i}", "subset": "v1"}}],
                            "retries": {"attempts": 3, "retryOn": "5xx"},
                        },
                        {
                            "route": [
                                {"destination": {"host": f"svc{(i + 1) % n}", "subset": "v1"}}
                            ],
                            "timeout": "2s",
                        },
                    ],
                },
            }
        )
    (directory / "tree.yaml").write_text(yaml.safe_dump_all(docs))


def main(argv: list[str] | None = None) -> int:
    from chaosmesh_ext.istio import breaker, faults, traffic
    from chaosmesh_ext.istio.lint import lint_paths
    from chaosmesh_ext.istio.validate import validate

    args = argv or []
    n_objects = int(args[0]) if args else 250
    canary_vs = _load("canary/virtualservice.yaml", "canary")
    canary_dr = _load("canary/DestinationRule.yaml", "canary")
    tomcat = _load("retry/virtual-retry.yaml", "tomcat-svc")
    httpbin = _load("circuit-breaking/destinationrule.yaml", "httpbin")
    targeted = faults.inject_delay(tomcat, "2s", headers={"x-chaos": "1"})

    edits: list[tuple[str, Callable[[], Any]]] = [
        ("validate (seed VS)", lambda: validate(tomcat)),
        ("inject_delay", lambda: faults.inject_delay(tomcat, "2s", 50)),
        (
            "inject_abort targeted",
            lambda: faults.inject_abort(tomcat, 503, headers={"x-chaos": "1"}),
        ),
        ("remove_injected_faults", lambda: faults.remove_injected_faults(targeted)),
        (
            "shift_traffic 50/50",
            lambda: traffic.shift_traffic(
                canary_vs, {"v1": 50, "v2": 50}, destination_rules=[canary_dr]
            ),
        ),
        ("set_retries", lambda: traffic.set_retries(tomcat, 3, "2s", "5xx")),
        (
            "apply_circuit_breaker",
            lambda: breaker.apply_circuit_breaker(httpbin, "httpbin", "default", max_connections=2),
        ),
    ]
    ok = True
    print(f"{'pure edit (incl. re-validation)':34} {'median ms':>10} {'p95 ms':>8}")
    for label, fn in edits:
        median, p95 = _time(fn, 2000)
        flag = "" if median < EDIT_TARGET_MS else "  (over target)"
        ok &= median < EDIT_TARGET_MS
        print(f"{label:34} {median:10.3f} {p95:8.3f}{flag}")

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _tree(directory, n_objects)
        files = [directory / "tree.yaml"]
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        parse_ms, _ = _time(lambda: list(yaml.load_all(files[0].read_text(), Loader=loader)), 5)
        lint_ms, _ = _time(lambda: lint_paths(files), 5)
        seed_ms, _ = _time(lambda: lint_paths([FIXTURES]), 20)
        findings = lint_paths(files)
    factor = lint_ms / parse_ms
    ok &= factor < LINT_FACTOR_TARGET
    print(f"\nlint of the seed's fixture tree: {seed_ms:.1f} ms (median of 20)")
    print(
        f"lint of {4 * n_objects} objects: {lint_ms:.0f} ms; parsing alone (safe_load_all, "
        f"{'libyaml' if yaml.__with_libyaml__ else 'pure python'}): "
        f"{parse_ms:.0f} ms; ratio {factor:.1f}x (target < {LINT_FACTOR_TARGET:.0f}x); "
        f"{len(findings)} findings"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
