"""Finding a service's knee: the highest offered rate it serves within a latency bound.

Pure: a :class:`KneePlan` says which rates to offer (a start, then an increment or a factor,
up to a maximum, optionally refined by bisection after the first failing step) and what counts
as serving (p99 within ``max_p99_ms``, errors within ``max_error_rate``). :func:`find_knee`
runs the plan with a caller-supplied ``run_step(qps, seconds) -> fortio result`` (open-loop
load from inside the mesh in the probe, anything in tests) and returns every step plus the
knee: its rate, latency and the concurrency it implies by Little's law (in flight = rate x
mean latency). Steps stop at the first failing rate: past the knee latency only grows, and
overloading a service longer than needed proves nothing more.

:func:`knee_from_document` reads a knee back from a probe's output, a JSON file of it, or a
Chaos Toolkit journal that ran the probe (what ``chaosmesh advise breaker --from-knee`` reads).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ArgumentError, LoadError
from .results import flat_summary

# A bisection step needs at least this relative gap between the last good and the first bad
# rate; below it the next rate would differ from a measured one by noise only.
_MIN_REFINE_GAP = 0.02
MAX_STEPS = 50
# A step passes only if the service completed at least this share of the offered rate:
# overloaded, a queue grows for as long as the step lasts, and a short step may end before
# its p99 shows it.
KEEP_UP_SHARE = 0.95
MAX_TOTAL_SECONDS = 600.0


class KneeError(LoadError, ArgumentError):
    """A bad knee-search argument, or a search that found no knee; ``.argument`` names the
    argument to change (as the probe spells it)."""


@dataclass(frozen=True)
class KneePlan:
    """Which rates to offer, for how long, and what passes."""

    start_qps: float
    max_qps: float
    max_p99_ms: float
    step_qps: float | None = None
    factor: float | None = None
    step_seconds: float = 2.0
    max_error_rate: float = 0.01
    refine: int = 0
    # An uncounted first run at start_qps: a fresh path opens connections and warms caches.
    warmup_seconds: float = 0.0
    max_seconds: float = 60.0
    # Per-step time on top of the load itself (API round trip, draining queued requests).
    overhead_seconds: float = 1.0

    def rates(self) -> list[float]:
        """The ascending rates before any refinement, ``max_qps`` included as the last."""
        rates: list[float] = []
        rate = self.start_qps
        while rate < self.max_qps * (1 - 1e-9) and len(rates) < MAX_STEPS:
            rates.append(round(rate, 3))
            rate = rate + self.step_qps if self.step_qps else rate * (self.factor or 2.0)
        rates.append(round(self.max_qps, 3))
        return rates

    def expected_seconds(self) -> float:
        steps = len(self.rates()) + self.refine
        warmup = self.warmup_seconds + self.overhead_seconds if self.warmup_seconds else 0.0
        return warmup + steps * (self.step_seconds + self.overhead_seconds)


def _positive(value: Any, argument: str) -> float:
    if isinstance(value, bool):
        raise KneeError(argument, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise KneeError(argument, f"must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise KneeError(argument, f"must be greater than 0, got {value!r}")
    return number


def make_plan(
    start_qps: Any,
    max_qps: Any,
    max_p99_ms: Any,
    step_qps: Any = None,
    factor: Any = None,
    step_seconds: float = 2.0,
    max_error_rate: Any = 0.01,
    refine: Any = 0,
    max_seconds: float = 60.0,
    overhead_seconds: float = 1.0,
    warmup_seconds: float = 0.0,
) -> KneePlan:
    """A checked plan; :class:`KneeError` names the first bad argument."""
    start = _positive(start_qps, "start_qps")
    top = _positive(max_qps, "max_qps")
    if top < start:
        raise KneeError("max_qps", f"must be at least start_qps ({start:g}), got {max_qps!r}")
    bound = _positive(max_p99_ms, "max_p99_ms")
    if step_qps is not None and factor is not None:
        raise KneeError("step_qps", "give step_qps (add) or factor (multiply), not both")
    step = _positive(step_qps, "step_qps") if step_qps is not None else None
    grow = None
    if step is None:
        grow = _positive(factor, "factor") if factor is not None else 1.5
        if grow <= 1.0:
            raise KneeError("factor", f"must be greater than 1, got {factor!r}")
    seconds = _positive(step_seconds, "step_duration")
    try:
        errors = float(max_error_rate) if not isinstance(max_error_rate, bool) else -1.0
    except (TypeError, ValueError):
        errors = -1.0
    if not 0.0 <= errors < 1.0:
        raise KneeError("max_error_rate", f"must be a share in [0, 1), got {max_error_rate!r}")
    if isinstance(refine, bool) or not isinstance(refine, int) or not 0 <= refine <= 10:
        raise KneeError("refine", f"must be a whole number of steps in 0..10, got {refine!r}")
    limit = _positive(max_seconds, "max_duration")
    if limit > MAX_TOTAL_SECONDS:
        raise KneeError("max_duration", f"at most {MAX_TOTAL_SECONDS:g}s, got {limit:g}s")
    plan = KneePlan(
        start_qps=start,
        max_qps=top,
        max_p99_ms=bound,
        step_qps=step,
        factor=grow,
        step_seconds=seconds,
        max_error_rate=errors,
        refine=refine,
        warmup_seconds=warmup_seconds,
        max_seconds=limit,
        overhead_seconds=overhead_seconds,
    )
    steps = len(plan.rates())
    if steps >= MAX_STEPS:
        raise KneeError(
            "max_qps",
            f"from {start:g} to {top:g} qps is more than {MAX_STEPS} steps;"
            " use a larger step_qps or factor",
        )
    if plan.expected_seconds() > limit:
        raise KneeError(
            "max_duration",
            f"{steps} steps (+{refine} to refine) of {seconds:g}s need about"
            f" {plan.expected_seconds():.0f}s, more than max_duration {limit:g}s; raise it,"
            " or take fewer or shorter steps (step_qps/factor, max_qps, step_duration)",
        )
    return plan


def summarize_step(offered_qps: float, result: Mapping[str, Any]) -> dict[str, Any]:
    """One step's numbers from a fortio result (ours or real fortio's)."""
    flat = flat_summary(dict(result))
    duration_s = float(result.get("ActualDuration") or 0) / 1e9
    hist = result.get("DurationHistogram") or {}
    open_loop = result.get("OpenLoop") or {}
    ok = round(flat["count"] * (1.0 - flat["error_rate"]))
    served = open_loop.get("ServedQPS")
    if served is None:  # not our open loop: successes over the whole run, drain included
        served = ok / duration_s if duration_s > 0 else 0.0
    return {
        "offered_qps": offered_qps,
        # Successful answers per second once the step settled: the service's throughput.
        "achieved_qps": round(float(served), 3),
        "count": flat["count"],
        "error_rate": round(flat["error_rate"], 6),
        "codes": flat["codes"],
        "p50_ms": flat["p50_ms"],
        "p99_ms": flat["p99_ms"],
        "mean_ms": round(float(hist.get("Avg") or 0.0) * 1000.0, 4),
        "min_ms": round(float(hist.get("Min") or 0.0) * 1000.0, 4),
        "max_ms": flat["max_ms"],
        "rate_kept": bool(open_loop.get("RateKept", True)),
    }


def judge(step: Mapping[str, Any], plan: KneePlan) -> str | None:
    """Why a step fails the bounds, or None when it passes."""
    if not step["count"]:
        return "no calls completed"
    problems = []
    if step["achieved_qps"] < step["offered_qps"] * KEEP_UP_SHARE:
        problems.append(
            f"served {step['achieved_qps']:g} of {step['offered_qps']:g} qps: falling behind"
        )
    if step["p99_ms"] > plan.max_p99_ms:
        problems.append(f"p99 {step['p99_ms']:g} ms > {plan.max_p99_ms:g} ms")
    if step["error_rate"] > plan.max_error_rate:
        problems.append(f"errors {step['error_rate']:.2%} > {plan.max_error_rate:.2%}")
    if problems and not step["rate_kept"]:
        problems.append("the load generator also fell behind this rate")
    return "; ".join(problems) or None


def knee_numbers(step: Mapping[str, Any], pods: int | None = None) -> dict[str, Any]:
    """The knee from its step: rate, latency and in-flight requests (Little's law)."""
    qps = float(step["offered_qps"])
    mean_s = float(step["mean_ms"]) / 1000.0
    knee = {
        "qps": qps,
        "p50_ms": step["p50_ms"],
        "p99_ms": step["p99_ms"],
        "mean_ms": step["mean_ms"],
        # Little's law: requests in flight = arrival rate x mean time in the system.
        "concurrency": round(qps * mean_s, 3),
    }
    if pods:
        knee["pods"] = pods
        knee["qps_per_pod"] = round(qps / pods, 3)
        knee["concurrency_per_pod"] = round(qps * mean_s / pods, 3)
    return knee


RunStep = Callable[[float, float], Mapping[str, Any]]


def find_knee(
    plan: KneePlan,
    run_step: RunStep,
    pods: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Run the plan; the steps, the knee and why the search stopped.

    Raises :class:`KneeError` when there is no knee to report: the first rate already fails
    (naming ``max_p99_ms`` when even the median exceeds the bound — an SLO below the service
    time — else ``start_qps``), every rate up to ``max_qps`` passes (``max_qps``), or the time
    bound ends the search before a rate fails (``max_duration``).
    """
    started = clock()
    steps: list[dict[str, Any]] = []
    # The next step is expected to take as long as the plan says, or as the last one did.
    expected = [plan.step_seconds + plan.overhead_seconds]

    def run(qps: float) -> dict[str, Any]:
        began = clock()
        step = summarize_step(qps, run_step(qps, plan.step_seconds))
        expected.append(max(expected[0], clock() - began))
        step["passed"] = (why := judge(step, plan)) is None
        step["why"] = why or "within bounds"
        steps.append(step)
        return step

    def time_left() -> bool:
        return clock() - started + expected[-1] <= plan.max_seconds

    warmup = None
    if plan.warmup_seconds > 0:
        warmup = summarize_step(plan.start_qps, run_step(plan.start_qps, plan.warmup_seconds))
    good: dict[str, Any] | None = None
    bad: dict[str, Any] | None = None
    for qps in plan.rates():
        if steps and not time_left():
            break
        step = run(qps)
        if not step["passed"]:
            bad = step
            break
        good = step
    if good is None:
        first = steps[0]
        kept_up = first["achieved_qps"] >= first["offered_qps"] * KEEP_UP_SHARE
        if first["min_ms"] > plan.max_p99_ms or (kept_up and first["p50_ms"] > plan.max_p99_ms):
            raise KneeError(
                "max_p99_ms",
                f"{plan.max_p99_ms:g} ms is below the service's own latency: at"
                f" {first['offered_qps']:g} qps (start_qps), not overloaded, its median is"
                f" {first['p50_ms']:g} ms — an SLO below the service time cannot be met at"
                " any rate",
            )
        raise KneeError(
            "start_qps",
            f"no knee at or above {first['offered_qps']:g} qps: the first step already fails"
            f" ({first['why']}); lower start_qps",
        )
    if bad is None:
        if good["offered_qps"] >= plan.max_qps:
            raise KneeError(
                "max_qps",
                f"no knee within {plan.max_qps:g} qps: every step up to it kept p99 within"
                f" {plan.max_p99_ms:g} ms and errors within {plan.max_error_rate:.2%}"
                f" (last: p99 {good['p99_ms']:g} ms); raise max_qps",
            )
        raise KneeError(
            "max_duration",
            f"stopped after {len(steps)} steps ({clock() - started:.1f}s) at"
            f" {good['offered_qps']:g} qps with no failing step yet; raise max_duration,"
            " or start nearer the knee (start_qps, step_qps/factor)",
        )
    for _ in range(plan.refine):
        low, high = float(good["offered_qps"]), float(bad["offered_qps"])
        if (high - low) / high < _MIN_REFINE_GAP or not time_left():
            break
        step = run(round((low + high) / 2.0, 3))
        if step["passed"]:
            good = step
        else:
            bad = step
    knee = knee_numbers(good, pods)
    result: dict[str, Any] = {
        "max_p99_ms": plan.max_p99_ms,
        "max_error_rate": plan.max_error_rate,
        "steps": steps,
        "knee": knee,
        "first_failing_qps": bad["offered_qps"],
        "stopped": f"{bad['offered_qps']:g} qps: {bad['why']}",
        "elapsed_s": round(clock() - started, 3),
    }
    if warmup is not None:
        result["warmup"] = warmup
    # Flat keys, for range tolerances ("target": "knee_qps").
    for key, value in knee.items():
        result[f"knee_{key}"] = value
    return result


def _looks_like_knee(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("knee"), Mapping)
        and "qps" in value["knee"]
        and "mean_ms" in value["knee"]
    )


def _outputs(journal: Mapping[str, Any]) -> list[Any]:
    """Every activity output of a journal, in the order they ran."""
    found: list[Any] = []
    steady = journal.get("steady_states") or {}
    for phase in ("before",):
        found += [p.get("output") for p in (steady.get(phase) or {}).get("probes") or []]
    found += [r.get("output") for r in journal.get("run") or [] if isinstance(r, Mapping)]
    after = (steady.get("after") or {}).get("probes") or []
    found += [p.get("output") for p in after]
    return found


def knee_from_document(document: Any, where: str = "the document") -> dict[str, Any]:
    """The knee result in a probe output, or the last one a journal recorded.

    Accepts the probe's output itself, anything that nests one under ``knee_search`` (the
    advice action's output), or a journal. ``ValueError`` says what was looked for.
    """
    if _looks_like_knee(document):
        return dict(document)
    if isinstance(document, Mapping) and _looks_like_knee(document.get("knee_search")):
        return dict(document["knee_search"])
    if isinstance(document, Mapping) and "run" in document:
        candidates = []
        for output in _outputs(document):
            if _looks_like_knee(output):
                candidates.append(output)
            elif isinstance(output, Mapping) and _looks_like_knee(output.get("knee_search")):
                candidates.append(output["knee_search"])
        if candidates:
            return dict(candidates[-1])
        raise ValueError(
            f"{where}: a journal, but no activity in it returned a knee"
            " (run the capacity_knee probe in the experiment)"
        )
    raise ValueError(
        f"{where}: neither a capacity_knee result (with 'knee': {{qps, mean_ms, ...}}) nor a"
        " journal"
    )
