"""The Kubernetes manifests that run a plan inside a cluster on its schedule.

A ConfigMap carries the experiments and the plan (rewritten to point at them); a CronJob
(``concurrencyPolicy: Forbid``, so runs never overlap) runs ``chaosmesh gameday run`` in the
chaostoolkit image with this extension installed, as a ServiceAccount bound to a Role per
namespace holding only the verbs the plan needs (``rbac``). Pure apart from reading the
experiment files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from chaosmesh_ext import __version__
from chaosmesh_ext.gameday.plan import Plan, PlanError
from chaosmesh_ext.gameday.rbac import Permissions, permissions

DEFAULT_IMAGE = f"chaostoolkit-mesh:{__version__}"
EXPERIMENTS_MOUNT = "/experiments"
JOURNALS_MOUNT = "/journals"
LABELS_KEY = "app.kubernetes.io/part-of"


def _read_experiment(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise PlanError(f"experiment {path}: cannot read it: {exc}") from None
    if not isinstance(data, dict):
        raise PlanError(f"experiment {path}: not an experiment (expected an object)")
    return data


def _config_keys(plan: Plan) -> dict[Path, str]:
    """A ConfigMap key per experiment: its file name, made unique when two share one."""
    keys: dict[Path, str] = {}
    for index, path in enumerate(plan.experiments, start=1):
        key = path.name
        if key in keys.values():
            key = f"{index:02d}-{path.name}"
        keys[path] = key
    return keys


def target_namespace(plan: Plan, namespace: str) -> str:
    """Where activities act when they name no namespace of their own: the plan's ``ns`` (the
    variable this project's experiments use) or ``namespace`` variable, else the CronJob's."""
    return str(plan.variables.get("ns") or plan.variables.get("namespace") or namespace)


def manifests(
    plan: Plan, namespace: str = "default", image: str = DEFAULT_IMAGE
) -> list[dict[str, Any]]:
    """ConfigMap, ServiceAccount, Role(s), RoleBinding(s) and CronJob for ``plan``."""
    if plan.schedule is None:
        raise PlanError(f"plan {plan.path}: schedule: a CronJob needs a cron schedule; none is set")
    name = plan.name
    labels = {LABELS_KEY: "chaostoolkit-mesh", "chaosmesh.io/gameday": name}
    keys = _config_keys(plan)
    experiments = {path: _read_experiment(path) for path in plan.experiments}
    target_ns = target_namespace(plan, namespace)
    perms: Permissions = permissions(experiments.values(), target_ns, plan.variables)

    in_pod_plan: dict[str, Any] = {
        k: v for k, v in plan.raw.items() if k not in ("schedule", "journals", "experiments")
    }
    in_pod_plan["experiments"] = [keys[p] for p in plan.experiments]
    in_pod_plan["journals"] = f"{JOURNALS_MOUNT}/{name}"
    data = {keys[p]: p.read_text(encoding="utf-8") for p in plan.experiments}
    data["plan.yaml"] = yaml.safe_dump(in_pod_plan, sort_keys=False)

    meta = {"name": name, "namespace": namespace, "labels": labels}
    out: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {**meta, "name": f"{name}-experiments"},
            "data": data,
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
    ]
    for ns in sorted(perms.rules) or [target_ns]:
        role_meta = {"name": f"{name}-gameday", "namespace": ns, "labels": labels}
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": role_meta,
                "rules": perms.role_rules(ns),
            }
        )
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": role_meta,
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": f"{name}-gameday",
                },
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            }
        )
    env = [{"name": "CHAOSTOOLKIT_IN_POD", "value": "true"}]
    if plan.target is not None:
        env.append({"name": "MESH_TARGET", "value": plan.target})
    job_spec: dict[str, Any] = {
        # A failed game day is a finding, not something to retry.
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "serviceAccountName": name,
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "chaostoolkit",
                        "image": image,
                        "command": [
                            "chaosmesh",
                            "gameday",
                            "run",
                            f"{EXPERIMENTS_MOUNT}/plan.yaml",
                        ],
                        "env": env,
                        "volumeMounts": [
                            {
                                "name": "experiments",
                                "mountPath": EXPERIMENTS_MOUNT,
                                "readOnly": True,
                            },
                            {"name": "journals", "mountPath": JOURNALS_MOUNT},
                        ],
                        "securityContext": {"allowPrivilegeEscalation": False},
                    }
                ],
                "volumes": [
                    {"name": "experiments", "configMap": {"name": f"{name}-experiments"}},
                    {"name": "journals", "emptyDir": {}},
                ],
            },
        },
    }
    if plan.time_limit is not None:
        # Each experiment is bounded by the runner; the Job by all of them plus restores.
        job_spec["activeDeadlineSeconds"] = int(plan.time_limit * len(plan.experiments)) + 300
    out.append(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta,
            "spec": {
                "schedule": plan.schedule.text,
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 300,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {"metadata": {"labels": labels}, "spec": job_spec},
            },
        }
    )
    return out


def render(plan: Plan, namespace: str = "default", image: str = DEFAULT_IMAGE) -> str:
    """The manifests as one multi-document YAML, with notes on what RBAC does not cover."""
    docs = manifests(plan, namespace, image)
    perms = permissions(
        (_read_experiment(p) for p in plan.experiments),
        target_namespace(plan, namespace),
        plan.variables,
    )
    header = f"# Game day {plan.name}: generated by `chaosmesh gameday cronjob`.\n"
    for module in sorted(perms.foreign_modules):
        header += f"# note: activities from {module!r} are not covered by the Role below.\n"
    return header + yaml.safe_dump_all(docs, sort_keys=False)
