"""The actions against the emulator: effect, bad input, conflicts, restore — over real HTTP."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext import actions
from chaosmesh_ext.kube.ledger import LEDGER_ANNOTATION, Ledger
from tests.support.kapi import Key, RunningEmulator
from tests.support.kubefix import REVIEWS, REVIEWS_DR, canonical, seed, state

VS = "virtualservices"


def test_inject_delay_changes_the_route_and_records_the_change(seeded: RunningEmulator) -> None:
    before = state(seeded, VS, "reviews")
    result = actions.inject_delay("reviews", "2s", percentage=50, route="default")
    assert result["object"] == "VirtualService default/reviews" and result["changed"] is True
    json.dumps(result)  # journal-friendly
    assert seeded.api is not None
    live = seeded.api.get_object(VS, "default", "reviews")
    assert live is not None and result["resourceVersion"] == live["metadata"]["resourceVersion"]
    fault = live["spec"]["http"][1]["fault"]["delay"]
    assert fault["fixedDelay"] == "2s" and fault["percentage"]["value"] == 50
    assert "fault" not in live["spec"]["http"][0]
    assert live["metadata"]["annotations"][LEDGER_ANNOTATION] == result["ledger_entry"]
    entry = Ledger("test-run").entries()[0]
    assert entry["state"] == "applied" and canonical(entry["before"]) == before
    assert entry["after"]["resourceVersion"] == result["resourceVersion"]


def test_restore_gives_back_the_exact_object_and_is_idempotent(seeded: RunningEmulator) -> None:
    before = state(seeded, VS, "reviews")
    actions.inject_delay("reviews", "2s")
    actions.inject_abort("reviews", status=500, percentage=10, route=0)
    assert state(seeded, VS, "reviews") != before
    first = actions.restore()
    assert [o["result"] for o in first["objects"]] == ["restored"]
    assert state(seeded, VS, "reviews") == before
    assert seeded.api is not None
    version = seeded.api.get_object(VS, "default", "reviews")["metadata"]["resourceVersion"]  # type: ignore[index]
    assert actions.restore()["objects"] == []
    assert seeded.api.get_object(VS, "default", "reviews")["metadata"]["resourceVersion"] == version  # type: ignore[index]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: actions.inject_delay("reviews", "2s", percentage=200), "percentage"),
        (lambda: actions.inject_delay("reviews", "soon"), "fixedDelay"),
        (lambda: actions.inject_delay("reviews", "2s", route=7), "http[7]"),
        (lambda: actions.inject_delay("reviews", "2s", route="nope"), "nope"),
        (lambda: actions.inject_abort("reviews", status=42), "httpStatus"),
    ],
)
def test_bad_input_names_object_and_field_and_changes_nothing(
    seeded: RunningEmulator, call: Any, field: str
) -> None:
    assert seeded.api is not None
    before = canonical(seeded.api.get_object(VS, "default", "reviews"))
    with pytest.raises(ActivityFailed) as info:
        call()
    assert "default/reviews" in str(info.value) and field in str(info.value)
    assert (
        canonical(seeded.api.get_object(VS, "default", "reviews")) == before
    )  # byte-identical, same version
    assert Ledger("test-run").entries() == []


def test_missing_virtual_service_is_activity_failed(seeded: RunningEmulator) -> None:
    with pytest.raises(ActivityFailed) as info:
        actions.inject_delay("ratings", "1s")
    assert "VirtualService default/ratings" in str(info.value) and "not found" in str(info.value)


def test_conflicting_writer_between_read_and_write_is_retried_on_fresh_state(
    seeded: RunningEmulator,
) -> None:
    assert seeded.api is not None

    def other_writer(api: Any, verb: str, key: Key) -> None:
        # Someone labels the object after our read, before our write lands.
        api.edit_object(
            VS, "default", "reviews", lambda o: o["metadata"]["labels"].update(team="b")
        )

    seeded.api.before["update"] = [other_writer]
    result = actions.inject_delay("reviews", "3s")
    assert result["attempts"] == 2
    live = seeded.api.get_object(VS, "default", "reviews")
    assert live is not None
    assert live["metadata"]["labels"] == {"app": "reviews", "team": "b"}  # their change kept
    assert all(
        r["fault"]["delay"]["fixedDelay"] == "3s" for r in live["spec"]["http"]
    )  # ours applied
    entry = Ledger("test-run").entries()[0]
    assert entry["before"]["labels"] == {"app": "reviews", "team": "b"}  # rebased on fresh state
    actions.restore()
    after = json.loads(state(seeded, VS, "reviews") or "null")
    assert after is not None and after["labels"] == {"app": "reviews", "team": "b"}
    assert all("fault" not in route for route in after["spec"]["http"])


def test_restore_refuses_to_clobber_someone_elses_change(seeded: RunningEmulator) -> None:
    assert seeded.api is not None
    seeded.api.put_object(
        dict(json.loads(json.dumps(REVIEWS)), metadata={"name": "ratings", "namespace": "default"})
    )
    ratings_before = state(seeded, VS, "ratings")
    actions.inject_delay("reviews", "2s")
    actions.inject_delay("ratings", "2s")
    seeded.api.edit_object(
        VS, "default", "reviews", lambda o: o["spec"]["hosts"].append("reviews.example.com")
    )
    theirs = state(seeded, VS, "reviews")
    with pytest.raises(ActivityFailed) as info:
        actions.restore()
    text = str(info.value)
    assert "VirtualService default/reviews: refused" in text and "reviews.example.com" in text
    assert state(seeded, VS, "reviews") == theirs  # left alone
    assert state(seeded, VS, "ratings") == ratings_before  # the others were restored


def test_forbidden_write_is_activity_failed_and_nothing_is_left_pending(
    seeded: RunningEmulator,
) -> None:
    assert seeded.api is not None
    seeded.api.forbidden.add(("update", VS))
    before = canonical(seeded.api.get_object(VS, "default", "reviews"))
    with pytest.raises(ActivityFailed) as info:
        actions.inject_delay("reviews", "2s")
    assert "VirtualService default/reviews" in str(info.value) and "forbidden" in str(info.value)
    assert canonical(seeded.api.get_object(VS, "default", "reviews")) == before
    assert [e["state"] for e in Ledger("test-run").entries()] == ["not-applied"]
    assert actions.restore()["objects"] == []


def test_remove_faults_removes_only_what_we_injected(seeded: RunningEmulator) -> None:
    assert seeded.api is not None
    seeded.api.edit_object(
        VS,
        "default",
        "reviews",
        lambda o: o["spec"]["http"][0].update(
            fault={"abort": {"httpStatus": 500, "percentage": {"value": 1}}}
        ),
    )
    before = state(seeded, VS, "reviews")
    actions.inject_delay("reviews", "2s", route="jason")
    live = seeded.api.get_object(VS, "default", "reviews")
    assert (
        live is not None and live["spec"]["http"][0]["fault"]["abort"]["httpStatus"] == 500
    )  # kept
    actions.remove_faults("reviews")
    # Exactly as before: spec, labels, annotations (no bookkeeping annotation left behind)...
    assert state(seeded, VS, "reviews") == before
    # ...and nothing outstanding: restore has nothing to do and `restore --list` shows nothing.
    assert Ledger("test-run").outstanding() == []
    assert actions.restore()["objects"] == []


def test_remove_faults_after_a_targeted_fault_gives_back_the_exact_object(
    seeded: RunningEmulator,
) -> None:
    before = state(seeded, VS, "reviews")
    actions.inject_delay("reviews", "1s", source_labels={"app": "fortio"})
    actions.inject_abort("reviews", status=503, percentage=50, headers={"x-chaos": "1"})
    assert state(seeded, VS, "reviews") != before
    result = actions.remove_faults("reviews")
    assert result["changed"] is True
    assert state(seeded, VS, "reviews") == before
    assert [e["state"] for e in Ledger("test-run").entries()] == ["restored"] * 3


def test_no_further_change_after_someone_else_changed_the_object(
    seeded: RunningEmulator,
) -> None:
    """Changing it again would let restore silently undo their change: refuse, with the diff."""
    assert seeded.api is not None
    before = state(seeded, VS, "reviews")
    actions.inject_delay("reviews", "2s", route="default")
    seeded.api.edit_object(
        VS, "default", "reviews", lambda o: o["metadata"]["labels"].update(team="b")
    )
    theirs = canonical(seeded.api.get_object(VS, "default", "reviews"))
    with pytest.raises(ActivityFailed) as info:
        actions.inject_abort("reviews", status=500, route="jason")
    text = str(info.value)
    assert "VirtualService default/reviews" in text and "changed by someone else" in text
    assert '"team": "b"' in text  # the diff says what they changed
    assert canonical(seeded.api.get_object(VS, "default", "reviews")) == theirs  # not touched
    with pytest.raises(ActivityFailed, match="refused"):
        actions.restore()
    assert state(seeded, VS, "reviews") != before  # their change is still there


def test_headers_target_inserts_a_route_in_front(seeded: RunningEmulator) -> None:
    actions.inject_abort(
        "reviews", status=503, route="default", headers={"x-chaos": {"exact": "1"}}
    )
    assert seeded.api is not None
    routes = seeded.api.get_object(VS, "default", "reviews")["spec"]["http"]  # type: ignore[index]
    assert len(routes) == 3
    inserted = routes[1]
    assert inserted["name"].startswith("chaosmesh-fault-")
    assert inserted["match"] == [{"headers": {"x-chaos": {"exact": "1"}}}]
    assert inserted["fault"]["abort"]["httpStatus"] == 503
    assert "fault" not in routes[2]


def test_shift_traffic_sets_weights_and_rejects_unknown_subsets(seeded: RunningEmulator) -> None:
    assert seeded.api is not None
    result = actions.shift_traffic("reviews", {"v1": 90, "v2": 10}, route="default")
    assert result["changed"] is True
    route = seeded.api.get_object(VS, "default", "reviews")["spec"]["http"][1]  # type: ignore[index]
    assert {(d["destination"]["subset"], d["weight"]) for d in route["route"]} == {
        ("v1", 90),
        ("v2", 10),
    }
    before = canonical(seeded.api.get_object(VS, "default", "reviews"))
    with pytest.raises(ActivityFailed) as info:
        actions.shift_traffic("reviews", {"v1": 50, "v3": 50})
    assert "default/reviews" in str(info.value) and "v3" in str(info.value)
    with pytest.raises(ActivityFailed) as info:
        actions.shift_traffic("reviews", {"v1": -1, "v2": 101})
    assert "weight" in str(info.value)
    assert canonical(seeded.api.get_object(VS, "default", "reviews")) == before


def test_shift_traffic_finds_subsets_in_the_destination_hosts_namespace(
    kapi: RunningEmulator,
) -> None:
    """Istio applies the host namespace's DestinationRule to callers elsewhere: so do we."""
    assert kapi.api is not None
    seed(
        kapi,
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "reviews-edge", "namespace": "edge"},
            "spec": {
                "hosts": ["reviews.shop.svc.cluster.local"],
                "http": [{"route": [{"destination": {"host": "reviews.shop.svc.cluster.local"}}]}],
            },
        },
        dict(REVIEWS_DR, metadata={"name": "reviews", "namespace": "shop"}),
    )
    actions.shift_traffic("reviews-edge", {"v1": 25, "v2": 75}, ns="edge")
    route = kapi.api.get_object(VS, "edge", "reviews-edge")["spec"]["http"][0]  # type: ignore[index]
    assert [(d["destination"]["subset"], d["weight"]) for d in route["route"]] == [
        ("v1", 25),
        ("v2", 75),
    ]
    with pytest.raises(ActivityFailed, match=r"subset 'v9' is not defined.*defined: v1, v2"):
        actions.shift_traffic("reviews-edge", {"v9": 100}, ns="edge")


