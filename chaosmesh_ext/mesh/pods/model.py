"""Pods and Deployments as the API shows them, from the replicas the daemon runs (pure).

A replica's life maps onto a Pod's as a kubelet reports it:

- starting (its process runs, its port does not accept yet): ``Pending``, container waiting
  in ``ContainerCreating``, not Ready — what a cluster shows while the image starts;
- serving: ``Running`` and Ready (a ``command`` replica whose program is being restarted:
  ``CrashLoopBackOff``, not Ready);
- being deleted: ``metadata.deletionTimestamp`` (the request time plus the grace period) and
  ``deletionGracePeriodSeconds``, Ready while its process still runs;
- ended: ``Succeeded`` (exit code 0) or ``Failed``, container terminated, not Ready.

A Deployment's status counts the replicas that are not being deleted, as the ReplicaSet
controller does, with the API's habit of leaving out counts that are 0. Which replicas a
scale-down removes follows the controller's ranking (``deletion_order``); new pods are named
``<deployment>-<five characters>`` from the alphabet Kubernetes uses.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import defaults

JSON = dict[str, Any]
LOOPBACK = "127.0.0.1"
NODE_NAME = "embedded-mesh"
# k8s.io/apimachinery's rand.String alphabet: no vowels (no words), no 0/1/3 (look-alikes).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NAME_SUFFIX_LENGTH = 5


@dataclass(frozen=True)
class Deletion:
    """A graceful deletion in progress: when it was asked for, and its grace period."""

    requested_at: float  # wall-clock seconds
    grace_seconds: int

    @property
    def deadline(self) -> float:
        """``metadata.deletionTimestamp``: when the grace period ends."""
        return self.requested_at + self.grace_seconds


class PodLike(Protocol):
    """What rendering needs of one replica (``readiness.Replica`` is one)."""

    @property
    def pod(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def deployment(self) -> str: ...
    @property
    def labels(self) -> dict[str, str]: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def ready(self) -> bool: ...
    @property
    def restarts(self) -> int: ...
    @property
    def program_running(self) -> bool: ...
    @property
    def created_at(self) -> float: ...
    @property
    def serving_since(self) -> float | None: ...
    @property
    def ended_at(self) -> float | None: ...
    @property
    def deletion(self) -> Deletion | None: ...


def timestamp(seconds: float) -> str:
    """RFC 3339 in UTC to the second, as Kubernetes writes ``metav1.Time``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def phase(replica: PodLike) -> str:
    code = replica.exit_code
    if code is not None:
        return "Succeeded" if code == 0 else "Failed"
    return "Pending" if replica.serving_since is None else "Running"


def _condition(kind: str, ok: bool, since: float, reason: str | None = None) -> JSON:
    condition: JSON = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": timestamp(since),
    }
    if not ok and reason:
        condition["reason"] = reason
    return condition


def _container_state(replica: PodLike) -> JSON:
    code = replica.exit_code
    started = timestamp(replica.created_at)
    if code is not None:
        return {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": started,
                "finishedAt": timestamp(replica.ended_at or replica.created_at),
            }
        }
    if replica.serving_since is None:
        return {"waiting": {"reason": "ContainerCreating"}}
    if not replica.program_running:
        return {"waiting": {"reason": "CrashLoopBackOff"}}
    return {"running": {"startedAt": started}}


