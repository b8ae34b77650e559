"""Fault edits: exact output resources, exact undo, and errors naming the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from chaosmesh_ext.istio.errors import IstioError
from chaosmesh_ext.istio.faults import inject_abort, inject_delay, injected, remove_injected_faults
from chaosmesh_ext.istio.resources import INJECTED_ANNOTATION
from chaosmesh_ext.istio.validate import validate

from .seed import nginx_vs, retry_tomcat_vs, tomcat_vs

ABORT_503 = {"abort": {"percentage": {"value": 100}, "httpStatus": 503}}


def two_routes() -> dict[str, Any]:
    """A VirtualService with a named, matched route in front of a catch-all."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "bookinfo", "annotations": {"team": "a"}},
        "spec": {
            "hosts": ["reviews"],
            "http": [
                {
                    "name": "jason",
                    "match": [
                        {"headers": {"end-user": {"exact": "jason"}}},
                        {"uri": {"prefix": "/beta"}},
                    ],
                    "route": [{"destination": {"host": "reviews", "subset": "v2"}}],
                    "timeout": "3s",
                },
                {"route": [{"destination": {"host": "reviews", "subset": "v1"}}]},
            ],
        },
    }


def test_delay_on_the_seed_abort_route_keeps_the_abort() -> None:
    before = retry_tomcat_vs()
    pristine = copy.deepcopy(before)
    after = inject_delay(before, "2s", percentage=50)
    assert before == pristine  # the input is never modified
    assert after["spec"]["http"] == [
        {
            "route": [{"destination": {"host": "tomcat-svc"}}],
            "fault": {
                "abort": {"percentage": {"value": 100}, "httpStatus": 503},
                "delay": {"fixedDelay": "2s", "percentage": {"value": 50}},
            },
        }
    ]
    assert json.loads(after["metadata"]["annotations"][INJECTED_ANNOTATION]) == {
        "annotations": False,
        "inserted": [],
        "routes": {"0": {"name": None, "fault": ABORT_503}},
    }
    assert remove_injected_faults(after) == pristine


def test_abort_replaces_only_the_abort_and_undo_gives_the_original_back() -> None:
    before = tomcat_vs()  # the seed's 100% 10s delay
    after = inject_abort(before, 500, percentage=25)
    assert after["spec"]["http"][0]["fault"] == {
        "delay": {"percentage": {"value": 100}, "fixedDelay": "10s"},
        "abort": {"httpStatus": 500, "percentage": {"value": 25}},
    }
    again = inject_delay(after, "1s")  # a second edit keeps the first original
    assert remove_injected_faults(again) == before


