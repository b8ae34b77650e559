"""Small text helpers shared by the terminal summary and the HTML report."""

from __future__ import annotations

import json
from typing import Any

from chaosmesh_ext.journal.model import LoadResult, RunRecord


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


def tolerance(record: RunRecord) -> str:
    """The probe's value against its tolerance, e.g. ``p99_ms 9.0 within [0, 50]``."""
    tol, out = record.tolerance, record.output
    if record.error:
        return f"error: {record.error}"
    if isinstance(tol, dict):
        kind = tol.get("type")
        target = tol.get("target")
        value = out.get(target) if isinstance(out, dict) and target else out
        label = f"{target} " if target else ""
        if kind == "range":
            return f"{label}{short(value, 20)} vs range {short(tol.get('range'), 30)}"
        if kind == "probe":
            prov = tol.get("provider") or {}
            return f"{short(out, 30)} checked by {prov.get('module', '?')}.{prov.get('func', '?')}"
        if kind in ("regex", "jsonpath"):
            pattern = tol.get("pattern") or tol.get("path")
            return f"{label}{short(value, 20)} vs {kind} {short(pattern, 30)}"
        return f"{short(out, 30)} vs {short(tol, 30)}"
    if isinstance(tol, list) and len(tol) == 2:
        return f"{short(_status_value(out), 20)} vs range {short(tol, 30)}"
    if isinstance(tol, list):
        return f"{short(_status_value(out), 20)} vs one of {short(tol, 30)}"
    if tol is None:
        return short(out, 40)
    return f"{short(_status_value(out), 20)} vs {short(tol, 30)}"


def _status_value(out: Any) -> Any:
    # chaoslib compares a dict with "status" (process/http providers) by that key.
    if isinstance(out, dict) and "status" in out:
        return out["status"]
    return out
