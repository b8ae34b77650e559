"""VirtualService ``mirror`` / ``mirrorPercentage`` / ``mirrors[]`` -> request mirror policies."""

from __future__ import annotations

from typing import Any

from .context import RouteContext
from .model import JSON


def _mirror_fraction(percentage: Any) -> JSON | None:
    """istiod's MirrorPercentByPolicy: absent -> 100 %, 0 -> no mirroring."""
    if percentage is None:
        return {"numerator": 100, "denominator": "HUNDRED"}
    value = float((percentage or {}).get("value") or 0)
    if value <= 0:
        return None
    return {"numerator": int(value * 10000), "denominator": "MILLION"}


def mirror_percent(http: JSON) -> JSON | None:
    """istiod's MirrorPercent: ``mirrorPercentage``, else the deprecated integer
    ``mirrorPercent`` (N of 100), else 100 %; an explicit 0 means no mirroring."""
    if http.get("mirrorPercentage") is not None:
        return _mirror_fraction(http["mirrorPercentage"])
    legacy = http.get("mirrorPercent", http.get("mirror_percent"))
    if legacy is not None:
        number = int(legacy)
        return {"numerator": number, "denominator": "HUNDRED"} if number > 0 else None
    return {"numerator": 100, "denominator": "HUNDRED"}


def mirror_policies(http: JSON, namespace: str, ctx: RouteContext) -> list[JSON]:
    """``mirror`` (+ its percentage) and ``mirrors[]`` -> request_mirror_policies
    (istiod's TranslateRequestMirrorPolicy: never trace-sampled)."""
    pairs = []
    if http.get("mirror"):
        pairs.append((http["mirror"], mirror_percent(http)))
    for mirror in http.get("mirrors") or []:
        if mirror.get("destination"):
            pairs.append((mirror["destination"], _mirror_fraction(mirror.get("percentage"))))
    out = []
    for destination, fraction in pairs:
        if fraction is None:
            continue
        cluster, _, _ = ctx.destination_cluster(destination, namespace)
        out.append(
            {
                "cluster": cluster,
                "runtime_fraction": {"default_value": fraction},
                "trace_sampled": False,
            }
        )
    return out
