"""Shared kube test fixtures: the API emulator wired in via KUBECONFIG, and seed objects."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext.kube import ledger as ledger_module
from tests.support.kapi import RunningEmulator

REVIEWS: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {
        "name": "reviews",
        "namespace": "default",
        "labels": {"app": "reviews"},
        "annotations": {"owner": "team-a"},
    },
    "spec": {
        "hosts": ["reviews"],
        "http": [
            {
                "name": "jason",
                "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                "route": [{"destination": {"host": "reviews", "subset": "v2"}}],
            },
            {
                "name": "default",
                "route": [{"destination": {"host": "reviews", "subset": "v1"}}],
            },
        ],
    },
}

REVIEWS_DR: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "reviews", "namespace": "default"},
    "spec": {
        "host": "reviews",
        "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}},
        ],
    },
}


def seed(emu: RunningEmulator, *objs: dict[str, Any]) -> None:
    assert emu.api is not None
    for obj in objs:
        emu.api.put_object(copy.deepcopy(obj))


def canonical(obj: Any) -> str:
    """``obj`` as canonical JSON text: what "byte for byte" means in these tests.

    Unlike ``==`` on dicts, it tells 1 from 1.0 from True, and a key that is absent from one
    that is empty (``labels: {}``), as a stored object does.
    """
    return json.dumps(obj, sort_keys=True)


def state(emu: RunningEmulator, plural: str, name: str, ns: str = "default") -> str | None:
    """What a user compares byte for byte: spec, labels, annotations as canonical JSON text
    (keys absent from the object stay absent); None when the object does not exist."""
    assert emu.api is not None
    obj = emu.api.get_object(plural, ns, name)
    if obj is None:
        return None
    meta = obj["metadata"]
    picked = {
        "spec": obj.get("spec"),
        "labels": meta.get("labels"),
        "annotations": meta.get("annotations"),
    }
    return canonical({k: v for k, v in picked.items() if k in obj or k in meta})


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    return {}


@pytest.fixture
def kapi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator_options: dict[str, Any]
) -> Iterator[RunningEmulator]:
    """A fresh emulator; KUBECONFIG points at it; the ledger lives in the test's tmp dir."""
    emu = RunningEmulator(tmp_path, **emulator_options)
    emu.start()
    try:
        monkeypatch.setenv("KUBECONFIG", str(emu.kubeconfig))
        monkeypatch.setenv("CHAOSMESH_LEDGER_DIR", str(tmp_path / "ledger"))
        monkeypatch.setenv("CHAOSMESH_RUN_ID", "test-run")
        for var in ("KUBERNETES_CONTEXT", "CHAOSTOOLKIT_IN_POD", "KUBERNETES_HOST"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setattr(ledger_module, "_process_run_id", None)
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def seeded(kapi: RunningEmulator) -> RunningEmulator:
    seed(kapi, REVIEWS, REVIEWS_DR)
    return kapi
