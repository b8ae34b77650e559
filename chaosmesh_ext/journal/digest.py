"""Compact readings of what activities returned, for the summary and the report.

A probe's raw output is rarely readable as it is: fortio's result has fifty keys, breaker
counters are cumulative, a rollout nests its steps. Each reader here recognises one shape
(by its keys, never by the probe's name, so other extensions' look-alikes work too) and says
what a person wants from it in one line:

- load run: ``http://nginx-svc/: 20 calls · p99 4.7 ms · errors 0.0% · 200:20``
- ``breaker_stats``: the counters that matter, with the change since the previous reading of
  the same host and, when load ran in between, per call (``rq_retry 60 (+60, 3.0 per call)``)
- ``progressive_rollout``: verdict, the weight the canary reached, one line per step
- ``split_follows_weights``: deviation, declared and observed split
- ``capacity_knee`` (also nested in ``apply_advised_breaker``): the knee, then one line per
  step; the advised breaker's main fields
- an action's change (``VirtualService default/tomcat-vs changed``) and ``restore``'s objects

Pure: takes ``model`` objects, returns text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chaosmesh_ext.journal import text
from chaosmesh_ext.journal.model import Journal, RunRecord

# Breaker counters always shown (retries, totals, 5xx, pending overflow), then any
# other counter that is not 0.
CORE_COUNTERS = ("rq_retry", "rq_total", "rq_5xx", "pending_overflow")
# Gauges: a change since the last reading says nothing about the calls in between.
_GAUGES = {"rq_active", "rq_pending_active", "cx_active", "ejections_active"}
# Counted for every request that waited for a connection: noise next to the others.
_QUIET = {"rq_pending_total", "cx_total"}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def number(value: Any) -> str:
    """A number as a person writes it: ``4.76``, ``2476``, ``0.007``, ``1e+15``."""
    v = _num(value)
    if v is None:
        return text.short(value, 20)
    if v == int(v) and abs(v) < 1e12:
        return str(int(v))
    return f"{v:.4g}"


def _fractions(split: dict[str, Any]) -> str:
    return " ".join(f"{k} {v * 100:.1f}%" for k, v in sorted(split.items()) if _num(v) is not None)


# --- recognisers -------------------------------------------------------------------------


def breaker_counters(output: Any) -> dict[str, int] | None:
    """The counters of a ``breaker_stats`` result (or any dict shaped like it), else None."""
    if not isinstance(output, dict) or "rq_total" not in output:
        return None
    if not ("pending_overflow" in output or "rq_retry" in output):
        return None
    counters = {
        str(k): int(v)
        for k, v in output.items()
        if _num(v) is not None and k not in ("port",) and not str(k).endswith("_ms")
    }
    return counters or None


def rollout(output: Any) -> dict[str, Any] | None:
    """A ``progressive_rollout`` result, else None."""
    if (
        isinstance(output, dict)
        and isinstance(output.get("promoted"), bool)
        and isinstance(output.get("steps"), list)
    ):
        return output
    return None


def split_check(output: Any) -> dict[str, Any] | None:
    """A ``split_follows_weights`` result, else None."""
    if (
        isinstance(output, dict)
        and _num(output.get("max_deviation")) is not None
        and isinstance(output.get("declared"), dict)
        and isinstance(output.get("observed"), dict)
    ):
        return output
    return None


def knee_search(output: Any) -> dict[str, Any] | None:
    """A ``capacity_knee`` result, or the one an advice action nests, else None."""
    if isinstance(output, dict) and isinstance(output.get("knee_search"), dict):
        output = output["knee_search"]
    if (
        isinstance(output, dict)
        and isinstance(output.get("knee"), dict)
        and isinstance(output.get("steps"), list)
    ):
        return output
    return None


def knee_line(found: dict[str, Any]) -> str:
    """``knee 120 qps · p99 172 ms · 14.6 in flight · then 140 qps: served 118 ...``."""
    knee = found["knee"]
    return (
        f"knee {number(knee.get('qps'))} qps · p99 {text.ms(_num(knee.get('p99_ms')))} ms"
        f" · {number(knee.get('concurrency'))} in flight · then {found.get('stopped', '?')}"
    )


def knee_lines(found: dict[str, Any]) -> list[str]:
    lines = [knee_line(found)]
    for step in found["steps"]:
        if isinstance(step, dict):
            lines.append(
                f"{'✓' if step.get('passed') else '✗'} {number(step.get('offered_qps')):>6} qps"
                f"  served {number(step.get('achieved_qps'))}"
                f"  p99 {text.ms(_num(step.get('p99_ms')))} ms"
                f"  errors {text.percent(_num(step.get('error_rate')))}"
            )
    return lines


def advice_line(output: Any) -> str | None:
    """The main fields of an advised breaker (``apply_advised_breaker``, ``advise_breaker``)."""
    advice = output.get("advice", output) if isinstance(output, dict) else None
    if not isinstance(advice, dict) or not isinstance(advice.get("fields"), list):
        return None
    policy = advice.get("trafficPolicy")
    if not isinstance(policy, dict):
        return None
    pool = policy.get("connectionPool") or {}
    shown = {**(pool.get("tcp") or {}), **(pool.get("http") or {})}
    outlier = policy.get("outlierDetection")
    parts = [f"{k} {v}" for k, v in shown.items()]
    parts.append(
        f"maxEjectionPercent {outlier.get('maxEjectionPercent')}"
        if isinstance(outlier, dict)
        else "no outlier detection"
    )
    return "breaker: " + " · ".join(parts)


def _change(output: Any) -> str | None:
    """An action's change of one object: ``VirtualService ns/name changed``."""
    if not isinstance(output, dict) or not isinstance(output.get("object"), str):
        return None
    if "changed" not in output and "created" not in output:
        return None
    if output.get("created"):
        verb = "created"
    elif output.get("changed") is False:
        verb = "unchanged (already so)"
    else:
        verb = "changed"
    return f"{output['object']} {verb}"