def test_timeout_and_retries_then_restore(seeded: RunningEmulator) -> None:
    before = state(seeded, VS, "reviews")
    actions.set_timeout("reviews", "2s", route="default")
    actions.set_retries("reviews", 3, per_try_timeout="500ms", retry_on="5xx", route="default")
    assert seeded.api is not None
    route = seeded.api.get_object(VS, "default", "reviews")["spec"]["http"][1]  # type: ignore[index]
    assert route["timeout"] == "2s"
    assert route["retries"]["attempts"] == 3 and route["retries"]["retryOn"] == "5xx"
    with pytest.raises(ActivityFailed) as info:
        actions.set_timeout("reviews", "later")
    assert "default/reviews" in str(info.value) and "timeout" in str(info.value)
    actions.restore()
    assert state(seeded, VS, "reviews") == before


def test_circuit_breaker_created_then_deleted_by_restore(seeded: RunningEmulator) -> None:
    result = actions.apply_circuit_breaker(
        "ratings",
        host="ratings",
        max_connections=1,
        http1_max_pending_requests=1,
        consecutive_5xx_errors=1,
        interval="1s",
        base_ejection_time="3m",
        max_ejection_percent=100,
    )
    assert result["created"] is True
    created = json.loads(state(seeded, "destinationrules", "ratings") or "null")
    assert created is not None
    policy = created["spec"]["trafficPolicy"]
    assert policy["connectionPool"]["tcp"]["maxConnections"] == 1
    assert policy["outlierDetection"]["consecutive5xxErrors"] == 1
    dr_before = state(seeded, "destinationrules", "reviews")
    actions.apply_circuit_breaker("reviews", subset="v2", max_connections=2)
    actions.remove_circuit_breaker("reviews", subset="v2")
    with pytest.raises(ActivityFailed) as info:
        actions.apply_circuit_breaker("reviews", subset="v9", max_connections=2)
    assert "default/reviews" in str(info.value) and "v9" in str(info.value)
    outcomes = {o["object"]: o["result"] for o in actions.restore()["objects"]}
    assert outcomes["DestinationRule default/ratings"] == "deleted"
    assert state(seeded, "destinationrules", "ratings") is None
    assert state(seeded, "destinationrules", "reviews") == dr_before


