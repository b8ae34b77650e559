"""fortio's statistics: a counter and a fixed-bucket histogram, exported and printed as fortio does.

Numbers must match fortio's to the last digit so a run on the embedded mesh and one inside a
cluster compare: same bucket edges (in units of the resolution, 1 ms by default), same
``]start, end]`` intervals, same linear interpolation for percentiles. Memory is constant
(one int per bucket), so a million requests cost nothing extra.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

# fortio stats.histogramBucketValues: edges in units of the divider.
BUCKET_VALUES: tuple[int, ...] = (
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
    12, 14, 16, 18, 20,
    25, 30, 35, 40, 45, 50,
    60, 70, 80, 90, 100,
    120, 140, 160, 180, 200,
    250, 300, 350, 400, 450, 500,
    600, 700, 800, 900, 1000,
    2000, 3000, 4000, 5000, 7500, 10000,
    20000, 30000, 40000, 50000, 75000, 100000,
)  # fmt: skip
NUM_VALUES = len(BUCKET_VALUES)
NUM_BUCKETS = NUM_VALUES + 1  # bucket 0 is "<= first value", the last is "> last value"
_FIRST = float(BUCKET_VALUES[0])
_LAST = float(BUCKET_VALUES[-1])
_ARRAY_MAX = 1000
_ARRAY_MAX_INDEX = BUCKET_VALUES.index(_ARRAY_MAX)


def _build_lookup() -> list[int]:
    # Constant-time bucket index for integer scaled values below 1000, as fortio's val2Bucket.
    table = [0] * _ARRAY_MAX
    idx = 0
    for i in range(_ARRAY_MAX):
        if i >= BUCKET_VALUES[idx]:
            idx += 1
        table[i] = idx
    return table


_VAL2BUCKET = _build_lookup()


def bucket_index(scaled: float) -> int:
    """Bucket for a value already scaled by offset and divider (fortio's ``record``)."""
    if scaled <= _FIRST:
        return 0
    if scaled > _LAST:
        return NUM_BUCKETS - 1
    sv = int(scaled)
    # Intervals are open on the left: a value exactly on an edge belongs to the bucket below.
    if scaled - sv < 1e-12:
        sv -= 1
    if sv < _ARRAY_MAX:
        return _VAL2BUCKET[sv]
    for i in range(_ARRAY_MAX_INDEX, NUM_VALUES):
        if BUCKET_VALUES[i] > sv:
            return i
    return NUM_BUCKETS - 1  # unreachable: sv <= last value


class Counter:
    """Count, min, max, sum and sum of squares (fortio ``stats.Counter``)."""

    __slots__ = ("count", "max", "min", "sum", "sum_sq")

    def __init__(self) -> None:
        self.count = 0
        self.min = 0.0
        self.max = 0.0
        self.sum = 0.0
        self.sum_sq = 0.0

    def record(self, v: float) -> None:
        if self.count == 0:
            self.min = self.max = v
        elif v < self.min:
            self.min = v
        elif v > self.max:
            self.max = v
        self.count += 1
        self.sum += v
        self.sum_sq += v * v

    def avg(self) -> float:
        return self.sum / self.count if self.count else 0.0

    def stddev(self) -> float:
        if not self.count:
            return 0.0
        sigma = (self.sum_sq - self.sum * self.sum / self.count) / self.count
        return math.sqrt(sigma) if sigma > 0 else 0.0

    def transfer(self, src: Counter) -> None:
        """Merge ``src`` into this counter and reset it (fortio ``Transfer``)."""
        if src.count == 0:
            return
        if self.count == 0:
            self.min, self.max = src.min, src.max
        else:
            self.min = min(self.min, src.min)
            self.max = max(self.max, src.max)
        self.count += src.count
        self.sum += src.sum
        self.sum_sq += src.sum_sq
        src.__init__()  # type: ignore[misc]


class Histogram(Counter):
    """fortio ``stats.Histogram``: a counter plus fixed buckets over ``(v - offset) / divider``."""

    __slots__ = ("divider", "hdata", "offset")

    def __init__(self, offset: float = 0.0, divider: float = 0.001) -> None:
        super().__init__()
        if divider <= 0:
            raise ValueError(f"histogram resolution must be > 0, got {divider}")
        self.offset = offset
        self.divider = divider
        self.hdata = [0] * NUM_BUCKETS

    def record(self, v: float) -> None:
        # Inlined counter update: this runs once per request on the hot path.
        if self.count == 0:
            self.min = self.max = v
        elif v < self.min:
            self.min = v
        elif v > self.max:
            self.max = v
        self.count += 1
        self.sum += v
        self.sum_sq += v * v
        self.hdata[bucket_index((v - self.offset) / self.divider)] += 1

    def transfer(self, src: Counter) -> None:
        if isinstance(src, Histogram):
            for i, n in enumerate(src.hdata):
                self.hdata[i] += n
            src.hdata = [0] * NUM_BUCKETS
        super().transfer(src)

    def export(self, percentiles: Iterable[float] = ()) -> dict[str, Any]:
        """fortio's ``HistogramData`` JSON, with ``Percentiles`` for the given list."""
        data: list[dict[str, Any]] = []
        res: dict[str, Any] = {
            "Count": self.count,
            "Min": self.min,
            "Max": self.max,
            "Sum": self.sum,
            "Avg": self.avg(),
            "StdDev": self.stddev(),
            "Data": None,
            "Percentiles": None,
        }
        last_idx = max((i for i, n in enumerate(self.hdata) if n), default=-1)
        if last_idx == -1:
            return res
        prev = BUCKET_VALUES[0]
        total = 0
        for i in range(last_idx + 1):
            n = self.hdata[i]
            if n == 0:
                if i < NUM_VALUES:
                    prev = BUCKET_VALUES[i]
                continue
            total += n
            start = self.min if not data else self.divider * prev + self.offset
            if i < NUM_VALUES:
                end = self.divider * BUCKET_VALUES[i] + self.offset
                prev = BUCKET_VALUES[i]
            else:
                end = self.max
            data.append(
                {"Start": start, "End": end, "Percent": 100.0 * total / self.count, "Count": n}
            )
        data[-1]["End"] = self.max
        res["Data"] = data
        plist = list(percentiles)
        if plist:
            res["Percentiles"] = [
                {"Percentile": p, "Value": calc_percentile(res, p)} for p in plist
            ]
        return res


def calc_percentile(h: dict[str, Any], percentile: float) -> float:
    """fortio's ``HistogramData.CalcPercentile`` on exported histogram JSON."""
    data = h.get("Data") or []
    if not data:
        return 0.0
    if percentile >= 100:
        return float(h["Max"])
    pp = 100.0 / h["Count"]
    if percentile <= pp:
        return float(h["Min"])
    for cur in data:
        if percentile <= cur["Percent"]:
            return float(
                cur["Start"]
                + (percentile - pp) / (cur["Percent"] - pp) * (cur["End"] - cur["Start"])
            )
        pp = cur["Percent"]
    return float(h["Max"])


def subtract(h: dict[str, Any], part: dict[str, Any] | None) -> dict[str, Any]:
    """Exported histogram ``h`` without the calls of ``part``, a histogram of some of them.

    fortio keeps every call in ``DurationHistogram`` and the failed ones again in
    ``ErrorsDurationHistogram``; this gives the successful calls' histogram (e.g. the latency
    of the requests a circuit breaker admitted, without the ones it shed). Both share bucket
    edges, except that each clips its first and last bucket to its own Min and Max, so every
    bucket of ``part`` lies inside one bucket of ``h``. Min and Max of the result are its
    outer bucket edges (the exact values are not recoverable).
    """
    data = [dict(b) for b in h.get("Data") or []]
    for b in (part or {}).get("Data") or []:
        middle = (float(b["Start"]) + float(b["End"])) / 2.0
        home = next(
            (
                d
                for i, d in enumerate(data)
                if (d["Start"] < middle or (i == 0 and d["Start"] <= middle)) and middle <= d["End"]
            ),
            None,
        )
        if home is None:
            raise ValueError(f"histogram bucket {b} lies outside the whole histogram")
        home["Count"] -= int(b["Count"])
    kept = [d for d in data if d["Count"] > 0]
    count = sum(int(d["Count"]) for d in kept)
    out: dict[str, Any] = {"Count": count, "Min": 0.0, "Max": 0.0, "Data": None}
    if not count:
        return out
    total = 0
    for d in kept:
        total += int(d["Count"])
        d["Percent"] = 100.0 * total / count
    out.update(Min=float(kept[0]["Start"]), Max=float(kept[-1]["End"]), Data=kept)
    return out


def percentile_value(h: dict[str, Any], percentile: float) -> float:
    """The value for ``percentile``: from ``Percentiles`` when listed, else computed."""
    for p in h.get("Percentiles") or []:
        if abs(float(p["Percentile"]) - percentile) < 1e-9:
            return float(p["Value"])
    return calc_percentile(h, percentile)


def parse_percentiles(text: str) -> list[float]:
    """fortio's ``-p`` list, e.g. ``"50,75,90,99,99.9"``."""
    out: list[float] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"percentile {part!r} is not a number") from None
        if not 0 <= value <= 100:
            raise ValueError(f"percentile {part} must be between 0 and 100")
        out.append(value)
    return out


