"""VirtualService ``fault`` -> per-route config of Envoy's fault filter (istiod's TranslateFault).

Percentages become millionths, truncated like istiod's ``uint32(value * 10000)``; the
deprecated integer ``percent`` becomes hundredths; no percentage at all means 0: the fault
never fires (a trap worth knowing).
"""

from __future__ import annotations

from typing import Any

from chaosmesh_ext.istio.resources import GRPC_STATUS_CODES

from .model import JSON
from .names import duration

FAULT_FILTER = "envoy.filters.http.fault"
FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"


def fractional_percent(block: JSON) -> JSON:
    """``percentage.value`` (millionths) or the deprecated ``percent`` (hundredths)."""
    percentage = block.get("percentage")
    if percentage is not None:
        value: Any = percentage.get("value") if isinstance(percentage, dict) else percentage
        return {"numerator": int(float(value or 0) * 10000), "denominator": "MILLION"}
    return {"numerator": int(block.get("percent") or 0), "denominator": "HUNDRED"}


def http_fault(fault: JSON, where: str) -> JSON | None:
    """The HTTPFault for one route, or None when it has neither delay nor abort."""
    out: JSON = {"@type": FAULT_TYPE}
    delay = fault.get("delay")
    if delay:
        out["delay"] = {"percentage": fractional_percent(delay)}
        if delay.get("fixedDelay"):
            out["delay"]["fixed_delay"] = duration(delay["fixedDelay"], f"{where}.delay.fixedDelay")
    abort = fault.get("abort")
    if abort:
        out["abort"] = {"percentage": fractional_percent(abort)}
        if abort.get("httpStatus") is not None:
            out["abort"]["http_status"] = int(abort["httpStatus"])
        elif abort.get("grpcStatus") is not None:
            status = abort["grpcStatus"]
            code = (
                GRPC_STATUS_CODES.get(str(status).upper())
                if not str(status).isdigit()
                else int(status)
            )
            if code is None:
                raise ValueError(f"{where}.abort.grpcStatus: unknown gRPC status {status!r}")
            out["abort"]["grpc_status"] = code
    if "delay" not in out and "abort" not in out:
        return None
    return out