def _process(output: Any) -> str | None:
    """A process provider's result: ``exit 0 · stdout: /tmp``."""
    if not isinstance(output, dict) or set(output) != {"status", "stdout", "stderr"}:
        return None
    parts = [f"exit {output['status']}"]
    for stream in ("stdout", "stderr"):
        said = str(output[stream] or "").strip()
        if said:
            parts.append(f"{stream}: {text.short(said.splitlines()[-1], 50)}")
    return " · ".join(parts)


def restored_objects(output: Any) -> list[tuple[str, str, str]] | None:
    """``restore``'s result as (result, object, detail) rows, else None."""
    if not isinstance(output, dict) or not isinstance(output.get("objects"), list):
        return None
    rows = []
    for item in output["objects"]:
        if isinstance(item, dict):
            rows.append(
                (
                    str(item.get("result") or "?"),
                    str(item.get("object") or "?"),
                    str(item.get("detail") or ""),
                )
            )
    return rows


# --- every load a run made -----------------------------------------------------------------


@dataclass(frozen=True)
class LoadNumbers:
    """The headline numbers of one load the run made: a probe's, or a rollout step's guard."""

    source: str  # the activity's name (with the step for a rollout)
    p99_ms: float | None
    error_rate: float | None


def all_loads(journal: Journal) -> list[LoadNumbers]:
    """Every load of the run — hypothesis, method, rollbacks, and each guard load of a
    ``progressive_rollout`` — so "worst errors" never leaves one out."""
    found = [
        LoadNumbers(r.name, r.load.p99_ms, r.load.error_rate)
        for _, r in journal.load_results()
        if r.load
    ]
    found += [
        LoadNumbers(r.name, r.load.p99_ms, r.load.error_rate) for r in journal.rollbacks if r.load
    ]
    for record in journal.method + journal.rollbacks:
        steps = rollout(record.output)
        for step in (steps or {}).get("steps") or []:
            if isinstance(step, dict):
                found.append(
                    LoadNumbers(
                        f"{record.name} at {number(step.get('canary_weight'))}%",
                        _num(step.get("p99_ms")),
                        _num(step.get("error_rate")),
                    )
                )
    return found


# --- breaker readings across a journal -----------------------------------------------------


@dataclass(frozen=True)
class BreakerReading:
    """One ``breaker_stats`` result, set against the previous reading of the same host."""

    phase: str
    record: RunRecord
    host: str
    counters: dict[str, int]
    delta: dict[str, int] | None  # None for the first reading of the host
    calls: int | None  # load calls to the host between the two readings

    def per_call(self, key: str) -> float | None:
        if self.delta is None or not self.calls:
            return None
        return self.delta.get(key, 0) / self.calls

    def shown(self) -> list[str]:
        """Counter names worth a column: the core ones, then any that is not 0."""
        extra = [
            k
            for k, v in self.counters.items()
            if k not in CORE_COUNTERS
            and k not in _GAUGES
            and k not in _QUIET
            and (v or (self.delta or {}).get(k))
            and not k.startswith("cx_")
        ]
        return [k for k in CORE_COUNTERS if k in self.counters] + extra


def _ordered(journal: Journal) -> list[tuple[str, RunRecord]]:
    """Every record in the order it ran: hypothesis before, method (and during), after."""
    found: list[tuple[str, RunRecord]] = []
    if journal.before:
        found += [("before", r) for r in journal.before.probes]
    found += [("during", r) for r in journal.method]
    for hyp in journal.during:
        found += [("during", r) for r in hyp.probes]
    if journal.after:
        found += [("after", r) for r in journal.after.probes]
    found.sort(key=lambda item: item[1].start.timestamp() if item[1].start else 0.0)
    return found