def go_g(v: float, precision: int | None = None) -> str:
    """Go's ``%g`` (shortest round-trip digits) or ``%.Ng`` formatting of a float."""
    if precision is not None:
        return f"{v:.{precision}g}"  # C's %.Ng, which Go's matches (e+06 style exponents)
    if v == 0:
        return "0"
    sign, digits_t, exp10 = Decimal(repr(float(v))).normalize().as_tuple()
    digits = "".join(map(str, digits_t))
    assert isinstance(exp10, int)
    exp = exp10 + len(digits) - 1  # exponent of the first digit
    neg = "-" if sign else ""
    # With shortest precision Go switches to exponent form when exp < -4 or exp >= 6.
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{neg}0.{'0' * (-exp - 1)}{digits}"
    if len(digits) <= exp + 1:
        return f"{neg}{digits}{'0' * (exp + 1 - len(digits))}"
    return f"{neg}{digits[: exp + 1]}.{digits[exp + 1 :]}"


def counter_line(msg: str, h: dict[str, Any] | None) -> str:
    """fortio's ``Counter.Print`` line for an exported counter or histogram (None: empty)."""
    h = h or {"Count": 0, "Avg": 0, "StdDev": 0, "Min": 0, "Max": 0, "Sum": 0}
    return (
        f"{msg} : count {h['Count']} avg {go_g(h['Avg'], 8)} +/- {go_g(h['StdDev'], 4)}"
        f" min {go_g(h['Min'])} max {go_g(h['Max'])} sum {go_g(h['Sum'], 9)}"
    )


def print_histogram(h: dict[str, Any], msg: str) -> list[str]:
    """fortio's ``HistogramData.Print`` lines (with ``# target`` percentile lines)."""
    data = h.get("Data") or []
    if not data:
        return [f"{msg} : no data"]
    lines = [counter_line(msg, h), "# range, mid point, percentile, count"]
    for i, b in enumerate(data):
        sep = ">=" if i == 0 else ">"
        mid = (b["Start"] + b["End"]) / 2.0
        lines.append(
            f"{sep} {go_g(b['Start'], 6)} <= {go_g(b['End'], 6)} , {go_g(mid, 6)} ,"
            f" {b['Percent']:.2f}, {b['Count']}"
        )
    for p in h.get("Percentiles") or []:
        lines.append(f"# target {go_g(p['Percentile'])}% {go_g(p['Value'], 6)}")
    return lines
