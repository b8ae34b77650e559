"""Chaos Toolkit tolerances for load results.

``slo`` checks several bounds of one load run at once (a ``"type": "probe"`` tolerance),
and logs each bound that failed with the measured value and how far off it was, so a
journal says *why* the steady state was not met.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ._activity import Configuration, Secrets
from .load.bounds import check_load
from .load.results import flat_summary

__all__ = ["slo"]

logger = logging.getLogger("chaostoolkit")


def _flat(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"slo: expected a load result (dict), got {type(value).__name__}")
    if "count" in value and "error_rate" in value:
        return dict(value)
    if "DurationHistogram" in value:  # a raw fortio result
        return flat_summary(dict(value))
    raise TypeError("slo: the value has neither flat load keys nor a fortio DurationHistogram")


def _url(value: Mapping[str, Any]) -> str:
    """The URL the load went to, as it was called (fortio's ``URL``)."""
    return str(value.get("URL") or value.get("url") or "")


def slo(
    value: Any = None,
    max_error_rate: float | None = None,
    max_p99_ms: float | None = None,
    max_p50_ms: float | None = None,
    max_p90_ms: float | None = None,
    min_qps: float | None = None,
    expect_codes: Iterable[int | str] | None = None,
    require_codes: Iterable[int | str] | None = None,
    max_ok_p99_ms: float | None = None,
    max_error_p99_ms: float | None = None,
    min_error_rate: float | None = None,
    min_p50_ms: float | None = None,
    min_p90_ms: float | None = None,
    min_p99_ms: float | None = None,
    min_count: int | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> bool:
    """True when every given bound holds for this load run; each failure is logged with the
    URL the load called.

    ``max_*`` bounds say what must hold despite a fault; ``min_*`` bounds (``min_error_rate``,
    ``min_p50_ms``, ``min_p90_ms``, ``min_p99_ms``, ``min_qps``, ``min_count``) say the fault
    showed. ``max_ok_p99_ms`` bounds the p99 of the successful calls alone (the requests a
    circuit breaker admitted), ``max_error_p99_ms`` that of the failed ones (a breaker sheds
    at once: its 503s come back fast).

    ``expect_codes``: the only HTTP codes allowed (e.g. ``[200]``, or ``[200, 503]`` for a
    breaker test); any other code seen fails the check. ``require_codes``: codes that must
    each be seen at least once (``[200, 503]``: the breaker shed some calls and served some —
    which a ``c=2, n=20`` run against a one-connection breaker does only some of the time:
    load it with ``c=3`` or more, see ``probes.fortio_load``). Codes may be ints or strings, in
    the arguments and in ``value`` (a probe returns int keys; the same output read back from a
    journal has string keys).
    """
    flat = _flat(value)
    bounds = {
        "max_error_rate": max_error_rate,
        "max_p50_ms": max_p50_ms,
        "max_p90_ms": max_p90_ms,
        "max_p99_ms": max_p99_ms,
        "max_ok_p99_ms": max_ok_p99_ms,
        "max_error_p99_ms": max_error_p99_ms,
        "min_error_rate": min_error_rate,
        "min_p50_ms": min_p50_ms,
        "min_p90_ms": min_p90_ms,
        "min_p99_ms": min_p99_ms,
        "min_qps": min_qps,
        "min_count": min_count,
        "expect_codes": expect_codes,
        "require_codes": require_codes,
    }
    for key, limit in (("ok_p99_ms", max_ok_p99_ms), ("error_p99_ms", max_error_p99_ms)):
        if limit is not None and key not in flat:
            # Flat keys from an older run: recompute from the fortio histograms if present.
            if "DurationHistogram" not in value:
                raise TypeError(f"slo: max_{key}: the load result has no {key}")
            flat[key] = flat_summary(dict(value))[key]
    try:
        failures = check_load(flat, bounds)
    except ValueError as exc:
        raise ValueError(f"slo: {exc}") from None
    url = _url(value)
    where = f" for {url}" if url else ""
    for failure in failures:
        logger.warning("slo not met%s: %s", where, failure)
    if not failures:
        logger.info(
            "slo met%s: %d calls, error rate %.4g, p99 %.4g ms, %.4g qps",
            where,
            flat.get("count", 0),
            flat.get("error_rate", 0.0),
            flat.get("p99_ms", 0.0),
            flat.get("qps", 0.0),
        )
    return not failures