def _short_host(value: str) -> str:
    host = urlsplit(value).hostname if "//" in value else value
    return (host or value).split(".")[0].split("|")[-1]


def breaker_readings(journal: Journal) -> list[BreakerReading]:
    """Every breaker reading of the journal with its change since the last one of its host."""
    readings: list[BreakerReading] = []
    last: dict[str, dict[str, int]] = {}
    calls: dict[str, int] = {}
    for phase, record in _ordered(journal):
        if record.load and record.load.count:
            url = record.load.url or str(record.arguments.get("url") or "")
            target = _short_host(url) if url else None
            for host in last:
                # Load whose target is unknown may have gone anywhere: count it.
                if target is None or target == host:
                    calls[host] = calls.get(host, 0) + record.load.count
            continue
        counters = breaker_counters(record.output)
        if counters is None:
            continue
        out = record.output if isinstance(record.output, dict) else {}
        host = _short_host(str(out.get("host") or record.arguments.get("host") or "?"))
        before = last.get(host)
        delta = (
            None
            if before is None
            else {k: v - before.get(k, 0) for k, v in counters.items() if k not in _GAUGES}
        )
        readings.append(
            BreakerReading(
                phase, record, host, counters, delta, calls.get(host) if before else None
            )
        )
        last[host] = counters
        calls[host] = 0
    return readings


def breaker_line(reading: BreakerReading) -> str:
    """``nginx-svc: rq_retry 60 (+60, 3.0 per call) · rq_total 120 (+80) · ...``."""
    parts = []
    for key in reading.shown():
        value = f"{key} {reading.counters[key]}"
        change = (reading.delta or {}).get(key, 0)
        per = reading.per_call(key) if key == "rq_retry" else None
        if per is not None:
            value += f" ({change:+d}, {per:.1f} per call)"
        elif change:
            value += f" ({change:+d})"
        parts.append(value)
    if reading.delta is None:
        since = "first reading"
    else:
        since = f"{reading.calls or 0} calls since the last reading"
    return f"{reading.host}: " + " · ".join(parts) + f"  [{since}]"


# --- one record ----------------------------------------------------------------------------


def load_line(record: RunRecord) -> str | None:
    load = record.load
    if load is None:
        return None
    parts = [
        f"{'?' if load.count is None else load.count} calls",
        f"p99 {text.ms(load.p99_ms)} ms",
        f"errors {text.percent(load.error_rate)}",
        text.codes(load),
    ]
    return " · ".join(parts)


def rollout_lines(output: dict[str, Any]) -> list[str]:
    """Verdict first, then one line per step."""
    steps = [s for s in output.get("steps") or [] if isinstance(s, dict)]
    reached = output.get("max_canary_weight")
    if output.get("promoted"):
        head = f"promoted: canary at {number(reached)}% after {len(steps)} step(s)"
    elif output.get("halted_at") is not None:
        failing = next((s for s in steps if s.get("passed") is False), {})
        why = "; ".join(str(f) for f in failing.get("failures") or []) or "guard failed"
        head = f"halted at {number(output['halted_at'])}% ({why})"
        if output.get("rolled_back_to"):
            head += f", all traffic back to {output['rolled_back_to']}"
    else:
        head = f"not promoted: canary reached {number(reached)}%"
    head += f" · max canary weight {number(reached)}%"
    lines = [head]
    for step in steps:
        mark = "✓" if step.get("passed") else "✗"
        lines.append(
            f"{mark} {number(step.get('canary_weight')):>3}% canary  "
            f"errors {text.percent(_num(step.get('error_rate')))}  "
            f"p99 {text.ms(_num(step.get('p99_ms')))} ms  {step_codes(step)}"
        )
    return lines


def step_codes(step: dict[str, Any]) -> str:
    """A rollout step's response codes, ``200:88 503:12``."""
    codes = step.get("codes")
    if not isinstance(codes, dict):
        return "-"
    return " ".join(f"{c}:{n}" for c, n in sorted(codes.items())) or "-"


def split_sides(output: dict[str, Any]) -> str:
    """``declared v1 90.0% v2 10.0% · observed v1 89.3% v2 10.7% (n 1000)``."""
    n = f" · {number(output['n'])} calls" if _num(output.get("n")) is not None else ""
    return (
        f"declared {_fractions(output['declared'])} · observed {_fractions(output['observed'])}{n}"
    )


def split_check_line(output: dict[str, Any]) -> str:
    deviation = float(output["max_deviation"])
    return f"max deviation {deviation * 100:.1f} pts · {split_sides(output)}"


