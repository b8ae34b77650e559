"""`chaosmesh gameday cronjob`: manifests valid against Kubernetes' schemas, least privilege."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from chaosmesh_ext.gameday.plan import load_plan
from tests.support.cli import chaosmesh
from tests.support.gameday_plans import healthy, write_plan

K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def _act(
    label: str, func: str, kind: str = "action", module: str = "chaosmesh_ext.actions", **args: Any
) -> dict[str, Any]:
    return {
        "type": kind,
        "name": label,
        "provider": {"type": "python", "module": module, "func": func, "arguments": args},
    }


def mesh_experiment(**extra: Any) -> dict[str, Any]:
    load = _act(
        "reviews-load",
        "fortio_load",
        kind="probe",
        module="chaosmesh_ext.probes",
        ns="shop",
        url="http://reviews:9080/",
    )
    load["tolerance"] = {"type": "range", "range": [0, 50], "target": "p99_ms"}
    return {
        "title": "reviews survives a ratings delay",
        "description": "d",
        "controls": [
            {
                "name": "safety-net",
                "provider": {"type": "python", "module": "chaosmesh_ext.control"},
            }
        ],
        "steady-state-hypothesis": {"title": "fast", "probes": [load]},
        "method": [_act("delay", "inject_delay", ns="shop", name="ratings", delay="2s")],
        "rollbacks": [_act("undo", "remove_faults", ns="shop", name="ratings")],
        **extra,
    }


def emit(
    tmp_path: Path, experiments: dict[str, dict[str, Any]], **plan: Any
) -> list[dict[str, Any]]:
    path = write_plan(
        tmp_path, experiments, schedule="0 3 * * mon-fri", target="kubernetes", **plan
    )
    done = chaosmesh("gameday", "cronjob", "-n", "chaos", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def rules(role: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    return {
        (g, r): rule["verbs"]
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }


def test_manifests_validate_against_kubernetes_schemas(tmp_path: Path) -> None:
    docs = emit(tmp_path, {"delay": mesh_experiment()})
    assert sorted(d["kind"] for d in docs) == [
        "ConfigMap",
        "CronJob",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    for version in K8S_VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
    # The validator does reject what a cluster would: a misspelt field.
    cronjob = by_kind(docs, "CronJob")[0]
    broken = json.loads(json.dumps(cronjob))
    broken["spec"]["concurencyPolicy"] = broken["spec"].pop("concurrencyPolicy")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_cronjob_runs_the_plan_in_the_pod(tmp_path: Path) -> None:
    docs = emit(tmp_path, {"delay": mesh_experiment(), "plain": healthy(tmp_path, "x")})
    cronjob = by_kind(docs, "CronJob")[0]
    spec = cronjob["spec"]
    assert spec["schedule"] == "0 3 * * mon-fri"
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "demo" and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"CHAOSTOOLKIT_IN_POD": "true", "MESH_TARGET": "kubernetes"}
    assert container["command"] == ["chaosmesh", "gameday", "run", "/experiments/plan.yaml"]
    # The ConfigMap holds the experiments and a plan that points at them: it is a valid plan.
    (configmap,) = by_kind(docs, "ConfigMap")
    assert pod["volumes"][0]["configMap"]["name"] == configmap["metadata"]["name"]
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    for key, text in configmap["data"].items():
        (mounted / key).write_text(text)
    assert json.loads(configmap["data"]["delay.json"]) == mesh_experiment()
    plan = load_plan(mounted / "plan.yaml")
    assert [p.name for p in plan.experiments] == ["delay.json", "plain.json"]
    assert plan.target == "kubernetes" and plan.schedule is None
    assert str(plan.journals_root) == "/journals/demo"


def test_role_has_only_the_verbs_the_plan_needs(tmp_path: Path) -> None:
    docs = emit(tmp_path, {"delay": mesh_experiment()})
    (role,) = by_kind(docs, "Role")
    assert role["metadata"]["namespace"] == "shop"  # where the experiments act
    assert rules(role) == {
        ("networking.istio.io", "virtualservices"): ["get", "list", "patch", "update"],
        ("networking.istio.io", "destinationrules"): ["get", "list", "patch", "update"],
        ("", "services/proxy"): ["get"],
        ("", "pods"): ["get", "list"],
        ("", "pods/exec"): ["create"],
    }
    (binding,) = by_kind(docs, "RoleBinding")
    assert binding["metadata"]["namespace"] == "shop"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "demo", "namespace": "chaos"}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_breakers_add_create_and_delete_and_stats_add_pod_proxy(tmp_path: Path) -> None:
    experiment = mesh_experiment()
    experiment["method"] = [_act("breaker", "apply_circuit_breaker", ns="shop", name="reviews")]
    experiment["steady-state-hypothesis"]["probes"] = [
        _act("stats", "breaker_stats", kind="probe", module="chaosmesh_ext.probes", ns="shop")
    ]
    (role,) = by_kind(emit(tmp_path, {"breaker": experiment}), "Role")
    assert rules(role) == {
        ("networking.istio.io", "virtualservices"): ["get", "list", "patch", "update"],
        ("networking.istio.io", "destinationrules"): [
            "create",
            "delete",
            "get",
            "list",
            "patch",
            "update",
        ],
        ("", "pods/proxy"): ["get"],
        ("", "pods"): ["get", "list"],
        ("", "pods/exec"): ["create"],
    }


def test_plan_without_this_extension_gets_an_empty_role_and_a_note(tmp_path: Path) -> None:
    path = write_plan(tmp_path, {"plain": healthy(tmp_path, "x")}, schedule="@daily")
    done = chaosmesh("gameday", "cronjob", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "# note: activities from 'os' are not covered by the Role below." in done.stdout
    (role,) = by_kind([d for d in yaml.safe_load_all(done.stdout) if d], "Role")
    assert role["rules"] == []


def test_cronjob_needs_a_schedule(tmp_path: Path) -> None:
    path = write_plan(tmp_path, {"plain": healthy(tmp_path, "x")})
    done = chaosmesh("gameday", "cronjob", str(path), cwd=tmp_path)
    assert done.returncode != 0
    assert "schedule: a CronJob needs a cron schedule; none is set" in done.stderr


def _project_experiment(name: str) -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2] / "experiments"
    result: dict[str, Any] = json.loads((root / f"{name}.json").read_text())
    return result


def test_role_goes_where_the_project_experiments_act(tmp_path: Path) -> None:
    """This project's experiments name their namespace as ``"ns": "${ns}"``; a plan sets it
    with ``variables: {ns: shop}`` (``--var ns=shop`` in the pod): the Role must be there."""
    experiments = {
        "canary": _project_experiment("canary-shift"),
        "rollout": _project_experiment("progressive-canary"),
    }
    (role,) = by_kind(emit(tmp_path, experiments, variables={"ns": "shop"}), "Role")
    assert role["metadata"]["namespace"] == "shop"
    # Without the variable each experiment's own default applies (env MESH_NAMESPACE's default).
    docs = emit(tmp_path / "defaults", experiments)
    assert {r["metadata"]["namespace"] for r in by_kind(docs, "Role")} == {
        "istio-test",  # canary-shift.json
        "default",  # progressive-canary.json
    }


def test_split_check_reads_the_vs_and_a_rollout_runs_load(tmp_path: Path) -> None:
    split = _act(
        "split",
        "split_follows_weights",
        kind="probe",
        module="chaosmesh_ext.probes",
        ns="shop",
        fortio_ns="load",
        virtual_service="reviews",
        url="http://reviews/",
    )
    rollout = _act("rollout", "progressive_rollout", ns="shop", virtual_service="reviews")
    experiment = {
        "title": "t",
        "description": "d",
        "steady-state-hypothesis": {"title": "h", "probes": [split]},
        "method": [rollout],
    }
    roles = {
        r["metadata"]["namespace"]: rules(r)
        for r in by_kind(emit(tmp_path, {"x": experiment}), "Role")
    }
    load = {
        ("", "services/proxy"): ["get"],
        ("", "pods"): ["get", "list"],
        ("", "pods/exec"): ["create"],
    }
    # The split check's load runs from the fortio client in "load"; the rollout's in "shop".
    assert roles["load"] == load
    assert roles["shop"] == {
        ("networking.istio.io", "virtualservices"): ["get", "list", "patch", "update"],
        ("networking.istio.io", "destinationrules"): ["get", "list", "patch", "update"],
        **load,
    }


def test_split_check_alone_may_read_the_virtual_service(tmp_path: Path) -> None:
    split = _act(
        "split", "split_follows_weights", kind="probe", module="chaosmesh_ext.probes", ns="shop"
    )
    experiment = {
        "title": "t",
        "description": "d",
        "steady-state-hypothesis": {"title": "h", "probes": [split]},
    }
    (role,) = by_kind(emit(tmp_path, {"x": experiment}), "Role")
    assert rules(role)[("networking.istio.io", "virtualservices")] == ["get", "list"]
    assert ("networking.istio.io", "destinationrules") not in rules(role)
