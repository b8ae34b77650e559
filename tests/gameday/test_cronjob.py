"""`chaosmesh gameday cronjob`: manifests valid against Kubernetes' schemas, least privilege."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from chaosmesh_ext.gameday import cronjob as cronjob_module
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
    tmp_path: Path,
    experiments: dict[str, dict[str, Any]],
    *args: str,
    **plan: Any,
) -> list[dict[str, Any]]:
    plan.setdefault("schedule", "0 3 * * mon-fri")
    plan.setdefault("target", "kubernetes")
    path = write_plan(tmp_path, experiments, **plan)
    done = chaosmesh("gameday", "cronjob", "-n", "chaos", str(path), *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def refused(tmp_path: Path, experiments: dict[str, dict[str, Any]], *args: str, **plan: Any) -> str:
    """The error of a cronjob that must not be emitted (nothing on standard output)."""
    plan.setdefault("schedule", "@daily")
    path = write_plan(tmp_path, experiments, **plan)
    done = chaosmesh("gameday", "cronjob", str(path), *args, cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == "", done.stdout
    return done.stderr


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
    docs = emit(
        tmp_path,
        {"delay": mesh_experiment()},
        "--journals-claim",
        "journals",
        "--journals-claim-size",
        "2Gi",
        schedule="CRON_TZ=Europe/Paris 0 3 * * mon-fri",
    )
    assert sorted(d["kind"] for d in docs) == [
        "ConfigMap",
        "CronJob",
        "PersistentVolumeClaim",
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
    assert env == {"CHAOSTOOLKIT_IN_POD": "true", "MESH_TARGET": "kubernetes", "HOME": "/work"}
    assert container["command"] == [
        "chaosmesh",
        "gameday",
        "run",
        "/experiments/plan.yaml",
        "--journals",
        "/journals/demo",
        "--journal-lines",
    ]
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


def test_the_pod_kill_experiment_gets_what_chaostoolkit_kubernetes_calls(tmp_path: Path) -> None:
    """experiments/pod-kill-retries.json as a game day in the cluster: terminate_pods lists and
    deletes pods, the deployment probes list and watch Deployments (chaosk8s' own sources)."""
    experiment = _project_experiment("pod-kill-retries")
    experiment["method"].append(
        _act("logs", "read_pod_logs", kind="probe", module="chaosk8s.pod.probes", ns="default")
    )
    path = write_plan(tmp_path, {"pod-kill": experiment}, schedule="@daily", target="kubernetes")
    done = chaosmesh("gameday", "cronjob", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "not covered by the Role" not in done.stdout
    (role,) = by_kind([d for d in yaml.safe_load_all(done.stdout) if d], "Role")
    granted = rules(role)
    assert granted[("", "pods")] == ["delete", "get", "list"]
    assert granted[("", "pods/log")] == ["get"]
    assert granted[("apps", "deployments")] == ["list", "watch"]
    # apply_circuit_breaker may create the rule it edits, and its restore delete it.
    assert granted[("networking.istio.io", "destinationrules")] == [
        "create", "delete", "get", "list", "patch", "update",
    ]  # fmt: skip
    assert ("apps", "deployments/scale") not in granted


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
    gateway = {"MESH_GATEWAY_URL": "http://istio-ingressgateway.istio-system"}
    docs = emit(tmp_path, experiments, variables={"ns": "shop"}, env=gateway)
    (role,) = by_kind(docs, "Role")
    assert role["metadata"]["namespace"] == "shop"
    # Without the variable each experiment's own default applies (env MESH_NAMESPACE's default).
    docs = emit(tmp_path / "defaults", experiments, env=gateway)
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


def pod_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (cronjob,) = by_kind(docs, "CronJob")
    pod: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    (container,) = pod_of(docs)["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_journals_claim_is_mounted_and_emitted_with_its_size(tmp_path: Path) -> None:
    docs = emit(
        tmp_path,
        {"plain": healthy(tmp_path, "x")},
        "--journals-claim",
        "gameday-journals",
        "--journals-claim-size",
        "1Gi",
    )
    (claim,) = by_kind(docs, "PersistentVolumeClaim")
    assert claim["metadata"] == {
        "name": "gameday-journals",
        "namespace": "chaos",
        "labels": {
            "app.kubernetes.io/part-of": "chaostoolkit-mesh",
            "chaosmesh.io/gameday": "demo",
        },
    }
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    pod = pod_of(docs)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["journals"]["persistentVolumeClaim"] == {"claimName": "gameday-journals"}
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["journals"] == "/journals"
    # The volume keeps them: no journal lines in the log.
    assert container["command"][-2:] == ["--journals", "/journals/demo"]
    # The image's user may write it.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] == 10001


def test_an_existing_claim_is_mounted_but_not_emitted(tmp_path: Path) -> None:
    path = write_plan(tmp_path, {"plain": healthy(tmp_path, "x")}, schedule="@daily")
    done = chaosmesh("gameday", "cronjob", str(path), "--journals-claim", "kept", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "# note: the PersistentVolumeClaim 'kept' must exist already." in done.stdout
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert by_kind(docs, "PersistentVolumeClaim") == []
    volumes = {v["name"]: v for v in pod_of(docs)["volumes"]}
    assert volumes["journals"] == {
        "name": "journals",
        "persistentVolumeClaim": {"claimName": "kept"},
    }


def test_without_a_claim_journals_go_to_the_pod_log(tmp_path: Path) -> None:
    docs = emit(tmp_path, {"plain": healthy(tmp_path, "x")})
    pod = pod_of(docs)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["journals"] == {"name": "journals", "emptyDir": {}}
    assert pod["containers"][0]["command"][-1] == "--journal-lines"


def test_pod_runs_as_non_root_with_a_read_only_root_and_writable_volumes(tmp_path: Path) -> None:
    pod = pod_of(emit(tmp_path, {"plain": healthy(tmp_path, "x")}))
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]}
    assert mounts == {"/experiments": True, "/journals": False, "/work": False, "/tmp": False}
    # Working directory and HOME (chaostoolkit's files, the change ledger) are writable.
    assert container["workingDir"] == "/work"
    assert {e["name"]: e["value"] for e in container["env"]}["HOME"] == "/work"


def test_schedule_zone_goes_to_spec_time_zone(tmp_path: Path) -> None:
    (cronjob,) = by_kind(
        emit(tmp_path, {"p": healthy(tmp_path, "x")}, timezone="Asia/Tokyo"), "CronJob"
    )
    assert (cronjob["spec"]["schedule"], cronjob["spec"]["timeZone"]) == (
        "0 3 * * mon-fri",
        "Asia/Tokyo",
    )
    # Kubernetes refuses CRON_TZ= inside spec.schedule on create: it moves to timeZone.
    docs = emit(
        tmp_path / "prefixed", {"p": healthy(tmp_path, "x")}, schedule="CRON_TZ=Asia/Tokyo @daily"
    )
    (cronjob,) = by_kind(docs, "CronJob")
    assert (cronjob["spec"]["schedule"], cronjob["spec"]["timeZone"]) == ("@daily", "Asia/Tokyo")
    # Without a zone the plan's schedule is UTC, said out loud (not the controller's zone).
    (cronjob,) = by_kind(emit(tmp_path / "utc", {"p": healthy(tmp_path, "x")}), "CronJob")
    assert cronjob["spec"]["timeZone"] == "UTC"


def test_target_embedded_is_refused_unless_allowed(tmp_path: Path) -> None:
    experiment = _project_experiment("circuit-breaker")
    repository = Path(__file__).resolve().parents[2] / "experiments"
    error = refused(tmp_path, {"breaker": experiment}, target="embedded")
    assert "target: embedded would run a private mesh inside the pod" in error
    assert "--allow-embedded" in error
    bare = refused(
        tmp_path / "bare", {"breaker": experiment}, "--allow-embedded", target="embedded"
    )
    assert "breaker.json: mesh_manifests: manifests/fortio.yaml does not exist" in bare
    shutil.copytree(repository / "manifests", tmp_path / "allowed" / "experiments" / "manifests")
    docs = emit(
        tmp_path / "allowed", {"breaker": experiment}, "--allow-embedded", target="embedded"
    )
    assert env_of(docs)["MESH_TARGET"] == "embedded"
    # The experiment's manifests ride along, where the experiment names them.
    (configmap,) = by_kind(docs, "ConfigMap")
    (volume,) = [v for v in pod_of(docs)["volumes"] if v["name"] == "experiments"]
    paths = {item["path"]: item["key"] for item in volume["configMap"]["items"]}
    for relative in experiment["configuration"]["mesh_manifests"]:
        source = repository / relative
        assert configmap["data"][paths[relative]] == source.read_text()
    assert paths["breaker.json"] == "breaker.json" and paths["plan.yaml"] == "plan.yaml"


def test_without_a_target_the_pod_runs_against_the_cluster(tmp_path: Path) -> None:
    docs = emit(tmp_path, {"plain": healthy(tmp_path, "x")}, target=None)
    assert env_of(docs)["MESH_TARGET"] == "kubernetes"
    (configmap,) = by_kind(docs, "ConfigMap")
    assert yaml.safe_load(configmap["data"]["plan.yaml"])["target"] == "kubernetes"


def test_a_setting_left_empty_is_refused_naming_it(tmp_path: Path) -> None:
    canary = _project_experiment("canary-shift")
    error = refused(tmp_path, {"canary": canary})
    assert (
        "canary.json: configuration 'gateway_url' reads environment variable MESH_GATEWAY_URL, "
        "which would be empty: set MESH_GATEWAY_URL under 'env' (or 'kubernetes.env'), or "
        "gateway_url under 'variables'"
    ) in error
    # Any of the three ways of giving it is enough; kubernetes.env reaches only the cluster.
    url = "http://istio-ingressgateway.istio-system"
    for where, plan in [
        ("env", {"env": {"MESH_GATEWAY_URL": url}}),
        ("kubernetes", {"kubernetes": {"env": {"MESH_GATEWAY_URL": url}}}),
        ("variables", {"variables": {"gateway_url": url}}),
    ]:
        docs = emit(tmp_path / where, {"canary": canary}, **plan)
        (configmap,) = by_kind(docs, "ConfigMap")
        in_pod = load_plan_from(configmap, tmp_path / where / "mounted")
        assert in_pod.settings("kubernetes")[0].get("gateway_url", url) == url
        assert in_pod.settings("kubernetes")[1].get("MESH_GATEWAY_URL", url) == url


def load_plan_from(configmap: dict[str, Any], where: Path) -> Any:
    where.mkdir(parents=True)
    for key, text in configmap["data"].items():
        (where / key).write_text(text)
    return load_plan(where / "plan.yaml")


def test_experiments_are_readable_block_text_one_key_each(tmp_path: Path) -> None:
    path = write_plan(
        tmp_path,
        {"delay": mesh_experiment(), "plain": healthy(tmp_path, "x")},
        schedule="@daily",
        target="kubernetes",
    )
    done = chaosmesh("gameday", "cronjob", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # Literal blocks ("|", or "|-" for a file without a final newline), not escaped strings.
    assert re.search(r"^  delay\.json: \|-?\n    \{\n", done.stdout, re.M)
    assert re.search(r"^  plain\.json: \|-?\n", done.stdout, re.M)
    assert re.search(r"^  plan\.yaml: \|-?\n", done.stdout, re.M)
    assert "&id" not in done.stdout  # no YAML anchors for the shared labels


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--journals-claim-size", "1Gi"), "name the claim too (--journals-claim NAME)"),
        (("--journals-claim", "j", "--journals-claim-size", "lots"), "'lots' is not a size"),
    ],
)
def test_bad_claim_options_are_refused(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    assert message in refused(tmp_path, {"plain": healthy(tmp_path, "x")}, *args)


def test_default_image_is_the_one_the_readme_builds() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"docker build -t {cronjob_module.DEFAULT_IMAGE} ." in readme


def test_seed_nightly_plan_emits_valid_objects_with_the_claim_mounted(tmp_path: Path) -> None:
    plan = Path(__file__).resolve().parents[2] / "gamedays" / "seed-nightly.yaml"
    done = chaosmesh(
        "gameday", "cronjob", str(plan), "--journals-claim", "gameday-journals", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    for version in K8S_VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
    (configmap,) = by_kind(docs, "ConfigMap")
    experiments = sorted(p.name for p in (plan.parent.parent / "experiments").glob("*.json"))
    assert sorted(k for k in configmap["data"] if k.endswith(".json")) == experiments
    volumes = {v["name"]: v for v in pod_of(docs)["volumes"]}
    assert volumes["journals"]["persistentVolumeClaim"] == {"claimName": "gameday-journals"}
    assert env_of(docs)["MESH_TARGET"] == "kubernetes"
