"""The change ledger: written before the change, durable, and enough to recover after a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext.kube import ledger as ledger_module
from chaosmesh_ext.kube.changes import apply_change
from chaosmesh_ext.kube.client import api_client
from chaosmesh_ext.kube.ledger import LEDGER_ANNOTATION, Ledger, current_run_id, write_atomic
from chaosmesh_ext.kube.objects import IstioObjects, KubeApiError, ObjectRef
from chaosmesh_ext.kube.restore import restore_ledger
from tests.support.kapi import Key, RunningEmulator, wait_until
from tests.support.kubefix import REVIEWS, canonical, seed, state

REF = ObjectRef("VirtualService", "default", "reviews")
VS = "virtualservices"


def _add_host(vs: dict[str, Any] | None) -> dict[str, Any]:
    assert vs is not None
    vs["spec"]["hosts"] = [*vs["spec"]["hosts"], "reviews.example.com"]
    return vs


def test_the_entry_is_on_disk_before_the_write_reaches_the_api(kapi: RunningEmulator) -> None:
    seed(kapi, REVIEWS)
    before = state(kapi, VS, "reviews")
    seen: list[dict[str, Any]] = []

    def look_at_ledger(api: Any, verb: str, key: Key) -> None:
        seen.extend(Ledger("test-run").entries())

    assert kapi.api is not None
    kapi.api.before["update"] = [look_at_ledger]
    client = api_client()
    try:
        apply_change(IstioObjects(client), Ledger("test-run"), REF, _add_host, "test")
    finally:
        client.close()
    assert [e["state"] for e in seen] == ["pending"]
    entry = seen[0]
    assert canonical(entry["before"]) == before and entry["absent_before"] is False
    assert (entry["kind"], entry["namespace"], entry["name"]) == (
        "VirtualService",
        "default",
        "reviews",
    )
    assert entry["api_version"] == "networking.istio.io/v1" and entry["run_id"] == "test-run"
    assert entry["time"]


def test_a_failed_rewrite_keeps_the_previous_record(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    write_atomic(path, {"entries": [1]})
    with pytest.raises(TypeError):
        write_atomic(path, {"entries": [object()]})
    assert json.loads(path.read_text()) == {"entries": [1]}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary file left


def test_run_id_from_env_else_set_else_generated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "_process_run_id", None)
    monkeypatch.setenv("CHAOSMESH_RUN_ID", "from-env")
    assert current_run_id() == "from-env"
    monkeypatch.delenv("CHAOSMESH_RUN_ID")
    generated = current_run_id()
    assert generated == current_run_id()
    ledger_module.set_run_id("from-control")
    assert current_run_id() == "from-control"


@pytest.mark.parametrize("emulator_options", [{"delays": {"update": 2.5}}])
def test_a_write_that_timed_out_but_landed_is_still_restored(kapi: RunningEmulator) -> None:
    seed(kapi, REVIEWS)
    before = state(kapi, VS, "reviews")
    client = api_client()
    try:
        objects = IstioObjects(client, "v1", timeout=1.0)
        with pytest.raises(KubeApiError, match="no answer"):
            apply_change(objects, Ledger("test-run"), REF, _add_host, "test")
        assert [e["state"] for e in Ledger("test-run").entries()] == ["pending"]  # outcome unknown
        # The server finishes the write after the client gave up.
        assert wait_until(
            lambda: "reviews.example.com" in json.dumps(state(kapi, VS, "reviews")), 15
        )
        patient = IstioObjects(client, "v1", timeout=10)
        outcomes = restore_ledger(Ledger("test-run"), lambda version: patient)
    finally:
        client.close()
    assert [o.result for o in outcomes] == ["restored"]
    assert state(kapi, VS, "reviews") == before


def test_a_pending_write_that_never_landed_changes_nothing_on_restore(
    kapi: RunningEmulator,
) -> None:
    seed(kapi, REVIEWS)
    assert kapi.api is not None
    untouched = kapi.api.get_object(VS, "default", "reviews")
    assert untouched is not None
    ledger = Ledger("test-run")
    ledger.begin(
        "VirtualService", "default", "reviews", "networking.istio.io/v1", untouched, "test"
    )
    client = api_client()
    try:
        outcomes = restore_ledger(ledger, lambda version: IstioObjects(client, "v1"))
    finally:
        client.close()
    assert [o.result for o in outcomes] == ["already-restored"]
    assert (
        kapi.api.get_object(VS, "default", "reviews") == untouched
    )  # not even a new resourceVersion
    assert ledger.outstanding() == []


def test_the_object_carries_the_entry_id_until_restored(kapi: RunningEmulator) -> None:
    seed(kapi, REVIEWS)
    client = api_client()
    try:
        objects = IstioObjects(client)
        result = apply_change(objects, Ledger("test-run"), REF, _add_host, "test")
        annotations = objects.get(REF)["metadata"]["annotations"]
        assert annotations[LEDGER_ANNOTATION] == result.ledger_entry == "test-run#1"
        assert annotations["owner"] == "team-a"
        restore_ledger(Ledger("test-run"), lambda version: objects)
        assert LEDGER_ANNOTATION not in objects.get(REF)["metadata"]["annotations"]
    finally:
        client.close()


def test_a_pending_write_that_never_landed_does_not_block_someone_elses_change(
    kapi: RunningEmulator,
) -> None:
    seed(kapi, REVIEWS)
    assert kapi.api is not None
    ledger = Ledger("test-run")
    untouched = kapi.api.get_object(VS, "default", "reviews")
    ledger.begin(
        "VirtualService", "default", "reviews", "networking.istio.io/v1", untouched, "test"
    )
    kapi.api.edit_object(VS, "default", "reviews", lambda o: o["spec"]["hosts"].append("other"))
    theirs = canonical(kapi.api.get_object(VS, "default", "reviews"))
    client = api_client()
    try:
        outcomes = restore_ledger(ledger, lambda version: IstioObjects(client, "v1"))
    finally:
        client.close()
    assert [(o.result, o.ok) for o in outcomes] == [("never-applied", True)]
    assert canonical(kapi.api.get_object(VS, "default", "reviews")) == theirs
    assert [e["state"] for e in ledger.entries()] == ["not-applied"]


def test_a_full_disk_under_the_ledger_stops_the_action_before_the_change(
    seeded: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real full filesystem: the first entry cannot be recorded, so nothing is changed, and
    the record of the run's earlier change is still whole."""
    from chaoslib.exceptions import ActivityFailed

    from chaosmesh_ext import actions
    from tests.support.full_disk import fill, small_filesystem

    with small_filesystem(tmp_path / "small", "1m") as small:
        monkeypatch.setenv("CHAOSMESH_LEDGER_DIR", str(small))
        actions.inject_delay("reviews", "2s", route="default")
        recorded = (small / "test-run.json").read_text()
        changed = state(seeded, VS, "reviews")
        fill(small)
        with pytest.raises(ActivityFailed, match="No space left on device") as failure:
            actions.inject_abort("reviews", status=500, route="default")
        assert "change ledger" in str(failure.value)
        assert state(seeded, VS, "reviews") == changed  # not touched
        assert (small / "test-run.json").read_text() == recorded  # old record, whole
        assert sorted(p.name for p in small.iterdir()) == [".filler", "test-run.json"]
