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
    """istiod's TranslateFault: the HTTPFault for one route, or None.

    A delay without ``fixedDelay`` (``exponentialDelay`` is refused by validation) and an
    abort without ``httpStatus``/``grpcStatus`` are dropped, not sent: Envoy would reject the
    whole route configuration. Validation warns about the abort ("abort configured, but error
    type not set"). An abort without a percentage gets none (Envoy: 0 %, never fires).
    """
    out: JSON = {"@type": FAULT_TYPE}
    delay = fault.get("delay")
    if delay and delay.get("fixedDelay"):
        out["delay"] = {
            "percentage": fractional_percent(delay),
            "fixed_delay": duration(delay["fixedDelay"], f"{where}.delay.fixedDelay"),
        }
    abort = fault.get("abort")
    if abort:
        error: JSON = {}
        if abort.get("httpStatus") is not None:
            error["http_status"] = int(abort["httpStatus"])
        elif abort.get("grpcStatus") is not None:
            status = abort["grpcStatus"]
            code = (
                GRPC_STATUS_CODES.get(str(status).upper())
                if not str(status).isdigit()
                else int(status)
            )
            if code is None:
                raise ValueError(f"{where}.abort.grpcStatus: unknown gRPC status {status!r}")
            error["grpc_status"] = code
        if error:
            out["abort"] = dict(error)
            if abort.get("percentage") is not None:
                out["abort"]["percentage"] = fractional_percent(abort)
    if "delay" not in out and "abort" not in out:
        return None
    return out
