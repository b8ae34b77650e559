"""The rollout loop on its own: shift and guard are plain callables, so no mesh is needed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from chaosmesh_ext.canary import GuardLimits, RolloutError, check_steps, run_rollout


class Recorder:
    """Shifts weights in memory and answers each guard with the result given for that step."""

    def __init__(self, results: Mapping[int, Mapping[str, Any] | BaseException]) -> None:
        self.results = results
        self.weights: list[int] = []

    def shift(self, weight: int) -> None:
        self.weights.append(weight)

    def guard(self, weight: int) -> Mapping[str, Any]:
        answer = self.results[weight]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _run(recorder: Recorder, steps: list[int], **limits: Any) -> dict[str, Any]:
    return run_rollout(
        steps,
        shift=recorder.shift,
        guard=recorder.guard,
        limits=GuardLimits(**limits),
        stable="v1",
        canary="v2",
        what="VirtualService default/shop",
        sleep=lambda _: None,
    )


GOOD = {"error_rate": 0.0, "p99_ms": 5.0, "codes": {200: 100}}


def test_every_step_passes_and_the_canary_is_promoted() -> None:
    recorder = Recorder({10: GOOD, 50: GOOD, 100: GOOD})
    result = _run(recorder, [10, 50, 100])
    assert recorder.weights == [10, 50, 100]
    assert result["promoted"] is True and result["halted_at"] is None
    assert [s["canary_weight"] for s in result["steps"]] == [10, 50, 100]


def test_a_failed_guard_sends_everything_back_to_stable_and_stops() -> None:
    bad = {"error_rate": 0.2, "p99_ms": 5.0, "codes": {200: 80, 503: 20}}
    recorder = Recorder({10: GOOD, 50: bad})
    result = _run(recorder, [10, 50, 100], max_error_rate=0.01)
    assert recorder.weights == [10, 50, 0]  # 100 never reached
    assert result["promoted"] is False and result["halted_at"] == 50
    assert result["max_canary_weight"] == 50 and result["rolled_back_to"] == "v1"
    assert result["steps"][-1]["failures"] == ["error rate 0.200 > 0.01"]


def test_the_p99_limit_is_checked_only_when_given() -> None:
    slow = {"error_rate": 0.0, "p99_ms": 900.0}
    assert _run(Recorder({100: slow}), [100])["promoted"] is True
    result = _run(Recorder({100: slow}), [100], max_p99_ms=200)
    assert result["halted_at"] == 100 and "p99 900.0 ms > 200 ms" in result["steps"][0]["failures"]


def test_a_guard_that_raises_leaves_no_traffic_on_the_canary() -> None:
    recorder = Recorder({10: GOOD, 25: KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        _run(recorder, [10, 25, 50])
    assert recorder.weights == [10, 25, 0]


@pytest.mark.parametrize("steps", [[], [10, 5], [0, 50], [50, 150], [10, 10], ["x"]])
def test_bad_steps_are_refused_by_name(steps: list[Any]) -> None:
    with pytest.raises(RolloutError, match=r"^VirtualService default/shop: steps must be"):
        check_steps(steps, what="VirtualService default/shop")


def test_bad_limits_and_interval_are_refused_before_any_shift() -> None:
    with pytest.raises(RolloutError, match="max_error_rate"):
        GuardLimits(max_error_rate=2)
    recorder = Recorder({10: GOOD})
    with pytest.raises(RolloutError, match="interval"):
        run_rollout(
            [10],
            shift=recorder.shift,
            guard=recorder.guard,
            limits=GuardLimits(),
            stable="v1",
            canary="v2",
            what="x",
            interval=-1,
        )
    assert recorder.weights == []
