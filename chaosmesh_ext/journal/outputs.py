"""Recognise what a probe returned: a load result, a traffic split, or anything else.

Load probes of this extension return fortio's result JSON plus flat keys (``count``, ``qps``,
``error_rate``, ``p50_ms``, ``p90_ms``, ``p99_ms``, ``max_ms``, ``codes``); a bare fortio
result (e.g. from an HTTP provider calling fortio's REST API) is read too. ``traffic_split``
returns a fraction per version.
"""

from __future__ import annotations

from typing import Any

from chaosmesh_ext.journal.model import LoadResult

_FLAT_KEYS = ("p50_ms", "p90_ms", "p99_ms")
# Keys a split probe may add next to the fractions: counts, not fractions.
_SPLIT_META = {"count", "total", "samples", "requests", "n"}
_OK_CODES = {"200", "418"}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _codes(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    codes: dict[str, int] = {}
    for code, n in raw.items():
        if isinstance(n, int | float) and not isinstance(n, bool):
            codes[str(code)] = int(n)
    return codes


def _fortio_percentile(hist: Any, wanted: float) -> float | None:
    """A percentile of a fortio histogram, in ms (fortio stores seconds)."""
    if not isinstance(hist, dict):
        return None
    for item in hist.get("Percentiles") or []:
        if isinstance(item, dict) and _num(item.get("Percentile")) == wanted:
            value = _num(item.get("Value"))
            return None if value is None else value * 1000.0
    return None


def load_result(output: Any) -> LoadResult | None:
    """The load numbers in a probe's output, or None when it is not a load result."""
    if not isinstance(output, dict):
        return None
    flat = any(_num(output.get(k)) is not None for k in _FLAT_KEYS)
    fortio = isinstance(output.get("DurationHistogram"), dict)
    if not (flat or fortio):
        return None
    hist = output.get("DurationHistogram") if fortio else None
    codes = _codes(output.get("codes")) or _codes(output.get("RetCodes"))
    count = _num(output.get("count"))
    if count is None and isinstance(hist, dict):
        count = _num(hist.get("Count"))
    if count is None and codes:
        count = float(sum(codes.values()))
    error_rate = _num(output.get("error_rate"))
    if error_rate is None and codes and count:
        error_rate = sum(n for c, n in codes.items() if c not in _OK_CODES) / count
    max_ms = _num(output.get("max_ms"))
    if max_ms is None and isinstance(hist, dict) and _num(hist.get("Max")) is not None:
        max_ms = float(hist["Max"]) * 1000.0

    def pick(flat_key: str, pct: float) -> float | None:
        value = _num(output.get(flat_key))
        return value if value is not None else _fortio_percentile(hist, pct)

    qps = _num(output.get("qps"))
    if qps is None:
        qps = _num(output.get("ActualQPS"))
    url = output.get("URL") or output.get("url")
    return LoadResult(
        count=None if count is None else int(count),
        qps=qps,
        error_rate=error_rate,
        p50_ms=pick("p50_ms", 50),
        p90_ms=pick("p90_ms", 90),
        p99_ms=pick("p99_ms", 99),
        max_ms=max_ms,
        codes=codes,
        url=url if isinstance(url, str) else None,
    )


def traffic_split(output: Any, single: bool = False) -> dict[str, float] | None:
    """The fraction per version in a probe's output, or None when it is not a split.

    ``single``: the output comes from a split probe, so one version taking everything
    (``{"v2": 1.0}``) is a split too; elsewhere such a dict is too ambiguous to chart.
    """
    if not isinstance(output, dict) or load_result(output) is not None:
        return None
    for nested in ("split", "fractions", "versions", "observed"):
        if isinstance(output.get(nested), dict):
            return traffic_split(output[nested], single=True)
    fractions = {
        str(k): float(v) for k, v in output.items() if k not in _SPLIT_META and _num(v) is not None
    }
    if len(fractions) < (1 if single else 2) or any(
        not 0.0 <= v <= 1.0 for v in fractions.values()
    ):
        return None
    # Fractions of one whole; allow rounding in what the probe reports.
    if abs(sum(fractions.values()) - 1.0) > 0.02:
        return None
    return fractions
