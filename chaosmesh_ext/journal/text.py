"""Small text helpers shared by the terminal summary and the HTML report."""

from __future__ import annotations

import json
from typing import Any

from chaosmesh_ext.journal.model import LoadResult


def short(value: Any, width: int = 60) -> str:
    """A value on one line, cut to ``width`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def arguments(args: dict[str, Any], width: int = 60) -> str:
    """``k=v, k=v`` for an activity's arguments."""
    return short(", ".join(f"{k}={short(v, 30)}" for k, v in args.items()), width)


def seconds(value: float | None) -> str:
    if value is None:
        return "?"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.2f} s"
    return f"{value / 60:.1f} min"


def ms(value: float | None) -> str:
    return "-" if value is None else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def codes(load: LoadResult) -> str:
    return " ".join(f"{c}:{n}" for c, n in sorted(load.codes.items())) or "-"
