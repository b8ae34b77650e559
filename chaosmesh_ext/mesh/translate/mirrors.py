"""VirtualService ``mirror`` / ``mirrorPercentage`` / ``mirrors[]`` -> request mirror policies."""

from __future__ import annotations

from typing import Any

from .context import RouteContext
from .model import JSON


def _mirror_fraction(percentage: Any) -> JSON | None:
    """istiod's MirrorPercent: absent -> 100 %, explicit 0 -> no mirroring."""
    if percentage is None:
        return {"numerator": 100, "denominator": "HUNDRED"}
    value = float((percentage or {}).get("value") or 0)
    if value <= 0:
        return None
    return {"numerator": int(value * 10000), "denominator": "MILLION"}


def mirror_policies(http: JSON, namespace: str, ctx: RouteContext) -> list[JSON]:
    """``mirror`` + ``mirrorPercentage`` and ``mirrors[]`` -> request_mirror_policies."""
    pairs = []
    if http.get("mirror"):
        pairs.append((http["mirror"], http.get("mirrorPercentage")))
    for mirror in http.get("mirrors") or []:
        if mirror.get("destination"):
            pairs.append((mirror["destination"], mirror.get("percentage")))
    out = []
    for destination, percentage in pairs:
        fraction = _mirror_fraction(percentage)
        if fraction is None:
            continue
        cluster, _, _ = ctx.destination_cluster(destination, namespace)
        out.append({"cluster": cluster, "runtime_fraction": {"default_value": fraction}})
    return out
