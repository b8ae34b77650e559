"""Canary analysis: declared splits (pure), and the guarded rollout on the embedded mesh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext.actions import progressive_rollout
from chaosmesh_ext.istio.traffic import declared_split
from chaosmesh_ext.probes import split_follows_weights
from tests.support.kapi import RunningEmulator

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "experiments" / "manifests"
CLI = [sys.executable, "-m", "chaosmesh_ext.cli"]


def _vs(*routes: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "shop"}, "spec": {"hosts": ["shop"], "http": list(routes)}}


def _dest(subset: str | None, weight: int | None = None, host: str = "shop") -> dict[str, Any]:
    destination: dict[str, Any] = {"host": host}
    if subset:
        destination["subset"] = subset
    entry: dict[str, Any] = {"destination": destination}
    if weight is not None:
        entry["weight"] = weight
    return entry


def test_declared_split_of_weighted_subsets() -> None:
    vs = _vs({"route": [_dest("v1", 90), _dest("v2", 10)]})
    assert declared_split(vs) == {"v1": 0.9, "v2": 0.1}


def test_declared_split_single_destination_takes_everything() -> None:
    assert declared_split(_vs({"route": [_dest(None)]})) == {"shop": 1.0}


def test_declared_split_skips_inserted_fault_routes_and_finds_named_routes() -> None:
    vs = _vs(
        {"name": "chaosmesh-fault-primary", "route": [_dest("v1", 100)]},
        {"name": "primary", "route": [_dest("v1", 75), _dest("v2", 25)]},
        {"name": "other", "route": [_dest("v2", 100)]},
    )
    assert declared_split(vs) == {"v1": 0.75, "v2": 0.25}
    assert declared_split(vs, "other") == {"v2": 1.0}
    assert declared_split(vs, 1) == {"v2": 1.0}


@pytest.mark.parametrize("route", ["nope", 5])
def test_declared_split_names_the_missing_route(route: Any) -> None:
    with pytest.raises(ValueError, match="VirtualService default/shop"):
        declared_split(_vs({"route": [_dest("v1", 100)]}), route)


@pytest.mark.parametrize(
    ("steps", "message"),
    [([], "steps"), ([10, 5], "steps"), ([0, 50], "steps"), ([50, 150], "steps")],
)
def test_rollout_rejects_bad_steps_before_touching_anything(steps: list[int], message: str) -> None:
    with pytest.raises(ActivityFailed, match=message):
        progressive_rollout("shop", "v1", "v2", "http://shop/", steps=steps)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("canary-mesh")
    env = {**os.environ, "CHAOSMESH_LEDGER_DIR": str(tmp / "ledger")}
    state_dir = tmp / "mesh"
    up = [*CLI, "mesh", "up", "--state-dir", str(state_dir)]
    up += ["-f", str(MANIFESTS / "fortio.yaml"), "-f", str(MANIFESTS / "progressive-canary.yaml")]
    try:
        proc = subprocess.run(up, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        state = json.loads((state_dir / "mesh.json").read_text())
        yield {"configuration": {"kubeconfig_path": state["kubeconfig"]}, "env": env}
    finally:
        subprocess.run(
            [*CLI, "mesh", "down", "--state-dir", str(state_dir)], env=env, timeout=60, check=False
        )


def _shop_weights(configuration: dict[str, Any]) -> dict[str, float]:
    from chaosmesh_ext._activity import istio_objects
    from chaosmesh_ext.kube.objects import ObjectRef

    with istio_objects(configuration, None) as objects:
        return declared_split(objects.get(ObjectRef("VirtualService", "default", "shop")))


@pytest.mark.envoy
def test_split_follows_weights_on_the_mesh(mesh: dict[str, Any]) -> None:
    result = split_follows_weights(
        "http://shop/",
        "shop",
        n=100,
        classify=r"version=(v\d+)",
        configuration=mesh["configuration"],
    )
    assert result["declared"] == {"v1": 1.0, "v2": 0.0}
    assert result["observed"] == {"v1": 1.0}
    assert result["max_deviation"] == 0.0


@pytest.mark.envoy
def test_a_guard_that_cannot_run_sends_all_traffic_back_to_stable(mesh: dict[str, Any]) -> None:
    """No fortio in the guard's namespace: the rollout fails, but v2 keeps no traffic."""
    from chaosmesh_ext import actions

    configuration = {**mesh["configuration"], "chaosmesh_run_id": "guard-error"}
    try:
        with pytest.raises(ActivityFailed):
            progressive_rollout(
                "shop",
                "v1",
                "v2",
                "http://shop/",
                steps=[50, 100],
                interval=0,
                fortio_ns="no-fortio-here",
                configuration=configuration,
            )
        assert _shop_weights(configuration) == {"v1": 1.0, "v2": 0.0}
    finally:
        actions.restore(ns="default", configuration=configuration)


# Each bound of progressive_rollout's arguments at, just inside and just outside its limit.
# Accepted arguments get as far as the first shift, which meets an empty API ("not found");
# refused ones stop before any API call with the exact reason.
CANARY_BOUNDS = [
    ("steps <= 100", "steps", [100], [99], [101],
     "steps must be increasing percentages in (0, 100], got [101]"),
    ("steps > 0", "steps", [1], [2], [0],
     "steps must be increasing percentages in (0, 100], got [0]"),
    ("max_error_rate <= 1", "max_error_rate", 1, 0.999, 1.001,
     "max_error_rate must be within [0, 1], got 1.001"),
    ("max_error_rate >= 0", "max_error_rate", 0, 0.001, -0.001,
     "max_error_rate must be within [0, 1], got -0.001"),
    ("interval >= 0", "interval", 0, 0.001, -0.001, "interval must be >= 0 seconds, got -0.001"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argument", "at", "inside", "outside", "reason"),
    [b[1:] for b in CANARY_BOUNDS],
    ids=[b[0] for b in CANARY_BOUNDS],
)
def test_rollout_arguments_at_inside_and_outside_their_bounds(
    kapi: RunningEmulator, argument: str, at: Any, inside: Any, outside: Any, reason: str
) -> None:
    def rollout(value: Any) -> None:
        progressive_rollout("shop", "v1", "v2", "http://shop/", **{argument: value})

    for accepted in (at, inside):
        with pytest.raises(ActivityFailed, match=r"^VirtualService default/shop: not found"):
            rollout(accepted)
    with pytest.raises(ActivityFailed) as refused:
        rollout(outside)
    assert str(refused.value).endswith(reason)
    assert kapi.api is not None and kapi.api.store == {}  # nothing was written
