"""The knee search (pure): plans, the stepping and its verdicts, and reading a knee back.

The steps run against a model of a saturating service instead of a network: below its
capacity every call takes the service time; above it, an open-loop queue grows for as long
as the step lasts, and the service completes only its capacity per second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from chaosmesh_ext.load.knee import KneeError, find_knee, knee_from_document, make_plan
from chaosmesh_ext.load.stats import Histogram


def fortio_result(latencies: list[float], failed: int = 0, served_qps: float | None = None) -> dict:
    """A fortio result (our open-loop engine's shape) for these latencies in seconds; the
    first ``failed`` calls answered 503."""
    everything, errors = Histogram(0.0, 0.001), Histogram(0.0, 0.001)
    for index, latency in enumerate(latencies):
        everything.record(latency)
        if index < failed:
            errors.record(latency)
    ok = len(latencies) - failed
    return {
        "DurationHistogram": everything.export([50, 99]),
        "ErrorsDurationHistogram": errors.export([50, 99]),
        "RetCodes": {k: v for k, v in (("200", ok), ("503", failed)) if v},
        "ActualQPS": 0.0,
        "ActualDuration": 1_000_000_000,
        "OpenLoop": {"ServedQPS": served_qps, "RateKept": True},
    }


class Saturating:
    """``capacity`` requests per second at ``service`` seconds each; ``calls`` records rates."""

    def __init__(self, capacity: float, service: float = 0.05, fail_share: float = 0.0) -> None:
        self.capacity = capacity
        self.service = service
        self.fail_share = fail_share
        self.calls: list[tuple[float, float]] = []

    def __call__(self, qps: float, seconds: float) -> Mapping[str, Any]:
        self.calls.append((qps, seconds))
        count = max(2, int(qps * seconds))
        backlog = max(0.0, (qps - self.capacity) / self.capacity)  # seconds of wait per second
        latencies = [self.service + backlog * seconds * i / count for i in range(count)]
        return fortio_result(
            latencies, int(count * self.fail_share), served_qps=min(qps, self.capacity)
        )


def _plan(**changes: Any) -> Any:
    arguments = {
        "start_qps": 50,
        "max_qps": 500,
        "max_p99_ms": 200,
        "step_qps": 50,
        "step_seconds": 2.0,
        "refine": 0,
        "max_seconds": 600,
        **changes,
    }
    return make_plan(**arguments)


def test_the_knee_is_the_last_rate_served_within_the_bounds() -> None:
    service = Saturating(capacity=220)
    found = find_knee(_plan(), service, pods=3)
    assert [s["offered_qps"] for s in found["steps"]] == [50, 100, 150, 200, 250]
    assert [s["passed"] for s in found["steps"]] == [True] * 4 + [False]
    knee = found["knee"]
    assert knee["qps"] == 200 and found["first_failing_qps"] == 250
    # Little's law: 200/s x 50 ms = 10 in flight, 3.33 per pod.
    assert knee["concurrency"] == pytest.approx(200 * knee["mean_ms"] / 1000)
    assert knee["concurrency"] == pytest.approx(10, rel=0.05)
    assert (knee["qps_per_pod"], knee["pods"]) == (pytest.approx(66.667), 3)
    assert found["knee_qps"] == 200 and found["knee_concurrency"] == knee["concurrency"]
    assert "falling behind" in found["stopped"]
    assert found["steps"][-1]["achieved_qps"] == 220


def test_refine_bisects_between_the_last_good_and_the_first_bad_rate() -> None:
    service = Saturating(capacity=220)
    found = find_knee(_plan(refine=2), service)
    assert [s["offered_qps"] for s in found["steps"]][-2:] == [225, 237.5]
    assert [s["passed"] for s in found["steps"]][-2:] == [True, False]
    assert found["knee"]["qps"] == 225


def test_a_step_falling_behind_fails_even_before_its_p99_shows_it() -> None:
    # A short step at 10 % over capacity: the queue has not had time to reach the bound.
    service = Saturating(capacity=240)
    found = find_knee(_plan(start_qps=200, step_qps=64, max_p99_ms=1000, step_seconds=0.5), service)
    failing = found["steps"][-1]
    assert failing["offered_qps"] == 264 and failing["p99_ms"] < 1000
    assert failing["why"].startswith("served 240 of 264 qps: falling behind")


def test_no_knee_reasons_name_the_argument_to_change() -> None:
    with pytest.raises(KneeError) as slow:
        find_knee(_plan(max_p99_ms=20), Saturating(capacity=240, service=0.05))
    assert slow.value.argument == "max_p99_ms"
    assert "below the service's own latency" in str(slow.value)
    with pytest.raises(KneeError) as overloaded:
        find_knee(_plan(start_qps=400, step_qps=50), Saturating(capacity=240))
    assert overloaded.value.argument == "start_qps"
    with pytest.raises(KneeError) as unbounded:
        find_knee(_plan(max_qps=200), Saturating(capacity=10_000))
    assert unbounded.value.argument == "max_qps"
    assert "no knee within 200 qps" in str(unbounded.value)
    with pytest.raises(KneeError) as errors:
        find_knee(_plan(), Saturating(capacity=10_000, fail_share=0.05))
    assert errors.value.argument == "start_qps" and "errors 5.00% > 1.00%" in str(errors.value)


def test_the_time_bound_stops_the_search_between_steps() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    def step(qps: float, seconds: float) -> Mapping[str, Any]:
        now[0] += 10.0  # each step takes 10 s of the clock
        return Saturating(capacity=10_000)(qps, seconds)

    with pytest.raises(KneeError) as caught:
        find_knee(_plan(max_seconds=35, step_seconds=2.0, overhead_seconds=0.5), step, clock=clock)
    assert caught.value.argument == "max_duration" and "stopped after 3 steps" in str(caught.value)


def test_warmup_runs_first_and_is_not_judged() -> None:
    service = Saturating(capacity=240)
    found = find_knee(_plan(warmup_seconds=0.5), service)
    assert service.calls[0] == (50, 0.5)
    assert found["warmup"]["offered_qps"] == 50
    assert all(s["offered_qps"] != 50 or s["passed"] for s in found["steps"])


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        ({"start_qps": 0}, "start_qps"),
        ({"start_qps": -5}, "start_qps"),
        ({"max_qps": 40}, "max_qps"),
        ({"max_p99_ms": "fast"}, "max_p99_ms"),
        ({"factor": 2.0}, "step_qps"),  # both given
        ({"step_qps": None, "factor": 1.0}, "factor"),
        ({"max_error_rate": 1.5}, "max_error_rate"),
        ({"refine": -1}, "refine"),
        ({"step_seconds": 0}, "step_duration"),
        ({"max_seconds": 601}, "max_duration"),
        ({"step_qps": 1, "max_qps": 5000}, "max_qps"),  # thousands of steps
        ({"max_seconds": 10}, "max_duration"),  # 10 steps of 2 s need more
    ],
)
def test_bad_plans_name_the_argument(changes: dict[str, Any], argument: str) -> None:
    with pytest.raises(KneeError) as caught:
        _plan(**changes)
    assert caught.value.argument == argument


def test_factor_steps_grow_geometrically_and_end_at_max_qps() -> None:
    plan = make_plan(10, 100, 200, factor=2.0, step_seconds=1.0)
    assert plan.rates() == [10, 20, 40, 80, 100]
    assert make_plan(10, 100, 200).factor == 1.5  # the default


def test_a_knee_is_read_back_from_its_output_a_nesting_action_or_a_journal() -> None:
    found = find_knee(_plan(), Saturating(capacity=220), pods=3)
    assert knee_from_document(found)["knee_qps"] == 200
    applied = {"advice": {}, "knee_search": found}
    assert knee_from_document(applied)["knee"]["qps"] == 200
    journal = {
        "run": [
            {"activity": {"name": "surge"}, "output": {"p99_ms": 2000.0}},
            {"activity": {"name": "apply"}, "output": json.loads(json.dumps(applied))},
        ],
        "steady_states": {"before": None, "after": {"probes": []}},
    }
    assert knee_from_document(journal, "journal.json")["knee"]["pods"] == 3
    with pytest.raises(ValueError, match=r"journal\.json: a journal, but no activity"):
        knee_from_document({"run": [], "steady_states": {}}, "journal.json")
    with pytest.raises(ValueError, match="neither a capacity_knee result"):
        knee_from_document({"knee": 200}, "x.json")