def lines(record: RunRecord, breaker: BreakerReading | None = None) -> list[str]:
    """What ``record`` returned, in as few lines as it takes (none for no output)."""
    if record.error or record.output is None:
        return []
    output = record.output
    if breaker is not None:
        return [breaker_line(breaker)]
    found = rollout(output)
    if found is not None:
        return rollout_lines(found)
    check = split_check(output)
    if check is not None:
        return [split_check_line(check)]
    load = load_line(record)
    if load is not None:
        # The URL as the load called it (after substitution): "${base}/x" mistakes show here.
        url = record.load.url if record.load else None
        return [f"{url}: {load}" if url else load]
    found_knee = knee_search(output)
    advised = advice_line(output)
    if found_knee is not None or advised is not None:
        change = _change(output.get("change"))
        return [
            *(knee_lines(found_knee) if found_knee is not None else []),
            *([advised] if advised is not None else []),
            *([change] if change is not None else []),
        ]
    restored = restored_objects(output)
    if restored is not None:
        if not restored:
            return ["nothing to restore"]
        return [f"{res} {obj}" + (f": {detail}" if detail else "") for res, obj, detail in restored]
    change = _change(output)
    if change is not None:
        # What the action warned about the object it wrote (istio.advice).
        warnings = output.get("warnings") if isinstance(output.get("warnings"), list) else []
        return [change] + [f"warning: {w}" for w in warnings]
    process = _process(output)
    if process is not None:
        return [process]
    if record.split:
        return [_fractions(record.split)]
    return [text.short(output, 70)]


def value(record: RunRecord) -> str:
    """The probe's value in a few words, for the steady-state line."""
    load = load_line(record)
    if load is not None:
        return load
    check = split_check(record.output)
    if check is not None:
        return split_check_line(check)
    found_knee = knee_search(record.output)
    if found_knee is not None:
        return knee_line(found_knee)
    counters = breaker_counters(record.output)
    if counters is not None:
        return " ".join(f"{k} {counters[k]}" for k in CORE_COUNTERS if k in counters)
    out = record.output
    if _num(out) is not None:
        return number(out)
    return text.short(out, 30)


def _bound(values: Any) -> str:
    """A range tolerance as ``[0, 50]``, ``>= 1`` or ``<= 5000``."""
    if isinstance(values, list | tuple) and len(values) == 2:
        low, high = (_num(v) for v in values)
        if low is not None and high is not None:
            # Experiments write "at least" as a range to a huge number.
            if high >= 1e9:
                return f">= {number(low)}"
            return f"[{number(low)}, {number(high)}]"
    return text.short(values, 30)


def _call(provider: Any) -> str:
    if not isinstance(provider, dict):
        return "?"
    args = provider.get("arguments")
    # chaoslib writes the probe's value into the tolerance's arguments: leave it out.
    shown = {k: v for k, v in args.items() if k != "value"} if isinstance(args, dict) else {}
    name = str(provider.get("func") or "?")
    return f"{name}({text.arguments(shown, 70)})" if shown else name


def tolerance(record: RunRecord) -> str:
    """The probe's value against its tolerance, e.g. ``p99_ms 9 within [0, 50]``."""
    tol, out = record.tolerance, record.output
    if record.error:
        return f"error: {record.error}"
    if isinstance(tol, dict):
        kind = tol.get("type")
        target = tol.get("target")
        label = f"{target} " if target else ""
        picked = out.get(target) if isinstance(out, dict) and target else out
        if kind == "range":
            if target:
                shown = number(picked)
            else:
                shown = value(record) if isinstance(out, dict) else number(out)
            extra = ""
            check = split_check(out)
            if check is not None and target:
                extra = f" ({split_sides(check)})"
            return f"{label}{shown} vs range {_bound(tol.get('range'))}{extra}"
        if kind == "probe":
            return f"{value(record)} checked by {_call(tol.get('provider'))}"
        if kind in ("regex", "jsonpath"):
            pattern = tol.get("pattern") or tol.get("path")
            return f"{label}{text.short(picked, 20)} vs {kind} {text.short(pattern, 30)}"
        return f"{text.short(out, 30)} vs {text.short(tol, 30)}"
    if isinstance(tol, list) and len(tol) == 2:
        return f"{text.short(_status_value(out), 20)} vs range {_bound(tol)}"
    if isinstance(tol, list):
        return f"{text.short(_status_value(out), 20)} vs one of {text.short(tol, 30)}"
    if tol is None:
        return value(record) if isinstance(out, dict) else text.short(out, 40)
    return f"{text.short(_status_value(out), 20)} vs {text.short(tol, 30)}"


def _status_value(out: Any) -> Any:
    # chaoslib compares a dict with "status" (process/http providers) by that key.
    if isinstance(out, dict) and "status" in out:
        return out["status"]
    return out
