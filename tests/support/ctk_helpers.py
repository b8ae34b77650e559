"""Activities for the tiny experiments that produce the journal fixtures (tests/journal).

They mimic the outputs of this extension's probes (a fortio result plus flat keys, a traffic
split) and its safety-net control (a ``chaosmesh`` section in the experiment's extensions)
without a mesh, so real ``chaos run`` (1.19 and 1.21) writes real journals around them.
"""

from __future__ import annotations

import os
import time
from typing import Any


def _histogram(p50: float, p90: float, p99: float, count: int) -> dict[str, Any]:
    """A fortio DurationHistogram (seconds) with the given percentiles (ms)."""
    return {
        "Count": count,
        "Min": p50 / 2000.0,
        "Max": p99 * 1.2 / 1000.0,
        "Sum": p50 * count / 1000.0,
        "Avg": p50 / 1000.0,
        "StdDev": (p99 - p50) / 3000.0,
        "Data": [],
        "Percentiles": [
            {"Percentile": 50, "Value": p50 / 1000.0},
            {"Percentile": 90, "Value": p90 / 1000.0},
            {"Percentile": 99, "Value": p99 / 1000.0},
        ],
    }


def load_result(
    p50: float = 2.0,
    p90: float = 4.0,
    p99: float = 8.0,
    count: int = 200,
    qps: float = 100.0,
    codes: dict[str, int] | None = None,
    url: str = "http://reviews:9080/",
    degraded_marker: str | None = None,
    degraded_p99: float = 400.0,
) -> dict[str, Any]:
    """What ``chaosmesh_ext.probes`` load probes return: fortio JSON plus flat keys.

    While ``degraded_marker`` exists (the fault is "still there") p99 is ``degraded_p99``.
    """
    if degraded_marker and os.path.exists(degraded_marker):
        p99 = degraded_p99
        p90 = max(p90, degraded_p99 / 2)
    codes = codes or {"200": count}
    errors = sum(n for code, n in codes.items() if code not in ("200", "418"))
    return {
        "RunType": "HTTP",
        "URL": url,
        "RequestedQPS": str(qps),
        "ActualQPS": qps,
        "ActualDuration": int(count / qps * 1e9),
        "NumThreads": 2,
        "RetCodes": codes,
        "DurationHistogram": _histogram(p50, p90, p99, count),
        "ErrorsDurationHistogram": _histogram(p50, p90, p99, errors) if errors else {"Count": 0},
        "count": count,
        "qps": qps,
        "error_rate": errors / count if count else 0.0,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "max_ms": p99 * 1.2,
        "codes": codes,
    }


def traffic_split(v1: float = 0.9, v2: float = 0.1) -> dict[str, float]:
    """What the ``traffic_split`` probe returns: a fraction per version."""
    return {"v1": v1, "v2": v2}


def inject(kind: str = "delay", seconds: float = 0.0, marker: str | None = None) -> dict[str, Any]:
    """Stands in for a fault action; sleeps so the timeline has a visible width.

    ``marker``: a file created to mean "the fault outlives the method" (see load_result).
    """
    time.sleep(seconds)
    if marker:
        with open(marker, "w") as f:
            f.write(kind)
    return {"kind": kind, "object": "VirtualService default/reviews"}


def returns(value: Any = None) -> Any:
    """Returns ``value``: stands in for an activity whose output a test writes out (e.g. a
    ``progressive_rollout`` result)."""
    return value


def crash(message: str = "connection refused by reviews:9080") -> None:
    """A probe whose call fails, as a real probe does when the target is unreachable."""
    raise ConnectionError(message)


def after_experiment_control(state: dict[str, Any], **kwargs: Any) -> None:
    """Writes what the safety-net control (``chaosmesh_ext.control``) records: what it put back."""
    experiment = state.setdefault("experiment", {})
    experiment.setdefault("extensions", []).append(
        {
            "name": "chaosmesh",
            "run_id": "fixture-run",
            "safety_net": [
                {
                    "when": "after_experiment",
                    "restored": [
                        {
                            "object": "VirtualService default/reviews",
                            "run_id": "fixture-run",
                            "result": "restored",
                            "detail": "spec, labels and annotations put back as before the run",
                            "entries": ["fixture-run#1"],
                        },
                        {
                            "object": "DestinationRule default/reviews",
                            "run_id": "fixture-run",
                            "result": "refused",
                            "detail": "changed by someone else since this run changed it",
                            "entries": ["fixture-run#2"],
                        },
                    ],
                }
            ],
        }
    )
