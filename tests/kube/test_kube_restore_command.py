"""``chaosmesh restore``: options, listing, namespace filter, exit codes (in-process CLI runner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from kapi import RunningEmulator
from kubefix import REVIEWS, state

from chaosmesh_ext import actions
from chaosmesh_ext.cli import main

VS = "virtualservices"


def test_list_with_nothing_outstanding(kapi: RunningEmulator) -> None:
    result = CliRunner().invoke(main, ["restore", "--list"])
    assert result.exit_code == 0 and "nothing outstanding" in result.output


def test_explicit_kubeconfig_and_namespace_filter(
    seeded: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert seeded.api is not None
    shop = json.loads(json.dumps(REVIEWS))
    shop["metadata"]["namespace"] = "shop"
    seeded.api.put_object(shop)
    before_default, before_shop = state(seeded, VS, "reviews"), state(seeded, VS, "reviews", "shop")
    actions.inject_delay("reviews", "1s")
    actions.inject_delay("reviews", "1s", ns="shop")
    config = seeded.write_kubeconfig(tmp_path / "explicit", context="mesh")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    listed = CliRunner().invoke(main, ["restore", "--list", "--ns", "shop"])
    assert "VirtualService shop/reviews" in listed.output
    assert "default/reviews" not in listed.output
    args = ["restore", "--kubeconfig", str(config), "--context", "mesh", "--ns", "shop"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "test-run  VirtualService shop/reviews: restored" in result.output
    assert state(seeded, VS, "reviews", "shop") == before_shop
    assert state(seeded, VS, "reviews") != before_default  # other namespace untouched
    result = CliRunner().invoke(main, ["restore", "--kubeconfig", str(config), "--run", "test-run"])
    assert result.exit_code == 0 and state(seeded, VS, "reviews") == before_default


def test_bad_run_id_is_a_usage_error(kapi: RunningEmulator) -> None:
    result = CliRunner().invoke(main, ["restore", "--run", "../etc"])
    assert result.exit_code == 2 and "run id" in result.output
