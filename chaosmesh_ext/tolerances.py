"""Chaos Toolkit tolerances for load results.

``slo`` checks several bounds of one load run at once (a ``"type": "probe"`` tolerance),
and logs each bound that failed with the measured value and how far off it was, so a
journal says *why* the steady state was not met.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

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


def _code_list(name: str, codes: Any) -> set[int]:
    """``[200, "503"]`` -> ``{200, 503}``; a clear error naming the argument otherwise."""
    if isinstance(codes, str | bytes) or not isinstance(codes, Iterable):
        raise ValueError(f"slo: {name} must be a list of codes, got {codes!r}")
    result: set[int] = set()
    for code in codes:
        try:
            result.add(int(code))
        except (TypeError, ValueError):
            raise ValueError(f"slo: {name}: {code!r} is not an HTTP code") from None
    return result


def _seen_codes(flat: Mapping[str, Any]) -> dict[int, int]:
    """The run's ``{code: count}``; keys are ints from a probe, strings from a journal."""
    codes: dict[int, int] = {}
    for key, count in (flat.get("codes") or {}).items():
        codes[int(key)] = codes.get(int(key), 0) + int(count)
    return codes


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
) -> bool:
    """True when every given bound holds for this load run; each failure is logged.

    ``max_ok_p99_ms`` bounds the p99 of the successful calls alone (the requests a circuit
    breaker admitted), ``max_error_p99_ms`` that of the failed ones (a breaker sheds at once:
    its 503s come back fast).

    ``expect_codes``: the only HTTP codes allowed (e.g. ``[200]``, or ``[200, 503]`` for a
    breaker test); any other code seen fails the check. ``require_codes``: codes that must
    each be seen at least once (``[200, 503]``: the breaker shed some calls and served some —
    which a ``c=2, n=20`` run against a one-connection breaker does only some of the time:
    load it with ``c=3`` or more, see ``probes.fortio_load``). Codes may be ints or strings, in
    the arguments and in ``value`` (a probe returns int keys; the same output read back from a
    journal has string keys).
    """
    flat = _flat(value)
    allowed = _code_list("expect_codes", expect_codes) if expect_codes is not None else None
    required = _code_list("require_codes", require_codes) if require_codes is not None else None
    codes = _seen_codes(flat)
    failures: list[str] = []

    def above(key: str, limit: float | None, unit: str) -> None:
        if limit is None:
            return
        got = float(flat.get(key, 0.0))
        if got > float(limit):
            over = got - float(limit)
            failures.append(f"{key} {got:g}{unit} > {limit:g}{unit} (over by {over:g}{unit})")

    above("error_rate", max_error_rate, "")
    above("p50_ms", max_p50_ms, " ms")
    above("p90_ms", max_p90_ms, " ms")
    above("p99_ms", max_p99_ms, " ms")
    for key, limit in (("ok_p99_ms", max_ok_p99_ms), ("error_p99_ms", max_error_p99_ms)):
        if limit is not None and key not in flat:
            # Flat keys from an older run: recompute from the fortio histograms if present.
            if "DurationHistogram" not in value:
                raise TypeError(f"slo: max_{key}: the load result has no {key}")
            flat[key] = flat_summary(dict(value))[key]
        above(key, limit, " ms")
    if min_qps is not None:
        got = float(flat.get("qps", 0.0))
        if got < float(min_qps):
            failures.append(f"qps {got:g} < {float(min_qps):g} (short by {float(min_qps) - got:g})")
    if allowed is not None:
        unexpected = {c: n for c, n in sorted(codes.items()) if c not in allowed and n}
        if unexpected:
            seen = ", ".join(f"{c} x{n}" for c, n in unexpected.items())
            failures.append(f"unexpected codes {seen} (allowed: {sorted(allowed)})")
    if required is not None:
        seen_codes = {c for c, n in codes.items() if n > 0}
        absent = sorted(required - seen_codes)
        if absent:
            failures.append(f"codes {absent} never seen (seen: {sorted(seen_codes)})")
    for failure in failures:
        logger.warning("slo not met: %s", failure)
    if not failures:
        logger.info(
            "slo met: %d calls, error rate %.4g, p99 %.4g ms, %.4g qps",
            flat.get("count", 0),
            flat.get("error_rate", 0.0),
            flat.get("p99_ms", 0.0),
            flat.get("qps", 0.0),
        )
    return not failures
