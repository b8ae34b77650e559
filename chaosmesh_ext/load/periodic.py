"""The load scheduler: when to call, and how long each call took. Knows nothing of HTTP.

Two ways to drive a callable ``call() -> ok``:

- :func:`run_closed` is fortio's ``periodic`` runner: ``threads`` workers, each waiting for
  its call to finish before the next; a total ``qps`` split evenly, catching up (no sleep)
  when behind; latency measured from the actual send. Under a stalling server this hides the
  stall (coordinated omission), which is why the other mode exists.
- :func:`run_open` sends at scheduled times whatever the responses do, on as many lanes
  (connections) as the rate needs, and measures latency from the *scheduled* time, so a stall
  shows up in every request that should have been sent during it.

All workers run on one asyncio loop; a :class:`StopToken` lets another thread stop a run.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .stats import Histogram

Call = Callable[[], Awaitable[bool]]

# A sleep is cut into slices so a stop request is noticed quickly even at 1 qps.
_SLEEP_SLICE = 0.2


class StopToken:
    """Thread-safe "stop this run" flag (fortio's aborter).

    ``paused``, when given, says whether the process the run stands for is stopped (a
    SIGSTOP'd pod in a shared replica host): its calls then wait, as a frozen process's would.
    """

    def __init__(self, paused: Callable[[], bool] | None = None) -> None:
        self._event = threading.Event()
        self.paused = paused
        self.abandoned = False
        self._lock = threading.Lock()
        self._on_abandon: list[Callable[[], None]] = []

    def stop(self) -> None:
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def abandon(self) -> None:
        """Stop, and drop the calls in flight too: the run's process is gone."""
        with self._lock:
            self.abandoned = True
            callbacks, self._on_abandon = self._on_abandon, []
        self._event.set()
        for callback in callbacks:
            callback()

    def on_abandon(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the abandoning thread) when the run is abandoned; at once
        if it already is."""
        with self._lock:
            if not self.abandoned:
                self._on_abandon.append(callback)
                return
        callback()


@dataclass(frozen=True)
class Plan:
    """How many calls each worker makes (fortio's ``runQPSSetup``/``runMaxQPSSetup``)."""

    threads: int
    calls_per_thread: int  # 0 = bounded by time (or until stopped), not by count
    leftover: int  # extra calls for thread 0 with -n
    requested_qps: str
    requested_duration: str


def plan(qps: float, threads: int, exactly: int, duration: float) -> Plan:
    """Split the work as fortio does.

    ``-n`` splits ``n / c`` per thread with the remainder on thread 0. With a rate and a
    duration, ``qps * t`` calls are split and the remainder dropped. With a rate, fortio
    makes at least 2 calls and lowers the thread count so each thread makes at least 2.
    """
    use_qps = qps > 0
    requested_qps = _go_float(qps) if use_qps else "max"
    if not use_qps:
        if exactly > 0:
            return Plan(
                threads,
                exactly // threads,
                exactly % threads,
                requested_qps,
                f"exactly {exactly} calls",
            )
        return Plan(
            threads,
            0,
            0,
            requested_qps,
            format_go_duration(duration) if duration > 0 else "until stop",
        )
    if exactly <= 0 and duration <= 0:
        return Plan(threads, 0, 0, requested_qps, "until stop")
    requested_duration = format_go_duration(duration)
    num_calls = int(qps * duration)
    if exactly > 0:
        num_calls = exactly
        requested_duration = f"exactly {exactly} calls"
    if num_calls < 2:
        num_calls, threads = 2, 1
    if 2 * threads > num_calls:
        threads = num_calls // 2
    per_thread = num_calls // threads
    leftover = exactly - per_thread * threads if exactly > 0 else 0
    return Plan(threads, per_thread, leftover, requested_qps, requested_duration)


@dataclass
class RunStats:
    """What the scheduler measured; the HTTP side adds codes and sizes."""

    durations: Histogram
    errors: Histogram
    start_wall: float
    elapsed: float
    threads: int
    plan: Plan
    open_loop: dict[str, Any] | None = field(default=None)


async def _sleep_until(target: float, stop: StopToken) -> bool:
    """Sleep until perf_counter() reaches ``target``; False if stopped meanwhile."""
    while True:
        if stop.stopped:
            return False
        left = target - time.perf_counter()
        if left <= 0:
            return True
        await asyncio.sleep(min(left, _SLEEP_SLICE))


def _jitter(d: float) -> float:
    # fortio: +/- 10 % of the sleep, uniformly.
    return d * (random.random() - 0.5) * 0.2


async def run_closed(
    calls: Sequence[Call],
    p: Plan,
    qps: float,
    duration: float,
    exactly: int,
    stop: StopToken,
    resolution: float = 0.001,
    nocatchup: bool = False,
    jitter: bool = False,
    uniform: bool = False,
    offset: float = 0.0,
) -> RunStats:
    """fortio's closed loop over ``len(calls) == p.threads`` workers."""
    durations = Histogram(offset, resolution)
    errors = Histogram(offset, resolution)
    start_wall = time.time()
    start = time.perf_counter()
    per_thread_qps = qps / p.threads if qps > 0 else 0.0
    has_duration = duration > 0 and exactly <= 0
    end = start + duration

    async def worker(tid: int) -> None:
        call = calls[tid]
        num = p.calls_per_thread + (p.leftover if tid == 0 else 0)
        dur = Histogram(offset, resolution)
        err = Histogram(offset, resolution)
        t_start = start
        pc = time.perf_counter
        record = dur.record
        try:
            if per_thread_qps <= 0:
                # Max speed: the hot path, kept lean.
                if exactly > 0:
                    for _ in range(num):
                        if stop.stopped:
                            break
                        t0 = pc()
                        ok = await call()
                        dt = pc() - t0
                        record(dt)
                        if not ok:
                            err.record(dt)
                    return
                while not stop.stopped:
                    t0 = pc()
                    if has_duration and t0 > end:
                        break
                    ok = await call()
                    dt = pc() - t0
                    record(dt)
                    if not ok:
                        err.record(dt)
                return
            if uniform:
                between = 1.0 / per_thread_qps
                t_start = start + between - between / p.threads * (p.threads - tid)
                if not await _sleep_until(t_start, stop):
                    return
            i = 0
            bounded = num > 0
            while True:
                t0 = pc()
                if not bounded and has_duration and t0 > end:
                    break
                if bounded and has_duration and t0 > end and i >= 2 and i != num - 1:
                    break  # fortio: "only did i out of n calls before reaching duration"
                ok = await call()
                dt = pc() - t0
                record(dt)
                if not ok:
                    err.record(dt)
                while True:
                    i += 1
                    if bounded and i >= num:
                        return
                    if duration > 0 and bounded:
                        # fortio spreads the calls so the last lands at the end of -t
                        target = (
                            (i + i / (num - 1)) / per_thread_qps if num > 1 else i / per_thread_qps
                        )
                    else:
                        target = i / per_thread_qps
                    sleep = t_start + target - pc()
                    if nocatchup and sleep < 0:
                        continue  # skip the call we are too late for
                    if jitter:
                        sleep += _jitter(sleep)
                    if sleep > 0 and not await _sleep_until(pc() + sleep, stop):
                        return
                    if stop.stopped:
                        return
                    break
        finally:
            durations.transfer(dur)
            errors.transfer(err)

    await asyncio.gather(*(worker(t) for t in range(p.threads)))
    elapsed = time.perf_counter() - start
    return RunStats(durations, errors, start_wall, elapsed, p.threads, p)


async def run_open(
    new_lane: Callable[[], Call],
    total: int,
    qps: float,
    stop: StopToken,
    max_lanes: int,
    initial_lanes: int = 1,
    resolution: float = 0.001,
    requested_duration: str = "",
    offset: float = 0.0,
) -> RunStats:
    """Send ``total`` calls at ``qps``, each at its scheduled time, on up to ``max_lanes`` lanes.

    A call whose lane is not free waits in a queue, and its latency still counts from its
    scheduled time: that waiting is exactly what a user of an overloaded service sees.
    """
    loop = asyncio.get_running_loop()
    durations = Histogram(offset, resolution)
    errors = Histogram(offset, resolution)
    lags = Histogram(0.0, resolution)  # actual send - scheduled send
    idle: deque[Call] = deque(new_lane() for _ in range(min(initial_lanes, max_lanes)))
    lanes = len(idle)
    backlog: deque[float] = deque()
    max_backlog = 0
    inflight: set[asyncio.Task[None]] = set()
    interval = 1.0 / qps
    pc = time.perf_counter
    start_wall = time.time()
    start = pc()
    # Completions in the second half of the schedule: in steady state they match arrivals,
    # so this is what the target kept up with (its capacity, once overloaded).
    window_end = start + total * interval
    window_start = start + total * interval / 2
    served = 0

    async def drive(lane: Call, scheduled: float) -> None:
        nonlocal served
        while True:
            lags.record(max(pc() - scheduled, 0.0))
            ok = await lane()
            done = pc()
            if ok and window_start <= done <= window_end:
                served += 1
            dt = done - scheduled
            durations.record(dt)
            if not ok:
                errors.record(dt)
            if backlog and not stop.stopped:
                scheduled = backlog.popleft()
                continue
            idle.append(lane)
            return

    def dispatch(scheduled: float) -> None:
        nonlocal lanes, max_backlog
        if idle:
            lane = idle.pop()
        elif lanes < max_lanes:
            lanes += 1
            lane = new_lane()
        else:
            backlog.append(scheduled)
            max_backlog = max(max_backlog, len(backlog))
            return
        task = loop.create_task(drive(lane, scheduled))
        inflight.add(task)
        task.add_done_callback(inflight.discard)

    i = 0
    while i < total and not stop.stopped:
        now = pc()
        # Timers fire late by up to a millisecond: send everything already due on each wake-up.
        while i < total and start + i * interval <= now:
            dispatch(start + i * interval)
            i += 1
        if i < total:
            await _sleep_until(start + i * interval, stop)
    while inflight:
        await asyncio.gather(*list(inflight))
    elapsed = pc() - start
    sent = durations.count
    lag = lags.export([50, 99])
    lag_p99 = lag["Percentiles"][1]["Value"] if lag["Percentiles"] else 0.0
    achieved = sent / elapsed if elapsed > 0 else 0.0
    # The rate was kept when sends left on time: the schedule, not the responses, sets the rate.
    late_limit = max(0.002, 2 * interval)
    kept = lag_p99 <= late_limit and (max_backlog == 0)
    warning = None
    if not kept:
        warning = f"could not keep {_go_float(qps)} qps: p99 send lag {lag_p99 * 1000:.1f} ms" + (
            f", up to {max_backlog} calls waited for one of {lanes} connections"
            if max_backlog
            else ""
        )
    info = {
        "RequestedQPS": qps,
        "SendQPS": round(achieved, 3),
        # Successful completions per second over the schedule's second half.
        "ServedQPS": round(served / (window_end - window_start), 3) if total > 1 else None,
        "Connections": lanes,
        "MaxConnections": max_lanes,
        "MaxBacklog": max_backlog,
        "SendLagP50": lag["Percentiles"][0]["Value"] if lag["Percentiles"] else 0.0,
        "SendLagP99": lag_p99,
        "SendLagMax": lags.max,
        "RateKept": kept,
        "Warning": warning,
        "LatencyFrom": "scheduled send time",
    }
    p = Plan(lanes, total, 0, _go_float(qps), requested_duration or f"exactly {total} calls")
    return RunStats(durations, errors, start_wall, elapsed, lanes, p, info)


def open_loop_lanes(qps: float, timeout: float, connections: int) -> int:
    """Enough connections to cover rate x worst-case latency (the request timeout)."""
    return max(connections, min(math.ceil(qps * timeout) + connections, 512))


def _go_float(v: float) -> str:
    # fortio prints RequestedQPS with %.9g
    return f"{v:.9g}"


def format_go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` (``5s``, ``1m30s``, ``100ms``, ``1.5µs``)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    neg = ns < 0
    ns = abs(ns)
    sign = "-" if neg else ""
    if ns < 1000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(ns / 1e3)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_trim(ns / 1e6)}ms"
    hours, rem = divmod(ns, 3600 * 10**9)
    minutes, rem = divmod(rem, 60 * 10**9)
    secs = _trim_exact(rem)
    out = ""
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return f"{sign}{out}{secs}s"


def _trim(v: float) -> str:
    s = f"{v:.9f}".rstrip("0").rstrip(".")
    return s


def _trim_exact(ns: int) -> str:
    whole, frac = divmod(ns, 10**9)
    if not frac:
        return str(whole)
    return f"{whole}." + f"{frac:09d}".rstrip("0")
