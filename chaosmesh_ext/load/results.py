"""fortio's result JSON (``HTTPRunnerResults``), built from what the scheduler and client measured.

Keys and units follow fortio: durations in seconds inside histograms, ``ActualDuration`` and
``HTTPReqTimeOut`` in nanoseconds, ``RetCodes`` with string keys. Our own additions
(``OpenLoop``, ``Classification``, ``Via``, ``Note``) are extra keys a fortio reader ignores.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

from .options import LoadOptions
from .stats import Histogram

VERSION = "1.69.0-chaosmesh"  # the fortio version whose schema this follows


def start_time_rfc3339(ts: float) -> str:
    """Go's RFC3339Nano for a UNIX timestamp (``2026-11-26T23:20:01.123456789Z``)."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    frac = f"{dt.microsecond:06d}000".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def run_id_label(ts: float, labels: str, run_id: int = 0) -> str:
    """fortio's result ID: start time, the run id when not 0, and the sanitized labels,
    usable as a file name."""
    base = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d-%H%M%S")
    if run_id:
        base += f"_{run_id}"
    if labels:
        base += "_" + re.sub(r"[^A-Za-z0-9_-]+", "_", labels).strip("_")
    return base[:96]


def base_result(options: LoadOptions, start_wall: float, run_id: int = 0) -> dict[str, Any]:
    """The fields every result has, before any measurement."""
    return {
        "RunType": "HTTP",
        "Labels": options.labels,
        "StartTime": start_time_rfc3339(start_wall),
        "RequestedQPS": "max" if options.qps <= 0 else f"{options.qps:.9g}",
        "RequestedDuration": "",
        "ActualQPS": 0.0,
        "ActualDuration": 0,
        "NumThreads": options.connections,
        "Version": VERSION,
        "DurationHistogram": None,
        "ErrorsDurationHistogram": None,
        "Exactly": options.exactly,
        "Jitter": options.jitter,
        "Uniform": options.uniform,
        "NoCatchUp": options.nocatchup,
        "RunID": run_id,
        "AccessLoggerInfo": "",
        "ID": run_id_label(start_wall, options.labels, run_id),
        "RetCodes": {},
        "IPCountMap": {},
        "URL": options.url,
        "NumConnections": 1,
        "Compression": False,
        "DisableFastClient": False,
        "HTTP10": options.http10,
        "DisableKeepAlive": not options.keepalive,
        "AllowHalfClose": options.half_close,
        "Insecure": options.insecure,
        "FollowRedirects": False,
        "Resolve": options.resolve or "",
        "HTTPReqTimeOut": round(options.timeout * 1e9),
        # fortio copies -user here verbatim; results end up in journals, so never the secret.
        "UserCredentials": "",
        "ContentType": _content_type(options),
        "Payload": base64.b64encode(options.payload).decode() if options.payload else None,
        "MethodOverride": options.method or "",
        "LogErrors": options.log_errors,
        "SequentialWarmup": options.sequential_warmup,
        "ConnReuseRange": list(options.reuse_range or (0, 0)),
        "NoResolveEachConn": False,
        "Offset": round(options.offset * 1e9),
        "Resolution": options.resolution,
        "Sizes": None,
        "HeaderSizes": None,
        "Sockets": [],
        "SocketCount": 0,
        "ConnectionStats": None,
        "AbortOn": options.abort_on or 0,
    }


def _content_type(options: LoadOptions) -> str:
    for name, value in options.headers:
        if name.lower() == "content-type":
            return value
    return ""


def error_result(
    options: LoadOptions, message: str, exception: str, start_wall: float
) -> dict[str, Any]:
    """fortio's ``NewErrorResult``: two fake points so viewers draw a red block, plus the error."""
    res = base_result(options, start_wall)
    empty = Histogram(0.0, options.resolution)
    empty.record(0.0)
    empty.record(0.001)
    res["DurationHistogram"] = empty.export()
    res["ErrorsDurationHistogram"] = empty.export()
    res.update({"error": True, "message": message, "exception": exception})
    return res


def ret_codes(codes: dict[int, int]) -> dict[str, int]:
    """``RetCodes`` with string keys in numeric order, as Go's JSON encoder sorts int keys."""
    return {str(k): codes[k] for k in sorted(codes)}


def flat_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The flat keys probes add to a fortio result (ours or real fortio's).

    ``count``, ``qps``, ``error_rate`` (errors / calls, fortio's definition: anything not
    2xx or 418), ``p50_ms``/``p90_ms``/``p99_ms``/``max_ms`` and ``codes`` with int keys;
    ``ok_p50_ms``/``ok_p99_ms`` for the successful calls alone and ``error_p99_ms`` for the
    failed ones (a breaker's admitted requests vs. the ones it shed; 0 when there are none).
    """
    from .stats import percentile_value, subtract

    dur = result.get("DurationHistogram") or {}
    err = result.get("ErrorsDurationHistogram") or {}
    count = int(dur.get("Count") or 0)
    errors = int(err.get("Count") or 0)
    summary: dict[str, Any] = {
        "count": count,
        "qps": float(result.get("ActualQPS") or 0.0),
        "error_rate": errors / count if count else 0.0,
        "codes": {int(k): int(v) for k, v in (result.get("RetCodes") or {}).items()},
    }
    for p in (50.0, 90.0, 99.0):
        value = percentile_value(dur, p) if count else 0.0
        summary[f"p{int(p)}_ms"] = round(value * 1000.0, 4)
    summary["max_ms"] = round(float(dur.get("Max") or 0.0) * 1000.0, 4)
    ok = subtract(dur, err) if errors else dur
    for p in (50.0, 99.0):
        value = percentile_value(ok, p) if ok.get("Count") else 0.0
        summary[f"ok_p{int(p)}_ms"] = round(value * 1000.0, 4)
    summary["error_p99_ms"] = round(percentile_value(err, 99.0) * 1000.0, 4) if errors else 0.0
    return summary