def test_grpc_status_by_name_or_number() -> None:
    by_name = inject_abort(nginx_vs(), grpc_status="unavailable")
    by_code = inject_abort(nginx_vs(), grpc_status=14)
    expected = {"abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 100}}}
    assert by_name["spec"]["http"][0]["fault"] == expected
    assert by_code["spec"]["http"][0]["fault"] == expected
    with pytest.raises(IstioError) as err:
        inject_abort(nginx_vs(), grpc_status="SOMETIMES")
    assert err.value.field == "spec.http[0].fault.abort.grpcStatus"


def test_route_by_name_or_index_and_none_means_every_route() -> None:
    by_name = inject_delay(two_routes(), "1s", route="jason")
    assert "fault" in by_name["spec"]["http"][0] and "fault" not in by_name["spec"]["http"][1]
    by_index = inject_delay(two_routes(), "1s", route=1)
    assert "fault" not in by_index["spec"]["http"][0] and "fault" in by_index["spec"]["http"][1]
    by_digits = inject_delay(two_routes(), "1s", route="1")
    assert by_digits == by_index
    every = inject_delay(two_routes(), "1s")
    assert all("fault" in r for r in every["spec"]["http"])
    assert remove_injected_faults(every) == two_routes()


def test_bad_routes_are_named() -> None:
    with pytest.raises(IstioError) as err:
        inject_delay(two_routes(), "1s", route=2)
    assert err.value.field == "spec.http[2]"
    assert str(err.value) == (
        "VirtualService bookinfo/reviews: spec.http[2]: route index 2 out of range: "
        "the VirtualService has 2 HTTP route(s) (0..1)"
    )
    with pytest.raises(IstioError, match=r"no HTTP route named 'nobody'.*'jason'"):
        inject_delay(two_routes(), "1s", route="nobody")
    tcp_only = {"kind": "VirtualService", "metadata": {"name": "db"}, "spec": {"tcp": []}}
    with pytest.raises(IstioError, match="has no HTTP routes"):
        inject_delay(tcp_only, "1s")


@pytest.mark.parametrize("percentage", [0, -5, 100.5, 200, "50", True, 0.00001])
def test_percentage_outside_0_100_is_refused(percentage: Any) -> None:
    with pytest.raises(IstioError) as err:
        inject_delay(nginx_vs(), "1s", percentage=percentage)
    assert err.value.field == "spec.http[0].fault.delay.percentage.value"
    assert err.value.name == "default/nginx-vs"


@pytest.mark.parametrize("delay", ["", "-1s", "10", "abc", "100us"])
def test_bad_delay_is_refused(delay: str) -> None:
    with pytest.raises(IstioError) as err:
        inject_delay(nginx_vs(), delay)
    assert err.value.field == "spec.http[0].fault.delay.fixedDelay"


@pytest.mark.parametrize("status", [199, 600, "503", None])
def test_bad_status_is_refused(status: Any) -> None:
    with pytest.raises(IstioError) as err:
        inject_abort(nginx_vs(), status)
    assert err.value.field == "spec.http[0].fault.abort.httpStatus"


def test_headers_insert_a_route_that_faults_only_that_traffic() -> None:
    after = inject_abort(two_routes(), 503, route="jason", headers={"x-chaos": "yes"})
    assert after["spec"]["http"][0] == {
        "name": "chaosmesh-fault-jason",
        "match": [
            {"headers": {"end-user": {"exact": "jason"}, "x-chaos": {"exact": "yes"}}},
            {"uri": {"prefix": "/beta"}, "headers": {"x-chaos": {"exact": "yes"}}},
        ],
        "route": [{"destination": {"host": "reviews", "subset": "v2"}}],
        "timeout": "3s",
        "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 100}}},
    }
    assert (
        after["spec"]["http"][1:] == two_routes()["spec"]["http"]
    )  # the route itself is untouched
    assert validate(after) == []
    assert remove_injected_faults(after) == two_routes()


def test_source_labels_and_string_match_headers_on_a_route_without_match() -> None:
    after = inject_delay(
        two_routes(),
        "2s",
        route=1,
        headers={"Cookie": {"regex": ".*canary.*"}},
        source_labels={"app": "web"},
    )
    assert [r.get("name") for r in after["spec"]["http"]] == ["jason", "chaosmesh-fault-1", None]
    assert after["spec"]["http"][1] == {
        "name": "chaosmesh-fault-1",
        "match": [{"headers": {"cookie": {"regex": ".*canary.*"}}, "sourceLabels": {"app": "web"}}],
        "route": [{"destination": {"host": "reviews", "subset": "v1"}}],
        "fault": {"delay": {"fixedDelay": "2s", "percentage": {"value": 100}}},
    }
    # route numbers keep counting the user's own routes while the inserted one is there
    twice = inject_abort(after, 500, route=1)
    assert twice["spec"]["http"][2]["fault"] == {
        "abort": {"httpStatus": 500, "percentage": {"value": 100}}
    }
    assert "abort" not in twice["spec"]["http"][0].get("fault", {})
    assert remove_injected_faults(twice) == two_routes()


def test_same_target_twice_merges_different_targets_get_their_own_route() -> None:
    first = inject_delay(two_routes(), "1s", route=1, headers={"x-chaos": "yes"})
    merged = inject_abort(first, 503, route=1, headers={"x-chaos": "yes"})
    assert [r.get("name") for r in merged["spec"]["http"]] == ["jason", "chaosmesh-fault-1", None]
    assert set(merged["spec"]["http"][1]["fault"]) == {"delay", "abort"}
    other = inject_abort(first, 503, route=1, headers={"x-chaos": "other"})
    assert [r.get("name") for r in other["spec"]["http"]] == [
        "jason",
        "chaosmesh-fault-1",
        "chaosmesh-fault-1-2",
        None,
    ]
    assert remove_injected_faults(other) == two_routes()


def test_a_header_the_route_already_requires_otherwise_is_refused() -> None:
    with pytest.raises(IstioError) as err:
        inject_delay(two_routes(), "1s", route="jason", headers={"end-user": "mike"})
    assert err.value.field == "spec.http[0].match[0].headers.end-user"


def test_faults_the_tool_did_not_set_are_left_alone() -> None:
    user_faulted = two_routes()
    user_faulted["spec"]["http"][0]["fault"] = {
        "delay": {"fixedDelay": "5s", "percentage": {"value": 1}}
    }
    after = inject_abort(user_faulted, 503, route=1)
    restored = remove_injected_faults(after)
    assert restored == user_faulted
    assert restored["metadata"]["annotations"] == {"team": "a"}


def test_remove_without_bookkeeping_changes_nothing() -> None:
    assert remove_injected_faults(tomcat_vs()) == tomcat_vs()
    assert injected(tomcat_vs()) is None


def test_foreign_bookkeeping_is_an_error_naming_the_annotation() -> None:
    broken = tomcat_vs()
    broken["metadata"]["annotations"] = {INJECTED_ANNOTATION: "{not json"}
    with pytest.raises(IstioError) as err:
        remove_injected_faults(broken)
    assert err.value.field == f"metadata.annotations[{INJECTED_ANNOTATION}]"


def test_error_text_names_kind_object_field() -> None:
    with pytest.raises(IstioError) as err:
        inject_delay(nginx_vs(), "1s", percentage=200)
    assert str(err.value) == (
        "VirtualService default/nginx-vs: spec.http[0].fault.delay.percentage.value: "
        "must be in (0, 100], got 200"
    )
    assert isinstance(err.value, ValueError)
    assert (err.value.kind, err.value.reason) == ("VirtualService", "must be in (0, 100], got 200")
