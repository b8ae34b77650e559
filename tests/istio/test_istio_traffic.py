"""Traffic edits: canary weights, timeouts, retries — exact outputs and named errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chaosmesh_ext.istio.errors import IstioError
from chaosmesh_ext.istio.faults import inject_delay, remove_injected_faults
from chaosmesh_ext.istio.traffic import set_retries, set_timeout, shift_traffic

from .seed import canary_dr, canary_vs, nginx_vs

CANARY = "canary.istio-test.svc.cluster.local"


def test_shift_the_seed_canary_to_50_50() -> None:
    before = canary_vs()
    pristine = copy.deepcopy(before)
    after = shift_traffic(before, {"v1": 50, "v2": 50}, destination_rules=[canary_dr()])
    assert before == pristine
    assert after["spec"]["http"] == [
        {
            "route": [
                {"destination": {"host": CANARY, "subset": "v1"}, "weight": 50},
                {"destination": {"host": CANARY, "subset": "v2"}, "weight": 50},
            ]
        }
    ]
    assert {k: v for k, v in after.items() if k != "spec"} == {
        k: v for k, v in pristine.items() if k != "spec"
    }


def test_shift_to_one_subset_sets_exactly_that_subset() -> None:
    after = shift_traffic(canary_vs(), {"v2": 100}, destination_rules=[canary_dr()])
    assert after["spec"]["http"][0]["route"] == [
        {"destination": {"host": CANARY, "subset": "v2"}, "weight": 100}
    ]


def test_subsets_must_exist_in_a_destination_rule_for_that_host() -> None:
    with pytest.raises(IstioError) as err:
        shift_traffic(canary_vs(), {"v1": 90, "v3": 10}, destination_rules=[canary_dr()])
    assert err.value.field == "spec.http[0].route"
    assert (
        f"subset 'v3' is not defined by any DestinationRule for host {CANARY} (defined: v1, v2)"
        in str(err.value)
    )
    elsewhere = canary_dr()
    elsewhere["spec"]["host"] = "reviews"
    with pytest.raises(IstioError, match="no DestinationRule for that host defines subsets"):
        shift_traffic(canary_vs(), {"v1": 100}, destination_rules=[elsewhere])


def test_short_dr_host_matches_in_the_rule_namespace() -> None:
    short = canary_dr()
    short["spec"]["host"] = "canary"
    short["metadata"]["namespace"] = "istio-test"
    assert (
        shift_traffic(canary_vs(), {"v1": 100}, destination_rules=[short])["spec"]["http"][0][
            "route"
        ][0]["weight"]
        == 100
    )


@pytest.mark.parametrize(
    ("weights", "words"),
    [
        ({"v1": -10, "v2": 110}, "weight for 'v1' must be an integer >= 0, got -10"),
        ({"v1": 0, "v2": 0}, "the weights must add up to more than 0"),
        ({"v1": 50.5, "v2": 49.5}, "must be an integer"),
        ({}, "non-empty map"),
    ],
)
def test_bad_weights_are_refused(weights: dict[str, Any], words: str) -> None:
    with pytest.raises(IstioError, match=words):
        shift_traffic(canary_vs(), weights, destination_rules=[canary_dr()])


def test_host_only_destinations_are_weighted_by_host() -> None:
    after = shift_traffic(nginx_vs(), {"nginx-svc": 100})
    assert after["spec"]["http"][0]["route"] == [
        {"destination": {"host": "nginx-svc"}, "weight": 100}
    ]


def test_several_hosts_make_subset_weights_ambiguous() -> None:
    vs = nginx_vs()
    vs["spec"]["http"][0]["route"] = [
        {"destination": {"host": "nginx-svc"}, "weight": 50},
        {"destination": {"host": "tomcat-svc"}, "weight": 50},
    ]
    with pytest.raises(IstioError, match=r"several hosts .* ambiguous"):
        shift_traffic(vs, {"v1": 100})
    by_host = shift_traffic(vs, {"nginx-svc": 10, "tomcat-svc": 90})
    assert [e["weight"] for e in by_host["spec"]["http"][0]["route"]] == [10, 90]


def test_port_and_per_destination_headers_are_kept() -> None:
    vs = canary_vs()
    vs["spec"]["http"][0]["route"][0]["destination"]["port"] = {"number": 80}
    vs["spec"]["http"][0]["route"][0]["headers"] = {"request": {"set": {"x-v": "1"}}}
    after = shift_traffic(vs, {"v1": 10, "v2": 90}, destination_rules=[canary_dr()])
    assert after["spec"]["http"][0]["route"] == [
        {
            "destination": {"host": CANARY, "subset": "v1", "port": {"number": 80}},
            "headers": {"request": {"set": {"x-v": "1"}}},
            "weight": 10,
        },
        {"destination": {"host": CANARY, "subset": "v2"}, "weight": 90},
    ]


def test_edits_follow_the_route_into_its_targeted_fault_copy() -> None:
    faulted = inject_delay(canary_vs(), "1s", headers={"x-chaos": "1"})
    shifted = shift_traffic(faulted, {"v2": 100}, destination_rules=[canary_dr()])
    copy_route, own = shifted["spec"]["http"]
    assert copy_route["name"] == "chaosmesh-fault-0"
    assert (
        copy_route["route"]
        == own["route"]
        == [{"destination": {"host": CANARY, "subset": "v2"}, "weight": 100}]
    )
    timed = set_timeout(shifted, "3s")
    assert [r.get("timeout") for r in timed["spec"]["http"]] == ["3s", "3s"]
    assert remove_injected_faults(timed)["spec"]["http"] == [own | {"timeout": "3s"}]


def test_set_timeout_on_the_seed_nginx_route() -> None:
    after = set_timeout(nginx_vs(), "5s")
    assert after["spec"]["http"] == [
        {"route": [{"destination": {"host": "nginx-svc"}}], "timeout": "5s"}
    ]
    assert set_timeout(nginx_vs(), 0.25)["spec"]["http"][0]["timeout"] == "0.250s"


def test_timeout_0s_disables_it_by_leaving_it_out() -> None:
    after = set_timeout(nginx_vs(), "0s")
    assert after["spec"]["http"] == [{"route": [{"destination": {"host": "nginx-svc"}}]}]


@pytest.mark.parametrize("timeout", ["10", "", "-1s", "soon", "100us"])
def test_bad_timeouts_name_the_field(timeout: str) -> None:
    with pytest.raises(IstioError) as err:
        set_timeout(nginx_vs(), timeout)
    assert err.value.field == "spec.http[0].timeout"


def test_set_retries_exact_block() -> None:
    after = set_retries(nginx_vs(), 3, per_try_timeout="2s", retry_on=["5xx", "gateway-error"])
    assert after["spec"]["http"][0]["retries"] == {
        "attempts": 3,
        "perTryTimeout": "2s",
        "retryOn": "5xx,gateway-error",
    }
    assert after["spec"]["http"][0]["timeout"] == "2s"  # the rest of the route is kept


def test_set_retries_keeps_other_retry_fields_and_0_disables() -> None:
    vs = nginx_vs()
    vs["spec"]["http"][0]["retries"] = {"attempts": 1, "backoff": "25ms", "retryOn": "reset"}
    assert set_retries(vs, 4)["spec"]["http"][0]["retries"] == {"attempts": 4, "backoff": "25ms"}
    assert set_retries(vs, 0)["spec"]["http"][0]["retries"] == {"attempts": 0}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"attempts": -1}, "spec.http[0].retries.attempts"),
        ({"attempts": "3"}, "spec.http[0].retries.attempts"),
        ({"attempts": 0, "per_try_timeout": "1s"}, "spec.http[0].retries.attempts"),
        ({"attempts": 2, "per_try_timeout": "2"}, "spec.http[0].retries.perTryTimeout"),
        ({"attempts": 2, "retry_on": "5xx,sometimes"}, "spec.http[0].retries.retryOn"),
    ],
)
def test_bad_retries_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(IstioError) as err:
        set_retries(nginx_vs(), **kwargs)
    assert err.value.field == field
