"""The actions and restore against the embedded mesh's own API server (a second, independent API).

Envoy is left out (the apply hook accepts every push); the server, its store, Istio's
validation and the official client are real. Objects must come back byte-identical.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext import actions
from chaosmesh_ext.istio import validate
from chaosmesh_ext.kube import ledger as ledger_module
from chaosmesh_ext.kube.client import api_client
from chaosmesh_ext.kube.ledger import content
from chaosmesh_ext.kube.objects import IstioObjects, ObjectRef
from chaosmesh_ext.mesh import api as mesh_api
from tests.support.kubefix import REVIEWS, REVIEWS_DR, canonical

VS = ObjectRef("VirtualService", "default", "reviews")
DR = ObjectRef("DestinationRule", "default", "reviews")
NEW_DR = ObjectRef("DestinationRule", "default", "ratings")


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[IstioObjects]:
    store = mesh_api.Store(validate=validate.validate, apply=lambda state: "1")
    server = mesh_api.ApiServer(store).start()
    try:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: m\n  cluster:\n"
            f"    server: {server.url}\ncontexts:\n- name: m\n  context:\n"
            "    cluster: m\n    user: m\ncurrent-context: m\nusers:\n- name: m\n  user: {}\n"
        )
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.setenv("CHAOSMESH_LEDGER_DIR", str(tmp_path / "ledger"))
        monkeypatch.setenv("CHAOSMESH_RUN_ID", "embedded-run")
        monkeypatch.setattr(ledger_module, "_process_run_id", None)
        client = api_client()
        try:
            yield IstioObjects(client)
        finally:
            client.close()
    finally:
        server.stop()


def _content(objects: IstioObjects, ref: ObjectRef) -> str:
    """Spec, labels and annotations as canonical JSON text ("null" when absent)."""
    return canonical(content(objects.get_or_none(ref)))


def test_actions_then_restore_are_exact_on_the_embedded_api(embedded: IstioObjects) -> None:
    embedded.create(VS, copy.deepcopy(REVIEWS))
    embedded.create(DR, copy.deepcopy(REVIEWS_DR))
    assert embedded.version == "v1"
    before = {ref: _content(embedded, ref) for ref in (VS, DR, NEW_DR)}
    actions.inject_delay("reviews", "2s", percentage=50, route="default")
    actions.inject_abort("reviews", status=503, headers={"x-chaos": {"exact": "1"}})
    actions.shift_traffic("reviews", {"v1": 90, "v2": 10}, route="default")
    actions.set_timeout("reviews", "1s", route="default")
    actions.apply_circuit_breaker("reviews", subset="v2", max_connections=1)
    actions.apply_circuit_breaker("ratings", host="ratings", consecutive_5xx_errors=1)
    assert all(_content(embedded, ref) != before[ref] for ref in (VS, DR, NEW_DR))
    with pytest.raises(ActivityFailed, match="default/reviews"):
        actions.inject_delay("reviews", "2s", percentage=0)
    outcomes = {o["object"]: o["result"] for o in actions.restore()["objects"]}
    assert outcomes == {
        "VirtualService default/reviews": "restored",
        "DestinationRule default/reviews": "restored",
        "DestinationRule default/ratings": "deleted",
    }
    assert {ref: _content(embedded, ref) for ref in (VS, DR, NEW_DR)} == before
    assert actions.restore()["objects"] == []
