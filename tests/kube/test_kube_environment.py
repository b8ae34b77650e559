"""``kube.environment.point_at``: every Kubernetes client of the process finds only the given
kubeconfig (KUBECONFIG, the official client's default file), overrides are gone, and
``restore`` puts all of it back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kubernetes.config import kube_config

from chaosmesh_ext.kube import environment


def test_point_at_then_restore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/home/user/.kube/production")
    monkeypatch.setenv("KUBERNETES_CONTEXT", "production")
    monkeypatch.setenv("KUBERNETES_HOST", "https://prod.example:6443")
    monkeypatch.delenv("CHAOSTOOLKIT_IN_POD", raising=False)
    default = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    mesh = tmp_path / "kubeconfig"

    saved = environment.point_at(mesh)
    try:
        assert os.environ["KUBECONFIG"] == str(mesh)
        assert "KUBERNETES_CONTEXT" not in os.environ and "KUBERNETES_HOST" not in os.environ
        assert str(mesh) == kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    finally:
        saved.restore()
    assert os.environ["KUBECONFIG"] == "/home/user/.kube/production"
    assert os.environ["KUBERNETES_CONTEXT"] == "production"
    assert os.environ["KUBERNETES_HOST"] == "https://prod.example:6443"
    assert "CHAOSTOOLKIT_IN_POD" not in os.environ
    assert default == kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    saved.restore()  # twice is harmless


def test_child_environment_names_the_mesh_only() -> None:
    env = environment.child_environment(
        {"PATH": "/bin", "KUBECONFIG": "/prod", "KUBERNETES_CONTEXT": "prod"}, "/mesh/kubeconfig"
    )
    assert env == {"PATH": "/bin", "KUBECONFIG": "/mesh/kubeconfig"}
