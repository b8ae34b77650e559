"""Circuit-breaker edits on DestinationRules: only the given fields change."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chaosmesh_ext.istio.breaker import apply_circuit_breaker, remove_circuit_breaker
from chaosmesh_ext.istio.errors import IstioError

from .seed import canary_dr, httpbin_dr


def test_change_one_field_of_the_seed_breaker() -> None:
    before = httpbin_dr()
    pristine = copy.deepcopy(before)
    after = apply_circuit_breaker(
        before, "httpbin", "default", max_connections=10, interval="2s", max_retries=None
    )
    assert before == pristine
    assert after["spec"] == {
        "host": "httpbin",
        "trafficPolicy": {
            "connectionPool": {
                "tcp": {"maxConnections": 10},
                "http": {"http1MaxPendingRequests": 1, "maxRequestsPerConnection": 1},
            },
            "outlierDetection": {
                "baseEjectionTime": "3m",
                "consecutiveGatewayErrors": 1,
                "interval": "2s",
                "maxEjectionPercent": 100,
            },
        },
    }


def test_create_the_seed_breaker_from_nothing() -> None:
    created = apply_circuit_breaker(
        None,
        "httpbin",
        "default",
        host="httpbin",
        max_connections=1,
        http1_max_pending_requests=1,
        max_requests_per_connection=1,
        base_ejection_time="3m",
        consecutive_gateway_errors=1,
        interval="1s",
        max_ejection_percent=100,
    )
    expected = httpbin_dr()
    expected["apiVersion"] = "networking.istio.io/v1"
    expected["metadata"]["namespace"] = "default"
    assert created == expected


def test_subset_starts_from_the_top_level_block_it_replaces() -> None:
    dr = canary_dr()
    dr["spec"]["trafficPolicy"] = {
        "connectionPool": {"tcp": {"maxConnections": 100}, "http": {"maxRetries": 3}}
    }
    after = apply_circuit_breaker(dr, "canary", "istio-test", subset="v2", http2_max_requests=1)
    assert after["spec"]["subsets"][1] == {
        "name": "v2",
        "labels": {"app": "v2"},
        "trafficPolicy": {
            "connectionPool": {
                "tcp": {"maxConnections": 100},
                "http": {"maxRetries": 3, "http2MaxRequests": 1},
            }
        },
    }
    assert after["spec"]["subsets"][0] == dr["spec"]["subsets"][0]
    assert after["spec"]["trafficPolicy"] == dr["spec"]["trafficPolicy"]
    assert remove_circuit_breaker(after, subset="v2")["spec"] == dr["spec"]


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"max_connections": -1}, "spec.trafficPolicy.connectionPool.tcp.maxConnections", ">= 0"),
        (
            {"max_connections": "1"},
            "spec.trafficPolicy.connectionPool.tcp.maxConnections",
            "integer",
        ),
        (
            {"max_ejection_percent": 101},
            "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
            "0..100",
        ),
        ({"interval": "1"}, "spec.trafficPolicy.outlierDetection.interval", "no unit"),
        (
            {"base_ejection_time": "0s"},
            "spec.trafficPolicy.outlierDetection.baseEjectionTime",
            "at least 1ms",
        ),
        ({"max_conections": 1}, "spec.trafficPolicy", "unknown circuit-breaker field"),
        ({}, "spec.trafficPolicy", "no circuit-breaker field given"),
        ({"subset": "v9", "max_retries": 1}, "spec.subsets", "unknown subset 'v9'"),
        ({"host": "reviews", "max_retries": 1}, "spec.host", "another host"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(IstioError) as err:
        apply_circuit_breaker(httpbin_dr(), "httpbin", "default", **kwargs)
    assert err.value.field == field
    assert words in err.value.reason


def test_creating_needs_a_host() -> None:
    with pytest.raises(IstioError) as err:
        apply_circuit_breaker(None, "httpbin", "default", max_connections=1)
    assert (err.value.field, str(err.value)) == (
        "spec.host",
        "DestinationRule default/httpbin: spec.host: is required to create a DestinationRule",
    )


def test_same_host_written_differently_is_fine() -> None:
    after = apply_circuit_breaker(
        httpbin_dr(), "httpbin", "default", host="httpbin.default.svc.cluster.local", max_retries=2
    )
    assert after["spec"]["trafficPolicy"]["connectionPool"]["http"]["maxRetries"] == 2


def test_remove_drops_pool_and_outlier_and_an_emptied_policy() -> None:
    assert remove_circuit_breaker(httpbin_dr())["spec"] == {"host": "httpbin"}
    dr = httpbin_dr()
    dr["spec"]["trafficPolicy"]["loadBalancer"] = {"simple": "ROUND_ROBIN"}
    assert remove_circuit_breaker(dr)["spec"]["trafficPolicy"] == {
        "loadBalancer": {"simple": "ROUND_ROBIN"}
    }


def _with_port_level(dr: dict[str, Any]) -> dict[str, Any]:
    dr = copy.deepcopy(dr)
    dr["spec"]["trafficPolicy"]["portLevelSettings"] = [
        {"port": {"number": 8000}, "loadBalancer": {"simple": "ROUND_ROBIN"}}
    ]
    return dr


def test_a_top_level_breaker_istio_would_ignore_on_a_port_is_refused_naming_the_port() -> None:
    """GetPortLevelTrafficPolicy: a port-level entry replaces the policy for its port, so a
    top-level breaker has no effect there; the edit says so and offers ``port``."""
    dr = _with_port_level(httpbin_dr())
    with pytest.raises(IstioError) as caught:
        apply_circuit_breaker(dr, "httpbin", "default", max_connections=5)
    assert caught.value.field == "spec.trafficPolicy.portLevelSettings"
    assert "port(s) 8000 have port-level settings" in str(caught.value)
    assert "pass port (8000)" in str(caught.value)


def test_port_edits_the_port_level_block_and_keeps_its_other_blocks() -> None:
    dr = _with_port_level(httpbin_dr())
    after = apply_circuit_breaker(dr, "httpbin", "default", port=8000, max_connections=5)
    (level,) = after["spec"]["trafficPolicy"]["portLevelSettings"]
    assert level == {
        "port": {"number": 8000},
        "loadBalancer": {"simple": "ROUND_ROBIN"},
        "connectionPool": {"tcp": {"maxConnections": 5}},
    }
    # The top-level policy (for the other ports) is untouched.
    assert after["spec"]["trafficPolicy"]["connectionPool"]["tcp"] == {"maxConnections": 1}


def test_a_new_port_level_entry_starts_from_the_blocks_in_effect_on_that_port() -> None:
    """A port-level entry replaces all four blocks, so a new one copies the ones in effect:
    only the named field changes what Istio applies to the port."""
    after = apply_circuit_breaker(httpbin_dr(), "httpbin", "default", port=9000, interval="5s")
    (level,) = after["spec"]["trafficPolicy"]["portLevelSettings"]
    top = httpbin_dr()["spec"]["trafficPolicy"]
    assert level == {
        "port": {"number": 9000},
        "connectionPool": top["connectionPool"],
        "outlierDetection": {**top["outlierDetection"], "interval": "5s"},
    }
    removed = remove_circuit_breaker(after, port=9000)
    assert "portLevelSettings" not in removed["spec"]["trafficPolicy"]
    assert removed["spec"]["trafficPolicy"]["connectionPool"] == top["connectionPool"]