def test_restore_only_touches_its_namespace_when_asked(seeded: RunningEmulator) -> None:
    assert seeded.api is not None
    other = json.loads(json.dumps(REVIEWS))
    other["metadata"]["namespace"] = "shop"
    seeded.api.put_object(other)
    actions.inject_delay("reviews", "1s")
    actions.inject_delay("reviews", "1s", ns="shop")
    actions.restore(ns="shop")
    assert state(seeded, VS, "reviews", "shop") == canonical(
        {
            "spec": REVIEWS["spec"],
            "labels": REVIEWS["metadata"]["labels"],
            "annotations": REVIEWS["metadata"]["annotations"],
        }
    )
    assert json.loads(state(seeded, VS, "reviews") or "{}")["annotations"].get(LEDGER_ANNOTATION)
    assert [o["object"] for o in actions.restore()["objects"]] == ["VirtualService default/reviews"]


def test_a_conflict_that_removes_the_target_route_fails_cleanly(seeded: RunningEmulator) -> None:
    assert seeded.api is not None

    def drop_route(api: Any, verb: str, key: Key) -> None:
        api.edit_object(VS, "default", "reviews", lambda o: o["spec"]["http"].pop(0))

    seeded.api.before["update"] = [drop_route]
    with pytest.raises(ActivityFailed) as info:
        actions.inject_delay("reviews", "2s", route="jason")
    assert "default/reviews" in str(info.value) and "jason" in str(info.value)
    live = seeded.api.get_object(VS, "default", "reviews")
    assert live is not None and [r["name"] for r in live["spec"]["http"]] == ["default"]
    assert LEDGER_ANNOTATION not in live["metadata"]["annotations"]  # nothing of ours landed
    assert [e["state"] for e in Ledger("test-run").entries()] == ["not-applied"]