def pod_object(
    replica: PodLike,
    template: Mapping[str, Any],
    annotations: Mapping[str, str],
    image_id: str,
) -> JSON:
    """The Pod of one replica of a Deployment whose pod template is ``template``."""
    spec = defaults.pod_spec((template.get("spec") or {}) if template else {})
    spec.setdefault("containers", [{"name": "app"}])
    spec.update(nodeName=NODE_NAME, serviceAccountName=spec.get("serviceAccountName", "default"))
    ready = replica.ready and replica.exit_code is None
    created = replica.created_at
    changed = replica.ended_at or replica.serving_since or created
    meta: JSON = {
        "name": replica.pod,
        "generateName": f"{replica.deployment}-",
        "namespace": replica.namespace,
        "labels": dict(replica.labels),
        "annotations": dict(annotations),
        "creationTimestamp": timestamp(created),
    }
    if replica.deletion is not None:
        meta["deletionTimestamp"] = timestamp(replica.deletion.deadline)
        meta["deletionGracePeriodSeconds"] = replica.deletion.grace_seconds
    state = _container_state(replica)
    not_ready = "PodCompleted" if replica.exit_code is not None else "ContainersNotReady"
    return {
        "metadata": meta,
        "spec": spec,
        "status": {
            "phase": phase(replica),
            "conditions": [
                _condition("PodReadyToStartContainers", True, created),
                _condition("Initialized", True, created),
                _condition("Ready", ready, changed, not_ready),
                _condition("ContainersReady", ready, changed, not_ready),
                _condition("PodScheduled", True, created),
            ],
            "hostIP": LOOPBACK,
            "hostIPs": [{"ip": LOOPBACK}],
            "podIP": LOOPBACK,
            "podIPs": [{"ip": LOOPBACK}],
            "startTime": timestamp(created),
            "qosClass": "BestEffort",
            "containerStatuses": [
                {
                    "name": c.get("name", "app"),
                    "ready": ready,
                    "restartCount": replica.restarts,
                    "image": c.get("image", ""),
                    # Required by the official client's model; names the stand-in that really
                    # runs instead of the image.
                    "imageID": image_id,
                    "started": replica.serving_since is not None and replica.exit_code is None,
                    "state": state,
                }
                for c in spec["containers"]
            ],
        },
    }


def active(replicas: Sequence[PodLike]) -> list[PodLike]:
    """The replicas a ReplicaSet counts: not being deleted."""
    return [r for r in replicas if r.deletion is None]


def deployment_status(
    deployment: Mapping[str, Any],
    replicas: Sequence[PodLike],
    generation: int,
    now: float,
) -> JSON:
    """A Deployment's ``status`` from its replicas (``deployment`` already defaulted, with
    the ``spec.replicas`` wanted now); counts that are 0 are left out, as the API does."""
    spec = deployment.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    min_ready = defaults.min_ready_seconds(deployment)
    counted = active(replicas)
    ready = [r for r in counted if r.ready and r.exit_code is None]
    available = [
        r for r in ready if r.serving_since is not None and now - r.serving_since >= min_ready
    ]
    status: JSON = {"observedGeneration": generation}
    counts = {
        "replicas": len(counted),
        "updatedReplicas": len(counted),
        "readyReplicas": len(ready),
        "availableReplicas": len(available),
        "unavailableReplicas": max(desired - len(available), 0),
    }
    status.update({k: v for k, v in counts.items() if v})
    minimum = len(available) >= desired - defaults.max_unavailable(deployment, desired)
    done = len(available) == desired and len(counted) == desired
    name = (deployment.get("metadata") or {}).get("name", "")
    status["conditions"] = [
        {
            "type": "Available",
            "status": "True" if minimum else "False",
            "reason": "MinimumReplicasAvailable" if minimum else "MinimumReplicasUnavailable",
            "message": "Deployment has minimum availability."
            if minimum
            else "Deployment does not have minimum availability.",
        },
        {
            "type": "Progressing",
            "status": "True",
            "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
            "message": f'ReplicaSet "{name}" has successfully progressed.'
            if done
            else f'ReplicaSet "{name}" is progressing.',
        },
    ]
    return status


def deletion_order(replicas: Sequence[PodLike]) -> list[PodLike]:
    """Which replicas a scale-down removes first, as the ReplicaSet controller ranks them:
    pending before running, not ready before ready, ready for less time first, more
    restarts first, newer first."""

    def rank(r: PodLike) -> tuple[int, int, float, int, float]:
        return (
            0 if r.serving_since is None else 1,
            1 if r.ready else 0,
            -(r.serving_since or 0.0),
            -r.restarts,
            -r.created_at,
        )

    return sorted(replicas, key=rank)


def new_pod_name(deployment: str, taken: Collection[str], rng: random.Random) -> str:
    """``<deployment>-<5 characters>``, not one of ``taken``."""
    while True:
        suffix = "".join(rng.choice(NAME_ALPHABET) for _ in range(NAME_SUFFIX_LENGTH))
        name = f"{deployment}-{suffix}"
        if name not in taken:
            return name
