"""Istio durations: parse what Istio accepts, print what protobuf prints.

Istio reads duration strings with Go's ``time.ParseDuration`` rules (``"2s"``, ``"1.5s"``,
``"100ms"``, ``"3m"``, ``"1h"``, ``"1m30s"``); its webhook then wants at least 1 ms and
millisecond precision for most fields. Protobuf's JSON form, used when we write a duration
we computed, is seconds with 0, 3, 6 or 9 fractional digits (``"2s"``, ``"0.100s"``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_UNIT_NS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


def parse_duration_ns(text: str) -> int:
    """Nanoseconds in a Go/Istio duration string; ``ValueError`` naming what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"duration must be a string like '2s', got {text!r}")
    s = text.strip()
    if not s:
        raise ValueError("duration is empty (expected e.g. '2s', '100ms', '1m30s')")
    if s.startswith("-"):
        raise ValueError(f"duration {text!r} is negative")
    if s == "0":  # Go accepts a bare zero; any other bare number lacks its unit
        return 0
    pos, total = 0, Decimal(0)
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            if re.fullmatch(r"\d+(\.\d*)?", s[pos:]):
                raise ValueError(f"duration {text!r} has no unit (use e.g. '{s}s' or '{s}ms')")
            raise ValueError(
                f"duration {text!r} is not valid (expected e.g. '2s', '100ms', '1m30s')"
            )
        try:
            total += Decimal(m.group(1)) * _UNIT_NS[m.group(2)]
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
            raise ValueError(f"duration {text!r} is not valid") from exc
        pos = m.end()
    return int(total)


def parse_duration(text: str) -> float:
    """Seconds in a Go/Istio duration string (``"1m30s"`` -> ``90.0``)."""
    return parse_duration_ns(text) / NS_PER_S


def format_duration(seconds: float) -> str:
    """Protobuf's JSON form of a duration: ``2`` -> ``"2s"``, ``0.1`` -> ``"0.100s"``."""
    if seconds < 0:
        raise ValueError(f"duration {seconds!r} is negative")
    nanos = round(Decimal(str(seconds)) * NS_PER_S)
    whole, frac = divmod(int(nanos), NS_PER_S)
    if frac == 0:
        return f"{whole}s"
    if frac % 1_000_000 == 0:
        return f"{whole}.{frac // 1_000_000:03d}s"
    if frac % 1_000 == 0:
        return f"{whole}.{frac // 1_000:06d}s"
    return f"{whole}.{frac:09d}s"


def duration_text(value: Any) -> Any:
    """A duration argument as Istio spells it: seconds (a non-negative number) become
    ``"2s"``/``"0.100s"``; anything else is returned as given, for validation to judge."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return format_duration(value)
    return value


def istio_duration_problem(text: object, allow_zero: bool = False) -> str | None:
    """Why Istio's webhook would reject ``text`` as a duration, or ``None`` if it would not.

    Mirrors ``agent.ValidateDuration``: at least 1 ms and whole milliseconds.
    """
    if not isinstance(text, str):
        return f"must be a duration string like '2s', got {text!r}"
    try:
        ns = parse_duration_ns(text)
    except ValueError as exc:
        return str(exc)
    if ns == 0 and allow_zero:
        return None
    if ns < NS_PER_MS:
        return f"duration must be at least 1ms, got {text!r}"
    if ns % NS_PER_MS:
        return f"only durations to ms precision are supported, got {text!r}"
    return None
