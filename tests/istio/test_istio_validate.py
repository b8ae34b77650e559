"""validate(): what Istio's webhook would reject, with the field it would name."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosmesh_ext.istio.validate import Cause, validate

from .seed import FIXTURES, canary_dr, httpbin_dr, tomcat_vs


def vs(http: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"hosts": ["reviews"], **spec}
    if http is not None:
        body["http"] = http
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": body,
    }


def route(**extra: Any) -> dict[str, Any]:
    return {"route": [{"destination": {"host": "reviews"}}], **extra}


def dr(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews"},
        "spec": {"host": "reviews", **spec},
    }


def fields(causes: list[Cause]) -> dict[str, str]:
    return {c.field: c.message for c in causes}


def istio_objects() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in sorted(FIXTURES.rglob("*.yaml")):
        if path.parent.name == "slips":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["apiVersion"].startswith("networking.istio.io"):
                out.append((path, doc))
    return out


@pytest.mark.parametrize(("path", "obj"), istio_objects(), ids=lambda v: getattr(v, "name", ""))
def test_the_seed_objects_are_valid_istio(path: Path, obj: dict[str, Any]) -> None:
    assert validate(obj, strict=True) == []


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_every_served_version_is_accepted(version: str) -> None:
    obj = dict(tomcat_vs(), apiVersion=f"networking.istio.io/{version}")
    assert validate(obj) == []


def test_an_unknown_version_or_kind_is_named() -> None:
    assert fields(validate(dict(tomcat_vs(), apiVersion="networking.istio.io/v2"))).keys() == {
        "apiVersion"
    }
    assert fields(validate(dict(tomcat_vs(), kind="Service"))).keys() == {"kind"}
    assert fields(validate({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService"})) == {
        "metadata": "is required",
        "spec": "is required",
    }


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (100, True),
        (0, True),
        (0.0001, True),
        (50.5, True),
        (200, False),
        (-1, False),
        (0.00001, False),
    ],
)
def test_fault_percentage_is_zero_or_within_istios_range(value: float, ok: bool) -> None:
    obj = vs([route(fault={"delay": {"fixedDelay": "2s", "percentage": {"value": value}}})])
    expected = (
        {}
        if ok
        else {
            "spec.http[0].fault.delay.percentage.value": f"percentage {value} is neither 0.0, "
            "nor in range [0.0001, 100.0]"
        }
    )
    assert fields(validate(obj)) == expected


def test_a_fault_needs_a_delay_or_an_abort() -> None:
    assert fields(validate(vs([route(fault={})]))) == {
        "spec.http[0].fault": "HTTP fault injection must have an abort and/or a delay"
    }


@pytest.mark.parametrize(
    ("delay", "words"),
    [
        ("500us", "at least 1ms"),
        ("10", "no unit"),
        ("1500us", "ms precision"),
        ("abc", "not valid"),
    ],
)
def test_fixed_delay_must_be_a_duration_of_at_least_1ms(delay: str, words: str) -> None:
    causes = fields(
        validate(vs([route(fault={"delay": {"fixedDelay": delay, "percentage": {"value": 1}}})]))
    )
    assert list(causes) == ["spec.http[0].fault.delay.fixedDelay"]
    assert words in causes["spec.http[0].fault.delay.fixedDelay"]


@pytest.mark.parametrize(
    ("status", "ok"),
    [(200, True), (503, True), (599, True), (600, True), (199, False), (601, False)],
)
def test_abort_status_is_200_to_600_as_istiod_checks_it(status: int, ok: bool) -> None:
    """validateHTTPStatus rejects status < 200 || status > 600 (its message says 599)."""
    causes = fields(
        validate(vs([route(fault={"abort": {"httpStatus": status, "percentage": {"value": 1}}})]))
    )
    assert causes == (
        {}
        if ok
        else {
            "spec.http[0].fault.abort.httpStatus": f"HTTP status {status} is not in range 200-599"
        }
    )


def test_grpc_status_is_a_code_name() -> None:
    good = vs([route(fault={"abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 1}}})])
    bad = vs([route(fault={"abort": {"grpcStatus": "NOPE", "percentage": {"value": 1}}})])
    assert validate(good) == []
    assert list(fields(validate(bad))) == ["spec.http[0].fault.abort.grpcStatus"]


def test_weights_are_not_negative_and_several_need_a_positive_total() -> None:
    two = [
        {"destination": {"host": "reviews", "subset": "v1"}, "weight": 0},
        {"destination": {"host": "reviews", "subset": "v2"}, "weight": 0},
    ]
    assert fields(validate(vs([{"route": two}]))) == {
        "spec.http[0].route": "total destination weight = 0"
    }
    negative = copy.deepcopy(two)
    negative[0]["weight"] = -1
    negative[1]["weight"] = 10
    assert fields(validate(vs([{"route": negative}]))) == {
        "spec.http[0].route[0].weight": "weight -1 < 0"
    }
    # Istio accepts a lone destination with weight 0 (it still gets all the traffic).
    assert validate(vs([{"route": [{"destination": {"host": "reviews"}, "weight": 0}]}])) == []


def test_retries_as_istio_checks_them() -> None:
    def causes(retries: dict[str, Any]) -> dict[str, str]:
        return fields(validate(vs([route(retries=retries)])))

    assert causes({"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,503,gateway-error"}) == {}
    assert causes({"attempts": -1}) == {
        "spec.http[0].retries.attempts": "attempts cannot be negative"
    }
    # attempts left out counts as 0, and Istio refuses a policy that is disabled
    assert causes({"perTryTimeout": "2s"}) == {
        "spec.http[0].retries.attempts": "http retry policy configured when attempts are set "
        "to 0 (disabled)"
    }
    assert causes({"attempts": 2, "retryOn": "5xx,bogus"}) == {
        "spec.http[0].retries.retryOn": "'bogus' is not a valid retryOn policy"
    }
    assert causes({"attempts": 2, "retryOn": "5xx, reset"}) == {
        "spec.http[0].retries.retryOn": "' reset' is not a valid retryOn policy"
    }


def test_route_timeout_must_be_at_least_1ms_as_in_istio() -> None:
    assert validate(vs([route(timeout="2s")])) == []
    assert list(fields(validate(vs([route(timeout="0s")])))) == ["spec.http[0].timeout"]


def test_wildcard_host_only_through_a_gateway() -> None:
    assert fields(validate(vs([route()], hosts=["*"]))) == {
        "spec.hosts[0]": "wildcard host * is not allowed for virtual services bound to the "
        "mesh gateway"
    }
    assert validate(vs([route()], hosts=["*"], gateways=["canary-gateway"])) == []


def test_a_virtual_service_needs_routes() -> None:
    assert fields(validate(vs())) == {
        "spec": "http, tcp or tls must be provided in virtual service"
    }
    assert fields(validate(vs([{"match": [{"uri": {"prefix": "/"}}]}]))) == {
        "spec.http[0].route": "HTTP route, redirect or direct_response is required"
    }


def test_wrong_types_are_named_with_their_path() -> None:
    obj = vs([{"route": [{"destination": {"host": "reviews"}, "weight": "90"}]}], hosts="reviews")
    assert fields(validate(obj)) == {
        "spec.hosts": "must be a list, got string",
        "spec.http[0].route[0].weight": "must be an integer, got string '90'",
    }


def test_unknown_fields_only_when_strict() -> None:
    obj = vs([{"route": [{"destination": {"host": "reviews"}}], "reties": {"attempts": 3}}])
    assert validate(obj) == []
    assert validate(obj, strict=True) == [Cause("spec.http[0].reties", "unknown field 'reties'")]


def test_destination_rule_rules() -> None:
    assert validate(canary_dr()) == []
    assert validate(httpbin_dr()) == []
    assert fields(validate(dr(subsets=[{"labels": {"app": "v1"}}]))) == {
        "spec.subsets[0].name": "subset name cannot be empty"
    }
    assert fields(validate(dr(subsets=[{"name": "v1"}, {"name": "v1"}]))) == {
        "spec.subsets[1].name": "duplicate subset names: v1"
    }
    assert fields(validate(dr(trafficPolicy={}))) == {
        "spec.trafficPolicy": "traffic policy must have at least one field"
    }
    assert fields(validate(dr(trafficPolicy={"connectionPool": {}}))) == {
        "spec.trafficPolicy.connectionPool": "connection pool must have at least one field"
    }
    assert fields(
        validate(dr(trafficPolicy={"connectionPool": {"tcp": {"maxConnections": -1}}}))
    ) == {
        "spec.trafficPolicy.connectionPool.tcp.maxConnections": (
            "max connections must be non-negative"
        )
    }
    outlier = {"outlierDetection": {"maxEjectionPercent": 101, "interval": "1"}}
    assert set(fields(validate(dr(trafficPolicy=outlier)))) == {
        "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
        "spec.trafficPolicy.outlierDetection.interval",
    }
    assert fields(validate(dr(host=""))) == {"spec.host": 'domain name "" invalid (empty)'}


def gateway(servers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "Gateway",
        "metadata": {"name": "gw"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": servers},
    }


def test_gateway_rules() -> None:
    http = {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}
    assert validate(gateway([http])) == []
    assert fields(validate(gateway([]))) == {
        "spec.servers": "gateway must have at least one server"
    }
    assert fields(validate(gateway([{"hosts": ["*"]}]))) == {
        "spec.servers[0].port": "port is required"
    }
    assert fields(validate(gateway([dict(http, hosts=[])]))) == {
        "spec.servers[0].hosts": "server config must contain at least one host"
    }
    https = {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"]}
    assert fields(validate(gateway([https]))) == {
        "spec.servers[0].tls": "server must have TLS settings for HTTPS/TLS protocols"
    }
    assert fields(
        validate(
            gateway([http, dict(http, port={"number": 81, "name": "http", "protocol": "HTTP"})])
        )
    ) == {"spec.servers[1].port.name": "port names in servers must be unique: duplicate name http"}
    bad = {"port": {"number": 80, "name": "x", "protocol": "FTP"}, "hosts": ["*"]}
    assert list(fields(validate(gateway([bad])))) == ["spec.servers[0].port.protocol"]


def test_cause_reads_field_then_message() -> None:
    assert str(Cause("spec.host", "is required")) == "spec.host: is required"


def test_hosts_as_istio_spells_them() -> None:
    assert validate(vs([route()], hosts=["Reviews.Default", "10.0.0.1", "*.example.com"])) == []
    assert fields(validate(vs([route()], hosts=["a_b"]))) == {
        "spec.hosts[0]": "domain name 'a_b' invalid (label 'a_b')"
    }
    assert fields(validate(vs([route()], hosts=["reviews", "*.example.com", "a.example.com"]))) == {
        "spec.hosts": "duplicate hosts in virtual service: *.example.com & a.example.com"
    }
