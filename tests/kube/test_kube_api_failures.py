"""What the actions meet on a real cluster's API server and how they answer it, over real HTTP.

Each failure is served the way kube-apiserver words it (tests/support/kapi.py): throttling by
API Priority and Fairness (429 + Retry-After), Istio's validating webhook unreachable while
istiod is down (500), a namespace that does not exist (404), and an object with finalizers
being deleted. Every refusal is a clear ``ActivityFailed`` and leaves the objects exactly as
they were (compared as canonical JSON text).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext import actions
from chaosmesh_ext.kube.ledger import Ledger
from tests.support.kapi import RunningEmulator, wait_until
from tests.support.kubefix import canonical, state

VS, DR = "virtualservices", "destinationrules"
HOLD = "example.com/hold"  # a finalizer of some other controller


def _entries() -> list[dict[str, Any]]:
    return Ledger("test-run").entries()


# -- 429: throttled ---------------------------------------------------------------------------


@pytest.mark.parametrize("emulator_options", [{"throttle": {"update": 1}, "retry_after": 1}])
def test_a_429_is_retried_after_retry_after_within_the_budget(seeded: RunningEmulator) -> None:
    result = actions.inject_delay("reviews", "2s", route="default")
    assert result["changed"] is True
    assert seeded.api is not None and seeded.api.throttle == {"update": 0}  # it was throttled
    live = seeded.api.get_object(VS, "default", "reviews")
    assert live is not None and live["spec"]["http"][1]["fault"]["delay"]["fixedDelay"] == "2s"
    assert [e["state"] for e in _entries()] == ["applied"]


@pytest.mark.parametrize(
    ("emulator_options", "verb", "entries"),
    [
        # Throttled on the first read: nothing recorded, nothing written.
        ({"throttle": {"get": 100}, "retry_after": 1}, "get", []),
        # Throttled on the write: the entry made before it says it never applied.
        ({"throttle": {"update": 100}, "retry_after": 1}, "replace", ["not-applied"]),
    ],
    ids=["on the read", "on the write"],
)
def test_throttled_beyond_the_budget_is_a_clear_error_and_nothing_changes(
    seeded: RunningEmulator, verb: str, entries: list[str]
) -> None:
    before = state(seeded, VS, "reviews")
    with pytest.raises(ActivityFailed) as failed:
        actions.inject_abort("reviews", 503, configuration={"kubernetes_request_timeout": 1.5})
    assert str(failed.value).startswith(
        f"VirtualService default/reviews: the API server throttled {verb} "
        "(429 Too Many Requests) on all "
    )
    assert "within the 1.5s request budget (kubernetes_request_timeout); nothing changed" in str(
        failed.value
    )
    assert state(seeded, VS, "reviews") == before
    assert [e["state"] for e in _entries()] == entries


# -- 500: istiod's validating webhook unreachable ---------------------------------------------


@pytest.mark.parametrize("emulator_options", [{"webhook_down": True}])
def test_istiod_down_says_its_webhook_is_unreachable_and_nothing_changes(
    seeded: RunningEmulator,
) -> None:
    before = state(seeded, VS, "reviews")
    with pytest.raises(ActivityFailed) as failed:
        actions.inject_abort("reviews", 503, percentage=20)
    message = str(failed.value)
    assert message.startswith(
        "VirtualService default/reviews: replace refused, nothing changed: istiod's validation "
        "webhook (validation.istio.io) is unreachable — is istiod running? "
        "(kubectl -n istio-system get pods -l app=istiod): Internal error occurred: "
        'failed calling webhook "validation.istio.io": failed to call webhook: Post '
    )
    assert message.endswith("connect: connection refused")
    assert state(seeded, VS, "reviews") == before
    assert [e["state"] for e in _entries()] == ["not-applied"]
    actions.restore()  # nothing outstanding: a no-op
    assert state(seeded, VS, "reviews") == before


# -- 404: the namespace does not exist --------------------------------------------------------


@pytest.mark.parametrize("emulator_options", [{"namespaces": {"default"}}])
def test_creating_in_a_namespace_that_does_not_exist_names_the_namespace(
    kapi: RunningEmulator,
) -> None:
    with pytest.raises(ActivityFailed) as failed:
        actions.apply_circuit_breaker("ratings", host="ratings", max_connections=1, ns="shop")
    assert str(failed.value) == (
        "DestinationRule shop/ratings: namespace 'shop' does not exist (create): "
        'namespaces "shop" not found'
    )
    assert kapi.api is not None and kapi.api.store == {}
    assert [e["state"] for e in _entries()] == ["not-applied"]


# -- finalizers: deletionTimestamp ------------------------------------------------------------


def _hold(emu: RunningEmulator, plural: str, name: str) -> None:
    assert emu.api is not None
    emu.api.edit_object(
        plural, "default", name, lambda o: o["metadata"].setdefault("finalizers", []).append(HOLD)
    )


def _release(emu: RunningEmulator, plural: str, name: str) -> None:
    assert emu.api is not None
    emu.api.edit_object(plural, "default", name, lambda o: o["metadata"].pop("finalizers"))


def _deleting(emu: RunningEmulator, plural: str, name: str) -> bool:
    assert emu.api is not None
    obj = emu.api.get_object(plural, "default", name)
    return obj is not None and bool(obj["metadata"].get("deletionTimestamp"))


def test_a_created_object_held_by_a_finalizer_is_not_restored_until_gone(
    kapi: RunningEmulator,
) -> None:
    config = {"kubernetes_request_timeout": 1}
    actions.apply_circuit_breaker(
        "ratings", host="ratings", max_connections=1, configuration=config
    )
    _hold(kapi, DR, "ratings")
    with pytest.raises(ActivityFailed) as failed:
        actions.restore(configuration=config)
    assert (
        "DestinationRule default/ratings: deleting: created by this run; deletion requested, "
        "but it is still being deleted since "
    ) in str(failed.value)
    assert f"(waiting for finalizers: {HOLD}) after 1s; run restore again" in str(failed.value)
    assert _deleting(kapi, DR, "ratings")
    assert [e["state"] for e in _entries()] == ["applied"]  # still outstanding

    _release(kapi, DR, "ratings")  # the other controller is done: the object goes
    assert kapi.api is not None and kapi.api.get_object(DR, "default", "ratings") is None
    outcome = actions.restore(configuration=config)["objects"]
    assert [o["result"] for o in outcome] == ["already-restored"]
    assert [e["state"] for e in _entries()] == ["restored"]


def test_restore_waits_on_the_watch_for_a_finalizer_to_finish(kapi: RunningEmulator) -> None:
    actions.apply_circuit_breaker("ratings", host="ratings", max_connections=1)
    _hold(kapi, DR, "ratings")

    def controller() -> None:  # finishes its cleanup once it sees the deletion
        if wait_until(lambda: _deleting(kapi, DR, "ratings"), 30):
            _release(kapi, DR, "ratings")

    thread = threading.Thread(target=controller)
    thread.start()
    try:
        outcome = actions.restore()["objects"]
    finally:
        thread.join(35)
    assert [(o["result"], o["detail"]) for o in outcome] == [
        ("deleted", "created by this run; deleted (once its finalizers were done)")
    ]
    assert kapi.api is not None and kapi.api.store.get((DR, "default", "ratings")) is None


def test_an_object_being_deleted_is_not_changed(seeded: RunningEmulator) -> None:
    _hold(seeded, VS, "reviews")
    assert seeded.api is not None
    seeded.api.edit_object(
        VS,
        "default",
        "reviews",
        lambda o: o["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z"),
    )
    before = canonical(seeded.api.get_object(VS, "default", "reviews"))
    with pytest.raises(ActivityFailed) as failed:
        actions.inject_delay("reviews", "1s")
    assert str(failed.value) == (
        "VirtualService default/reviews: being deleted since 2026-01-01T00:00:00Z "
        f"(waiting for finalizers: {HOLD}); not changed"
    )
    assert state(seeded, VS, "reviews") is not None
    assert (
        canonical(seeded.api.get_object(VS, "default", "reviews")) == before
    )  # not even its version
    assert _entries() == []


def test_restore_leaves_alone_an_object_someone_else_is_deleting(seeded: RunningEmulator) -> None:
    actions.inject_delay("reviews", "1s")
    _hold(seeded, VS, "reviews")
    assert seeded.api is not None
    seeded.api.edit_object(
        VS,
        "default",
        "reviews",
        lambda o: o["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z"),
    )
    before = canonical(seeded.api.get_object(VS, "default", "reviews"))
    with pytest.raises(ActivityFailed) as failed:
        actions.restore()
    assert (
        "VirtualService default/reviews: refused: being deleted since 2026-01-01T00:00:00Z "
        f"(waiting for finalizers: {HOLD}), by someone else since this run changed it; left alone"
    ) in str(failed.value)
    assert canonical(seeded.api.get_object(VS, "default", "reviews")) == before