@pytest.mark.parametrize("emulator_options", [{"delays": {"get": 5.0}}])
def test_an_unresponsive_api_is_activity_failed_within_the_configured_timeout(
    seeded: RunningEmulator,
) -> None:
    assert seeded.api is not None
    before = canonical(seeded.api.get_object(VS, "default", "reviews"))
    with pytest.raises(ActivityFailed) as info:
        actions.inject_delay("reviews", "2s", configuration={"kubernetes_request_timeout": 0.5})
    text = str(info.value)
    assert "VirtualService default/reviews" in text
    assert "no answer from the Kubernetes API within 0.5s (get)" in text
    assert canonical(seeded.api.get_object(VS, "default", "reviews")) == before
    assert Ledger("test-run").entries() == []


def test_actions_log_what_they_change_to_the_chaostoolkit_logger(
    seeded: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """As chaostoolkit-kubernetes does: the lines end up in chaostoolkit.log."""
    with caplog.at_level(logging.INFO, logger="chaostoolkit"):
        result = actions.inject_delay("reviews", "2s", percentage=50, route="default")
        actions.restore()
    lines = [r.getMessage() for r in caplog.records if r.name == "chaostoolkit"]
    assert any(
        line.startswith("chaosmesh: inject_delay on VirtualService default/reviews (delay=2s,")
        and "percentage=50" in line
        and "run test-run" in line
        for line in lines
    ), lines
    assert (
        "chaosmesh: inject_delay on VirtualService default/reviews: changed (resourceVersion"
        f" {result['resourceVersion']}, ledger entry {result['ledger_entry']})"
    ) in lines
    assert any(line.startswith("chaosmesh: restore VirtualService default/reviews: restored")
               for line in lines)  # fmt: skip
