"""Bounds on one load run's numbers: the vocabulary of ``slo`` and of ``fortio_load(expect=)``.

A steady state says what must hold *despite* a fault (``max_error_rate``, ``max_p99_ms``); a
method probe says the fault *took effect* (``min_error_rate``, ``min_p50_ms``,
``require_codes``). Both read the flat keys of a load result (``load.results.flat_summary``)
and name every bound that failed with the measured value and how far off it was.

Pure: no I/O, no logging.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["LOAD_BOUNDS", "check_counters", "check_load", "code_list", "unknown_bounds"]

# bound name -> (flat key, "max" | "min", unit)
_NUMBERS: dict[str, tuple[str, str, str]] = {
    "max_error_rate": ("error_rate", "max", ""),
    "min_error_rate": ("error_rate", "min", ""),
    "max_p50_ms": ("p50_ms", "max", " ms"),
    "min_p50_ms": ("p50_ms", "min", " ms"),
    "max_p90_ms": ("p90_ms", "max", " ms"),
    "min_p90_ms": ("p90_ms", "min", " ms"),
    "max_p99_ms": ("p99_ms", "max", " ms"),
    "min_p99_ms": ("p99_ms", "min", " ms"),
    # The successful calls alone / the failed ones (``flat_summary``'s ok_/error_ keys).
    "max_ok_p99_ms": ("ok_p99_ms", "max", " ms"),
    "max_error_p99_ms": ("error_p99_ms", "max", " ms"),
    "min_qps": ("qps", "min", ""),
    "min_count": ("count", "min", ""),
}
# Every bound a load run can be held to (``slo``'s parameters, ``expect``'s keys).
LOAD_BOUNDS = (*_NUMBERS, "expect_codes", "require_codes")


def unknown_bounds(bounds: Mapping[str, Any], known: Iterable[str] = LOAD_BOUNDS) -> list[str]:
    """The keys of ``bounds`` that are not bounds (a typo such as ``max_error``)."""
    allowed = set(known)
    return sorted(k for k in bounds if k not in allowed)


def code_list(name: str, codes: Any) -> set[int]:
    """``[200, "503"]`` -> ``{200, 503}``; ``ValueError`` naming the bound otherwise."""
    if isinstance(codes, str | bytes) or not isinstance(codes, Iterable):
        raise ValueError(f"{name} must be a list of codes, got {codes!r}")
    result: set[int] = set()
    for code in codes:
        try:
            result.add(int(code))
        except (TypeError, ValueError):
            raise ValueError(f"{name}: {code!r} is not an HTTP code") from None
    return result


def _seen_codes(flat: Mapping[str, Any]) -> dict[int, int]:
    """The run's ``{code: count}``; keys are ints from a probe, strings from a journal."""
    codes: dict[int, int] = {}
    for key, count in (flat.get("codes") or {}).items():
        codes[int(key)] = codes.get(int(key), 0) + int(count)
    return codes


def _failed_codes(codes: Mapping[int, int]) -> str:
    """``"; failed: 503 x3, -1 x2 (no answer)"``: the codes fortio counts as errors (not
    2xx, not 418), so a reader sees at once what failed; empty when none are known."""
    failed = {c: n for c, n in sorted(codes.items()) if n and not (200 <= c < 300 or c == 418)}
    if not failed:
        return ""
    shown = ", ".join(f"{c} x{n}" for c, n in failed.items())
    note = " (-1: connection error or timeout)" if -1 in failed else ""
    return f"; failed: {shown}{note}"


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def check_load(flat: Mapping[str, Any], bounds: Mapping[str, Any]) -> list[str]:
    """Every bound of ``bounds`` (names in ``LOAD_BOUNDS``; None = unset) that ``flat`` misses,
    as ``"error_rate 0 < 0.4 (short by 0.4)"``; empty when all hold.

    ``expect_codes``: the only codes allowed; ``require_codes``: codes each seen at least once.
    Raises ``ValueError`` for an unknown bound or a malformed value.
    """
    unknown = unknown_bounds(bounds)
    if unknown:
        raise ValueError(f"unknown bound(s) {unknown}; known: {', '.join(LOAD_BOUNDS)}")
    failures: list[str] = []
    codes = _seen_codes(flat)
    for name, limit in bounds.items():
        if limit is None or name not in _NUMBERS:
            continue
        key, side, unit = _NUMBERS[name]
        want = _number(name, limit)
        got = float(flat.get(key) or 0.0)
        if side == "max" and got > want:
            failed = _failed_codes(codes) if key == "error_rate" else ""
            failures.append(
                f"{key} {got:g}{unit} > {want:g}{unit} (over by {got - want:g}{unit}{failed})"
            )
        if side == "min" and got < want:
            failures.append(f"{key} {got:g}{unit} < {want:g}{unit} (short by {want - got:g}{unit})")
    if bounds.get("expect_codes") is not None:
        allowed = code_list("expect_codes", bounds["expect_codes"])
        unexpected = {c: n for c, n in sorted(codes.items()) if c not in allowed and n}
        if unexpected:
            seen = ", ".join(f"{c} x{n}" for c, n in unexpected.items())
            failures.append(f"unexpected codes {seen} (allowed: {sorted(allowed)})")
    if bounds.get("require_codes") is not None:
        required = code_list("require_codes", bounds["require_codes"])
        seen_codes = {c for c, n in codes.items() if n > 0}
        absent = sorted(required - seen_codes)
        if absent:
            failures.append(f"codes {absent} never seen (seen: {sorted(seen_codes)})")
    return failures


def check_counters(counters: Mapping[str, Any], bounds: Mapping[str, Any]) -> list[str]:
    """``min_<counter>`` / ``max_<counter>`` bounds on a reading of Envoy counters (e.g.
    ``{"min_pending_overflow": 1}``) that ``counters`` misses; empty when all hold.

    Raises ``ValueError`` for a bound that is neither, or that names no counter of the
    reading (the message lists the counters there are).
    """
    failures: list[str] = []
    for name, limit in bounds.items():
        side, _, key = str(name).partition("_")
        if side not in ("min", "max") or not key:
            raise ValueError(f"unknown bound '{name}': use min_<counter> or max_<counter>")
        if key not in counters:
            known = ", ".join(sorted(k for k, v in counters.items() if isinstance(v, int | float)))
            raise ValueError(f"bound '{name}': no counter '{key}' in the reading ({known})")
        if limit is None:
            continue
        want = _number(name, limit)
        got = float(counters[key] or 0)
        if side == "max" and got > want:
            failures.append(f"{key} {got:g} > {want:g} (over by {got - want:g})")
        if side == "min" and got < want:
            failures.append(f"{key} {got:g} < {want:g} (short by {want - got:g})")
    return failures
