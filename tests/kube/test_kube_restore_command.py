"""``chaosmesh restore``: options, listing, namespace filter, exit codes (in-process CLI runner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaosmesh_ext import actions
from chaosmesh_ext.cli import main
from tests.support.kapi import RunningEmulator
from tests.support.kubefix import REVIEWS, state

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


def test_list_shows_one_row_per_object_with_what_the_run_did(seeded: RunningEmulator) -> None:
    actions.shift_traffic("reviews", {"v1": 50, "v2": 50}, route="default")
    actions.shift_traffic("reviews", {"v1": 0, "v2": 100}, route="default")
    actions.inject_delay("reviews", "1s", route="jason")
    listed = CliRunner().invoke(main, ["restore", "--list"])
    assert listed.exit_code == 0
    rows = [line for line in listed.output.splitlines() if line.startswith("test-run")]
    assert len(rows) == 1, listed.output
    assert "VirtualService default/reviews" in rows[0]
    assert "shift_traffic x2, inject_delay" in rows[0] and "to restore" in rows[0]
    assert "1 object(s) left changed by 1 run(s)" in listed.output


def test_a_refusal_says_how_to_keep_their_version_and_forget_drops_it(
    seeded: RunningEmulator,
) -> None:
    assert seeded.api is not None
    actions.inject_delay("reviews", "1s")
    seeded.api.edit_object(VS, "default", "reviews", lambda o: o["spec"]["hosts"].append("r2"))
    theirs = state(seeded, VS, "reviews")
    refused = CliRunner().invoke(main, ["restore"])
    assert refused.exit_code == 1
    assert "refused" in refused.output and '+      "r2"' in refused.output
    assert "chaosmesh restore --forget --run test-run" in refused.output
    assert (
        "refused: changed by someone else" in CliRunner().invoke(main, ["restore", "--list"]).output
    )
    assert CliRunner().invoke(main, ["restore", "--forget"]).exit_code == 2  # needs --run
    forgot = CliRunner().invoke(main, ["restore", "--forget", "--run", "test-run"])
    assert forgot.exit_code == 0 and "VirtualService default/reviews: forgotten" in forgot.output
    assert state(seeded, VS, "reviews") == theirs  # the cluster was not touched
    assert "nothing outstanding" in CliRunner().invoke(main, ["restore", "--list"]).output
    assert CliRunner().invoke(main, ["restore"]).exit_code == 0
