"""Prometheus results as plain JSON values for Chaos Toolkit tolerances (pure)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["flatten", "is_empty"]


def flatten(result: Any) -> Any:
    """Prometheus ``data.result`` -> a number, a list, or a dict keyed by label set."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return _value(result[1])  # scalar (or string) result: [time, "value"]
    if not isinstance(result, list):
        return result
    series: dict[str, Any] = {}
    for item in result:
        metric = item.get("metric") or {}
        if "values" in item:
            value: Any = [_value(v[1]) for v in item["values"]]
        else:
            value = _value((item.get("value") or [None, "NaN"])[1])
        series[_series_key(metric, series)] = value
    if len(series) == 1:
        return next(iter(series.values()))
    return series


def _series_key(metric: dict[str, str], taken: dict[str, Any]) -> str:
    labels = {k: v for k, v in metric.items() if k != "__name__"}
    key = ",".join(f"{k}={labels[k]}" for k in sorted(labels)) or metric.get("__name__", "{}")
    if key in taken and "__name__" in metric:
        key = f"{metric['__name__']}{{{key}}}"
    return key


def _value(raw: Any) -> Any:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return raw  # a string result


def is_empty(value: Any) -> bool:
    if value is None or value == [] or value == {}:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, list):
        return all(isinstance(v, float) and math.isnan(v) for v in value)
    if isinstance(value, dict):
        return all(is_empty(v) for v in value.values())
    return False
