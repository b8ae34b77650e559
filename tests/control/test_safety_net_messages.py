"""What the safety net says: an error once (not once per clean-up hook), and in the journal."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosmesh_ext import control
from chaosmesh_ext.kube.ledger import Ledger


@pytest.fixture
def fresh_control(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("CHAOSMESH_LEDGER_DIR", str(tmp_path / "ledger"))
    monkeypatch.setenv("CHAOSMESH_RUN_ID", "run-1")
    monkeypatch.delenv("MESH_TARGET", raising=False)
    try:
        yield
    finally:
        control._state.clear()
        control._state.update(control._fresh_state())


def test_the_safety_nets_error_is_printed_once_and_journaled(
    fresh_control: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = Ledger("run-1")
    entry = ledger.begin(
        "VirtualService", "default", "tomcat-vs", "networking.istio.io/v1", {"spec": {}}, "x"
    )
    ledger.applied(entry["id"], {"spec": {"hosts": ["t"]}, "metadata": {"resourceVersion": "2"}})
    # The run's cluster cannot be reached any more: a kubeconfig that is gone.
    configuration = {"kubeconfig_path": str(tmp_path / "gone")}
    control.configure_control(configuration=configuration, secrets={})
    journal: dict[str, object] = {"experiment": {"title": "t"}}
    with caplog.at_level(logging.ERROR, logger="chaostoolkit"):
        control.after_experiment_control(state=journal, configuration=configuration)
        control.cleanup_control()
    said = [r.getMessage() for r in caplog.records if "could not restore" in r.getMessage()]
    assert len(said) == 1, said
    assert "chaosmesh restore --run run-1" in said[0]
    (section,) = journal["experiment"]["extensions"]  # type: ignore[index]
    assert section["safety_net"][0]["when"] == "after_experiment"
    assert "gone" in section["safety_net"][0]["error"]


def test_a_failed_embedded_start_still_points_kubernetes_clients_at_the_mesh_until_cleanup(
    fresh_control: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from chaoslib.exceptions import InterruptExecution

    monkeypatch.setenv("KUBECONFIG", "/home/user/.kube/production")
    monkeypatch.setenv("KUBERNETES_CONTEXT", "production")
    not_a_directory = tmp_path / "state"
    not_a_directory.write_text("a file where the state directory should be")
    configuration = {"mesh_target": "embedded", "mesh_state_dir": str(not_a_directory)}
    # chaoslib swallows what configure_control raises and plays on: the environment must
    # still name no other cluster, and the run must stop before its method.
    with pytest.raises(InterruptExecution, match=str(not_a_directory)):
        control.configure_control(configuration=configuration, secrets={})
    # chaosk8s activities read the environment: during the run it names no other cluster.
    assert os.environ["KUBECONFIG"] == str(not_a_directory / "kubeconfig")
    assert "KUBERNETES_CONTEXT" not in os.environ
    with pytest.raises(InterruptExecution, match=str(not_a_directory)):
        control.before_experiment_control(context={})
    control.cleanup_control()
    assert os.environ["KUBECONFIG"] == "/home/user/.kube/production"
    assert os.environ["KUBERNETES_CONTEXT"] == "production"
