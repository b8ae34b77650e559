"""The scheduler alone (no HTTP): fortio's work split, closed and open loop."""

from __future__ import annotations

import asyncio

import pytest

from chaosmesh_ext.load.periodic import (
    StopToken,
    format_go_duration,
    plan,
    run_closed,
    run_open,
)


@pytest.mark.parametrize(
    ("qps", "c", "n", "t", "threads", "each", "leftover", "requested"),
    [
        (0, 2, 20, 5.0, 2, 10, 0, "exactly 20 calls"),  # the seed's breaker run
        (0, 4, 21, 5.0, 4, 5, 1, "exactly 21 calls"),  # remainder on thread 0
        (10, 3, 0, 1.0, 3, 3, 0, "1s"),  # qps*t = 10 -> 3 each, remainder dropped
        (8, 4, 5, 5.0, 2, 2, 1, "exactly 5 calls"),  # fewer threads: each makes >= 2 calls
        (100, 2, 1, 5.0, 1, 2, -1, "exactly 1 calls"),  # at least 2 calls with a rate
        (0, 4, 0, 90.0, 4, 0, 0, "1m30s"),  # max speed for a duration
    ],
)
def test_plan_splits_like_fortio(
    qps: float, c: int, n: int, t: float, threads: int, each: int, leftover: int, requested: str
) -> None:
    p = plan(qps, c, n, t)
    assert (p.threads, p.calls_per_thread, p.leftover) == (threads, each, leftover)
    assert p.requested_duration == requested
    assert p.requested_qps == ("max" if qps <= 0 else f"{qps:g}")


def test_go_durations() -> None:
    assert format_go_duration(5) == "5s"
    assert format_go_duration(90) == "1m30s"
    assert format_go_duration(3600) == "1h0m0s"
    assert format_go_duration(0.1) == "100ms"
    assert format_go_duration(1.5) == "1.5s"
    assert format_go_duration(0.0000015) == "1.5µs"


def _counting_calls(threads: int, ok_every: int = 1) -> tuple[list, list[int]]:
    counts = [0] * threads

    def make(tid: int):  # type: ignore[no-untyped-def]
        async def call() -> bool:
            counts[tid] += 1
            await asyncio.sleep(0)
            return counts[tid] % ok_every == 0

        return call

    return [make(t) for t in range(threads)], counts


def test_closed_loop_runs_exactly_n_with_remainder_on_thread_0() -> None:
    p = plan(0, 4, 21, 5.0)
    calls, counts = _counting_calls(4, ok_every=3)
    stats = asyncio.run(run_closed(calls, p, 0, 5.0, 21, StopToken()))
    assert counts == [6, 5, 5, 5]
    assert stats.durations.count == 21
    # every third call of each worker is OK: 2+1+1+1 OK -> 16 errors
    assert stats.errors.count == 21 - (2 + 1 + 1 + 1)


def test_closed_loop_stop_token_ends_an_endless_run() -> None:
    p = plan(50, 2, 0, -1)  # until stopped
    calls, counts = _counting_calls(2)
    stop = StopToken()

    async def main() -> int:
        task = asyncio.ensure_future(run_closed(calls, p, 50, -1, 0, stop))
        while sum(counts) < 4:
            await asyncio.sleep(0.01)
        stop.stop()
        stats = await asyncio.wait_for(task, 5)
        return stats.durations.count

    made = asyncio.run(main())
    assert made == sum(counts) and made >= 4
    assert p.requested_duration == "until stop"


def test_open_loop_sends_all_and_adds_lanes_for_slow_calls() -> None:
    made = []

    def new_lane():  # type: ignore[no-untyped-def]
        async def call() -> bool:
            await asyncio.sleep(0.05)  # each call takes 50 ms
            return True

        made.append(call)
        return call

    stats = asyncio.run(run_open(new_lane, 40, 200.0, StopToken(), max_lanes=64))
    assert stats.durations.count == 40
    # 200 qps x 50 ms needs about 10 calls in flight: one lane would serialise them.
    assert len(made) > 1
    assert stats.open_loop is not None and stats.open_loop["Connections"] == len(made)
    # latency counts from the schedule: never less than the call itself
    assert stats.durations.min >= 0.049


def test_open_loop_reports_when_the_rate_cannot_be_kept() -> None:
    def new_lane():  # type: ignore[no-untyped-def]
        async def call() -> bool:
            await asyncio.sleep(0.05)
            return True

        return call

    # One lane, 50 ms per call, 200 qps asked: the calls queue up.
    stats = asyncio.run(run_open(new_lane, 20, 200.0, StopToken(), max_lanes=1))
    info = stats.open_loop
    assert info is not None
    assert info["RateKept"] is False
    assert "could not keep 200 qps" in info["Warning"]
    assert info["MaxBacklog"] > 0
    # Queued calls carry their waiting time: the last waited for ~19 calls before it.
    assert stats.durations.max >= 0.5
