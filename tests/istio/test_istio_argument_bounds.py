"""Every numeric bound of an action's arguments, at the bound, just inside and just outside.

The edits behind the actions (``chaosmesh_ext.istio``) check their arguments before anything is
written; an off-by-one (``<`` for ``<=``), a wrong constant or a check dropped shows here as a
value on the wrong side of its bound. Each refusal names the field and the exact reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chaosmesh_ext.istio.breaker import apply_circuit_breaker
from chaosmesh_ext.istio.errors import IstioError
from chaosmesh_ext.istio.faults import inject_abort, inject_delay
from chaosmesh_ext.istio.traffic import set_retries, set_timeout, shift_traffic

from .seed import canary_dr, canary_vs, httpbin_dr, nginx_vs

Edit = Callable[[Any], dict[str, Any]]


def _breaker(field: str) -> Edit:
    return lambda value: apply_circuit_breaker(httpbin_dr(), "httpbin", "default", **{field: value})


def _weights(value: Any) -> dict[str, Any]:
    return shift_traffic(canary_vs(), {"v1": value, "v2": 10}, destination_rules=[canary_dr()])


DELAY_FIELD = "spec.http[0].fault.delay.percentage.value"
ABORT_FIELD = "spec.http[0].fault.abort.percentage.value"
SMALLEST = "must be at least 0.0001 (Istio's smallest percentage)"

# (id, edit, accepted at the bound, accepted just inside, refused just outside, field, reason)
BOUNDS: list[tuple[str, Edit, Any, Any, Any, str, str]] = [
    ("delay percentage <= 100", lambda v: inject_delay(nginx_vs(), "1s", percentage=v),
     100, 99.9999, 100.0001, DELAY_FIELD, "must be in (0, 100], got 100.0001"),
    ("delay percentage >= 0.0001", lambda v: inject_delay(nginx_vs(), "1s", percentage=v),
     0.0001, 0.00011, 0.000099, DELAY_FIELD, f"{SMALLEST}, got 9.9e-05"),
    ("abort percentage <= 100", lambda v: inject_abort(nginx_vs(), 503, percentage=v),
     100, 99.9999, 100.0001, ABORT_FIELD, "must be in (0, 100], got 100.0001"),
    ("abort percentage >= 0.0001", lambda v: inject_abort(nginx_vs(), 503, percentage=v),
     0.0001, 0.00011, 0.000099, ABORT_FIELD, f"{SMALLEST}, got 9.9e-05"),
    ("abort status >= 200", lambda v: inject_abort(nginx_vs(), v),
     200, 201, 199, "spec.http[0].fault.abort.httpStatus",
     "HTTP status must be an integer in 200..599, got 199"),
    ("abort status <= 599", lambda v: inject_abort(nginx_vs(), v),
     599, 598, 600, "spec.http[0].fault.abort.httpStatus",
     "HTTP status must be an integer in 200..599, got 600"),
    ("delay >= 1ms", lambda v: inject_delay(nginx_vs(), v),
     "1ms", "2ms", "0.999ms", "spec.http[0].fault.delay.fixedDelay",
     "duration must be at least 1ms, got '0.999ms'"),
    ("timeout >= 1ms (0s removes it)", lambda v: set_timeout(nginx_vs(), v),
     "1ms", "2ms", "0.5ms", "spec.http[0].timeout", "duration must be at least 1ms, got '0.5ms'"),
    ("retry attempts >= 0", lambda v: set_retries(nginx_vs(), v),
     0, 1, -1, "spec.http[0].retries.attempts", "must be an integer >= 0, got -1"),
    ("per-try timeout >= 1ms", lambda v: set_retries(nginx_vs(), 3, per_try_timeout=v),
     "1ms", "2ms", "0.5ms", "spec.http[0].retries.perTryTimeout",
     "duration must be at least 1ms, got '0.5ms'"),
    ("traffic weight >= 0", _weights,
     0, 1, -1, "spec.http[0].route", "weight for 'v1' must be an integer >= 0, got -1"),
    ("breaker max_connections >= 0", _breaker("max_connections"),
     0, 1, -1, "spec.trafficPolicy.connectionPool.tcp.maxConnections",
     "max_connections must be >= 0, got -1"),
    ("breaker http1_max_pending_requests >= 0", _breaker("http1_max_pending_requests"),
     0, 1, -1, "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests",
     "http1_max_pending_requests must be >= 0, got -1"),
    ("breaker consecutive_5xx_errors >= 0", _breaker("consecutive_5xx_errors"),
     0, 1, -1, "spec.trafficPolicy.outlierDetection.consecutive5xxErrors",
     "consecutive_5xx_errors must be >= 0, got -1"),
    ("breaker max_ejection_percent <= 100", _breaker("max_ejection_percent"),
     100, 99, 101, "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
     "max_ejection_percent must be 0..100, got 101"),
    ("breaker min_health_percent >= 0", _breaker("min_health_percent"),
     0, 1, -1, "spec.trafficPolicy.outlierDetection.minHealthPercent",
     "min_health_percent must be 0..100, got -1"),
    ("breaker interval >= 1ms", _breaker("interval"),
     "1ms", "2ms", "0.5ms", "spec.trafficPolicy.outlierDetection.interval",
     "interval: duration must be at least 1ms, got '0.5ms'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "at", "inside", "outside", "field", "reason"),
    [b[1:] for b in BOUNDS],
    ids=[b[0] for b in BOUNDS],
)
def test_accepted_at_and_inside_the_bound_refused_just_outside(
    edit: Edit, at: Any, inside: Any, outside: Any, field: str, reason: str
) -> None:
    edit(at)
    edit(inside)
    with pytest.raises(IstioError) as refused:
        edit(outside)
    assert (refused.value.field, refused.value.reason) == (field, reason)


@pytest.mark.parametrize("percentage", [0, -0.0001])
def test_zero_and_below_is_outside_0_100_not_merely_too_small(percentage: float) -> None:
    with pytest.raises(IstioError) as refused:
        inject_delay(nginx_vs(), "1s", percentage=percentage)
    assert refused.value.reason == f"must be in (0, 100], got {percentage}"
