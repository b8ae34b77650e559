"""Breaker advice (pure): each field's value from the capacity, and bad input named.

The outlier-ejection numbers are checked against Envoy's own rule (``ejectHost`` in
``source/common/upstream/outlier_detection_impl.cc``: a host is ejected while
``100 * (ejected + 1) / hosts <= max_ejection_percent``), re-implemented here as the oracle.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from chaosmesh_ext.istio.breaker import apply_circuit_breaker
from chaosmesh_ext.istio.breaker_advice import AdviceError, BreakerInputs, advise
from chaosmesh_ext.istio.validate import validate

# The embedded experiment's service: 3 pods, knee at 80 requests/second each, 70 ms mean and
# 100 ms p99 there, SLO p99 300 ms.
CHECKOUT = BreakerInputs(
    pods=3, p99_slo=0.3, service_time=0.07, rps_per_pod=80, knee_p99=0.1, source="test"
)


def _value(advice: Any, field: str) -> Any:
    return next(f.value for f in advice.fields if f.field == field)


def _why(advice: Any, field: str) -> str:
    return str(next(f.why for f in advice.fields if f.field == field))


def envoy_ejects(max_ejection_percent: int, hosts: int) -> int:
    """How many hosts Envoy's outlier detector lets go at once (its ejectHost rule)."""
    ejected = 0
    while ejected < hosts and 100.0 * (ejected + 1) / hosts <= min(100, max_ejection_percent):
        ejected += 1
    return ejected


def test_in_flight_by_littles_law_plus_the_queue_the_slo_absorbs() -> None:
    advice = advise(CHECKOUT)
    in_flight = 3 * 80 * 0.07  # 16.8: rate x latency, all pods
    queue = 16  # a third of the slack (0.3 - 0.1 s) at 240/s
    limit = math.ceil(in_flight + queue)  # 33
    assert _value(advice, "connectionPool.http.http2MaxRequests") == limit == 33
    assert advice.numbers["concurrency_total"] == pytest.approx(in_flight)
    assert advice.numbers["queue_total"] == queue
    # The connection limit never binds: per worker the whole limit plus one per pod.
    assert _value(advice, "connectionPool.tcp.maxConnections") == 2 * (limit + 3)
    assert _value(advice, "connectionPool.http.http1MaxPendingRequests") == limit
    why = _why(advice, "connectionPool.http.http2MaxRequests")
    assert "16.8 for 3 pods" in why and "16.8 + 16 = 33" in why


def test_units_are_explicit_rate_or_concurrency() -> None:
    by_rate = advise(CHECKOUT)
    by_concurrency = advise(
        dataclasses.replace(CHECKOUT, rps_per_pod=None, concurrency_per_pod=80 * 0.07)
    )
    assert by_concurrency.traffic_policy == by_rate.traffic_policy
    assert any("given as a RATE: 80 requests/second per pod" in a for a in by_rate.assumptions)
    assert any(
        "given as a CONCURRENCY: 5.6 requests in flight per pod" in a
        for a in by_concurrency.assumptions
    )


def test_every_calling_sidecar_enforces_its_own_limit() -> None:
    one = _value(advise(CHECKOUT), "connectionPool.http.http2MaxRequests")
    four = advise(dataclasses.replace(CHECKOUT, callers=4))
    assert _value(four, "connectionPool.http.http2MaxRequests") == math.ceil(one / 4)
    assert "divided by the 4 calling pods" in _why(four, "connectionPool.http.http2MaxRequests")


@pytest.mark.parametrize("hosts", range(2, 13))
def test_max_ejection_percent_ejects_exactly_what_the_service_can_lose(hosts: int) -> None:
    for can_lose in range(1, hosts):
        advice = advise(dataclasses.replace(CHECKOUT, pods=hosts, can_lose=can_lose))
        percent = _value(advice, "outlierDetection.maxEjectionPercent")
        assert envoy_ejects(percent, hosts) == can_lose, (hosts, can_lose, percent)
        # Panic (spread over all pods) only below the survivors the service needs.
        healthy_when_all_allowed_are_out = 100.0 * (hosts - can_lose) / hosts
        assert _value(advice, "outlierDetection.minHealthPercent") <= (
            healthy_when_all_allowed_are_out
        )


