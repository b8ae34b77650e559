"""The Kubernetes manifests that run a plan inside a cluster on its schedule.

A ConfigMap carries the experiments (one key per file, as block text) and the plan rewritten
to point at them; a CronJob (``concurrencyPolicy: Forbid``, so runs never overlap; the
plan's schedule with its zone in ``spec.timeZone``) runs ``chaosmesh gameday run`` in the
image the repository's ``Dockerfile`` builds, as a ServiceAccount bound to a Role per
namespace holding only the verbs the plan needs (``rbac``).

The pod runs as the image's non-root user with a read-only root filesystem: what it writes
goes to volumes — ``/work`` (working directory and HOME: chaostoolkit's files, the change
ledger), ``/tmp``, and ``/journals``. Journals outlive the pod on a PersistentVolumeClaim
(``journals_claim``; ``claim_size`` also emits the claim); without one, each journal is also
printed to the pod's log as one JSON line (``journal.lines``), which ``kubectl logs`` keeps.

Experiments run against the cluster (``MESH_TARGET=kubernetes``) with the plan's
``kubernetes:`` settings; ``target: embedded`` is refused unless allowed explicitly, and so
is a plan that leaves a setting its experiments read empty (``settings``). Pure apart from
reading the experiment files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chaosmesh_ext import __version__
from chaosmesh_ext.gameday.plan import KUBERNETES, Plan, PlanError, read_experiment
from chaosmesh_ext.gameday.rbac import Permissions, permissions
from chaosmesh_ext.gameday.settings import empty_settings

# What the README tells users to build (`docker build -t chaostoolkit-mesh:<version> .`).
DEFAULT_IMAGE = f"chaostoolkit-mesh:{__version__}"
# The image's layout (Dockerfile): its user, and where the pod may write.
RUN_AS = 10001
WORK_DIR = "/work"
TMP_DIR = "/tmp"
EXPERIMENTS_MOUNT = "/experiments"
JOURNALS_MOUNT = "/journals"
PLAN_KEY = "plan.yaml"
LABELS_KEY = "app.kubernetes.io/part-of"
# A Kubernetes quantity such as 1Gi or 500M.
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
# ConfigMap keys: [-._a-zA-Z0-9]+
_KEY_UNSAFE = re.compile(r"[^-._a-zA-Z0-9]")


@dataclass(frozen=True)
class Options:
    """How to run the plan in the cluster (``gameday cronjob``'s options)."""

    namespace: str = "default"  # of the CronJob, its ServiceAccount, ConfigMap and claim
    image: str = DEFAULT_IMAGE
    journals_claim: str | None = None  # a PersistentVolumeClaim for the journals
    claim_size: str | None = None  # also emit the claim, of this size
    allow_embedded: bool = False  # emit a plan with target: embedded anyway


def _config_keys(plan: Plan) -> dict[Path, str]:
    """A ConfigMap key per experiment: its file name, made unique when two share one."""
    keys: dict[Path, str] = {}
    for index, path in enumerate(plan.experiments, start=1):
        key = path.name
        if key in keys.values():
            key = f"{index:02d}-{path.name}"
        keys[path] = key
    return keys


def _manifest_files(experiments: dict[Path, dict[str, Any]]) -> dict[str, Path]:
    """For the embedded target in a pod: each experiment's ``mesh_manifests``, by the path
    the experiment names them with (relative to its directory)."""
    files: dict[str, Path] = {}
    for path, experiment in experiments.items():
        raw = (experiment.get("configuration") or {}).get("mesh_manifests") or []
        items = raw.split(",") if isinstance(raw, str) else raw
        for item in items if isinstance(items, list) else []:
            name = str(item).strip()
            if not name or Path(name).is_absolute() or ".." in Path(name).parts:
                raise PlanError(
                    f"experiment {path.name}: mesh_manifests: {name!r}: in a pod only paths "
                    "below the experiment's directory can be carried along"
                )
            if not (path.parent / name).is_file():
                raise PlanError(
                    f"experiment {path.name}: mesh_manifests: {name} does not exist "
                    f"beside it ({path.parent / name})"
                )
            files.setdefault(name, path.parent / name)
    return files


def target_namespace(plan: Plan, namespace: str, target: str = KUBERNETES) -> str:
    """Where activities act when they name no namespace of their own: the plan's ``ns`` (the
    variable this project's experiments use) or ``namespace`` variable, else the CronJob's."""
    variables, _ = plan.settings(target)
    return str(variables.get("ns") or variables.get("namespace") or namespace)


def pod_target(plan: Plan, allow_embedded: bool) -> str:
    """The target the pod runs against: the cluster, unless the plan says embedded and that
    is explicitly allowed."""
    if plan.target == "embedded":
        if not allow_embedded:
            raise PlanError(
                f"plan {plan.path}: target: embedded would run a private mesh inside the pod, "
                "not the cluster's (and the image has no Envoy): leave target out or set "
                "'kubernetes' (the CronJob then sets MESH_TARGET=kubernetes); --allow-embedded "
                "emits it anyway, for an image built with --build-arg EMBEDDED=embedded"
            )
        return "embedded"
    return KUBERNETES


def _pod_env(target: str) -> dict[str, str]:
    return {"CHAOSTOOLKIT_IN_POD": "true", "MESH_TARGET": target, "HOME": WORK_DIR}


def _in_pod_plan(plan: Plan, keys: dict[Path, str], target: str) -> dict[str, Any]:
    """The plan as the pod reads it: experiments by ConfigMap key, no schedule (the CronJob
    is the schedule), journals given on the command line."""
    out: dict[str, Any] = {
        k: v
        for k, v in plan.raw.items()
        if k not in ("schedule", "timezone", "journals", "experiments", "target")
    }
    out["experiments"] = [keys[p] for p in plan.experiments]
    out["target"] = target
    return out


def manifests(plan: Plan, options: Options | None = None) -> list[dict[str, Any]]:
    """ConfigMap, ServiceAccount, Role(s), RoleBinding(s), [PVC] and CronJob for ``plan``."""
    options = options or Options()
    namespace = options.namespace
    journals_claim, claim_size = options.journals_claim, options.claim_size
    if plan.schedule is None:
        raise PlanError(f"plan {plan.path}: schedule: a CronJob needs a cron schedule; none is set")
    if claim_size is not None and journals_claim is None:
        raise PlanError("--journals-claim-size: name the claim too (--journals-claim NAME)")
    if claim_size is not None and not _QUANTITY.match(claim_size):
        raise PlanError(f"--journals-claim-size: {claim_size!r} is not a size such as 1Gi")
    target = pod_target(plan, options.allow_embedded)
    name = plan.name
    labels = {LABELS_KEY: "chaostoolkit-mesh", "chaosmesh.io/gameday": name}
    keys = _config_keys(plan)
    experiments = {path: read_experiment(path) for path in plan.experiments}
    variables, env = plan.settings(target)
    if target == KUBERNETES:
        problems = empty_settings(experiments, variables, {**_pod_env(target), **env})
        if problems:
            raise PlanError(
                f"plan {plan.path}: on the cluster these settings would be empty:\n  "
                + "\n  ".join(problems)
            )
    target_ns = target_namespace(plan, namespace, target)
    perms: Permissions = permissions(experiments.values(), target_ns, variables)

    data = {keys[p]: p.read_text(encoding="utf-8") for p in plan.experiments}
    data[PLAN_KEY] = yaml.safe_dump(_in_pod_plan(plan, keys, target), sort_keys=False)
    items: list[dict[str, str]] = []
    if target != KUBERNETES:
        items = [{"key": key, "path": key} for key in data]
        # The embedded mesh loads each experiment's manifests from beside it.
        for relative, source in sorted(_manifest_files(experiments).items()):
            key = _KEY_UNSAFE.sub("_", relative)
            data[key] = source.read_text(encoding="utf-8")
            items.append({"key": key, "path": relative})

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
    if claim_size is not None:
        out.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": journals_claim, "namespace": namespace, "labels": labels},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": claim_size}},
                },
            }
        )
    command = [
        "chaosmesh",
        "gameday",
        "run",
        f"{EXPERIMENTS_MOUNT}/{PLAN_KEY}",
        "--journals",
        f"{JOURNALS_MOUNT}/{name}",
    ]
    if journals_claim is None:
        command.append("--journal-lines")  # the pod's log is all that outlives it
    journals_volume: dict[str, Any] = (
        {"persistentVolumeClaim": {"claimName": journals_claim}}
        if journals_claim
        else {"emptyDir": {}}
    )
    job_spec: dict[str, Any] = {
        # A failed game day is a finding, not something to retry.
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "serviceAccountName": name,
                "restartPolicy": "Never",
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": RUN_AS,
                    "runAsGroup": RUN_AS,
                    # Lets the image's user write the journals volume.
                    "fsGroup": RUN_AS,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "chaostoolkit",
                        "image": options.image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": command,
                        "workingDir": WORK_DIR,
                        "env": [{"name": k, "value": v} for k, v in _pod_env(target).items()],
                        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                        "volumeMounts": [
                            {
                                "name": "experiments",
                                "mountPath": EXPERIMENTS_MOUNT,
                                "readOnly": True,
                            },
                            {"name": "journals", "mountPath": JOURNALS_MOUNT},
                            {"name": "work", "mountPath": WORK_DIR},
                            {"name": "tmp", "mountPath": TMP_DIR},
                        ],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
                "volumes": [
                    {
                        "name": "experiments",
                        "configMap": {
                            "name": f"{name}-experiments",
                            # With manifests, keys map to paths under manifests/.
                            **({"items": items} if items else {}),
                        },
                    },
                    {"name": "journals", **journals_volume},
                    {"name": "work", "emptyDir": {}},
                    {"name": "tmp", "emptyDir": {}},
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
                "timeZone": plan.timezone,
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 300,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {"metadata": {"labels": labels}, "spec": job_spec},
            },
        }
    )
    return out


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (experiment files) as ``|`` blocks, readable in the ConfigMap; no
    YAML anchors for objects used twice (labels), which kubectl users do not expect."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _text)


def render(plan: Plan, options: Options | None = None) -> str:
    """The manifests as one multi-document YAML, with notes on what RBAC does not cover."""
    options = options or Options()
    docs = manifests(plan, options)
    target = pod_target(plan, options.allow_embedded)
    perms = permissions(
        (read_experiment(p) for p in plan.experiments),
        target_namespace(plan, options.namespace, target),
        plan.settings(target)[0],
    )
    header = f"# Game day {plan.name}: generated by `chaosmesh gameday cronjob`.\n"
    for module in sorted(perms.foreign_modules):
        header += f"# note: activities from {module!r} are not covered by the Role below.\n"
    if options.journals_claim and options.claim_size is None:
        claim = options.journals_claim
        header += f"# note: the PersistentVolumeClaim {claim!r} must exist already.\n"
    return header + yaml.dump_all(docs, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True)