def test_three_pods_lose_at_most_one_and_5xx_ejection_is_off() -> None:
    policy = advise(CHECKOUT).traffic_policy["outlierDetection"]
    assert policy == {
        "consecutiveGatewayErrors": 5,
        "consecutive5xxErrors": 0,  # unset would still mean Envoy's 5
        "interval": "5s",
        "baseEjectionTime": "30s",
        "maxEjectionPercent": 34,  # 33 would eject no pod at all: 100 x 1 / 3 > 33
        "minHealthPercent": 66,
    }
    assert envoy_ejects(33, 3) == 0 and envoy_ejects(34, 3) == 1
    # A peak that needs all three pods leaves none to lose: no outlier detection at all.
    full = advise(dataclasses.replace(CHECKOUT, peak_rps=230))
    assert "outlierDetection" not in full.traffic_policy
    assert "cannot lose any" in _why(full, "outlierDetection")


def test_behind_an_l4_proxy_connections_are_recycled_and_ejection_left_out() -> None:
    advice = advise(dataclasses.replace(CHECKOUT, behind_l4_proxy=True))
    per_connection = _value(advice, "connectionPool.http.maxRequestsPerConnection")
    # About five seconds of a connection's requests at its share of the rate.
    limit = _value(advice, "connectionPool.http.http2MaxRequests")
    assert per_connection == round(5 * 240 / limit)
    assert "outlierDetection" not in advice.traffic_policy
    assert "ONE endpoint" in " ".join(advice.assumptions)
    # The pool is one host per worker: fewer spare connections than with three pods.
    assert _value(advice, "connectionPool.tcp.maxConnections") == 2 * (limit + 1)


def test_keepalive_and_http2_choices() -> None:
    plain = advise(CHECKOUT)
    assert "maxRequestsPerConnection" not in plain.traffic_policy["connectionPool"]["http"]
    no_keepalive = advise(dataclasses.replace(CHECKOUT, keepalive=False))
    assert _value(no_keepalive, "connectionPool.http.maxRequestsPerConnection") == 1
    h2 = advise(dataclasses.replace(CHECKOUT, http2=True))
    # HTTP/2 multiplexes: connections only guard against a storm, requests are the limit.
    assert _value(h2, "connectionPool.tcp.maxConnections") == 3 * 2 * 2
    assert _value(h2, "connectionPool.http.http2MaxRequests") == 33


def test_the_advice_is_a_valid_destination_rule_and_applies_as_given() -> None:
    for variant in (
        CHECKOUT,
        dataclasses.replace(CHECKOUT, behind_l4_proxy=True),
        dataclasses.replace(CHECKOUT, http2=True, callers=3),
    ):
        advice = advise(variant)
        rule = advice.destination_rule("checkout", "shop", "checkout")
        assert validate(rule) == []
        applied = apply_circuit_breaker(
            None, "checkout", "shop", "checkout", **advice.breaker_arguments()
        )
        assert applied["spec"]["trafficPolicy"] == advice.traffic_policy


def test_cores_bound_the_rate_not_the_connections() -> None:
    advice = advise(dataclasses.replace(CHECKOUT, pod_cpus=6))
    why = _why(advice, "connectionPool.tcp.maxConnections")
    assert "core count is no connection limit" in why
    assert "6 CPUs per pod and 70 ms per request" in why and "85.71/s per pod" in why


@pytest.mark.parametrize(
    ("change", "argument", "complaint"),
    [
        ({"pods": -3}, "pods", "at least 1, got -3"),
        ({"pods": 0}, "pods", "at least 1, got 0"),
        ({"p99_slo": 0.05}, "p99_slo", "not above the service time 70 ms"),
        ({"p99_slo": 0.09}, "p99_slo", "below the p99 the service already has at its knee"),
        ({"concurrency_per_pod": 4.0}, "rps_per_pod", "exactly one"),
        ({"rps_per_pod": None}, "rps_per_pod", "exactly one; got neither"),
        ({"rps_per_pod": -80}, "rps_per_pod", "must be > 0"),
        ({"service_time": 0.0}, "service_time", "must be > 0"),
        ({"callers": 0}, "callers", "at least 1"),
        ({"can_lose": 3}, "can_lose", "below pods (3)"),
    ],
)
def test_bad_input_names_the_argument(
    change: dict[str, Any], argument: str, complaint: str
) -> None:
    with pytest.raises(AdviceError) as caught:
        advise(dataclasses.replace(CHECKOUT, **change))
    assert caught.value.argument == argument
    assert str(caught.value).startswith(f"{argument}: ")
    assert complaint in str(caught.value)
