"""The ReplicaSet's work on one machine: what deleting a pod or scaling a Deployment does.

The store hands the API's writes of Pods and Deployments here (``Owner``):

- ``DELETE`` of a pod starts its graceful deletion as kube-apiserver and the kubelet do: the
  Pod gets ``deletionTimestamp`` (now plus the grace period: the request's
  ``gracePeriodSeconds``, else the template's ``terminationGracePeriodSeconds``, 30 s by
  default), its replica is asked to terminate (SIGTERM), and killed (SIGKILL) if it is still
  there when the grace period ends. A grace period of 0 removes the Pod at once and kills the
  replica. A pod already ended is removed at once, as the pod strategy does.
- ``PATCH``/``PUT`` of a Deployment (and its ``scale``) may change ``spec.replicas`` only;
  anything else is refused with 422 naming the field (``mesh up -f`` changes the rest).

A loop (``run``, every 50 ms while pods start or stop, else every 0.5 s) then does what the
controllers and the kubelet do:

- a Deployment with fewer replicas than wanted (not counting pods being deleted) gets new ones,
  named ``<deployment>-<5 characters>``; with more, the lowest-ranked are deleted gracefully;
- a new replica is Ready once its port accepts connections;
- a replica being deleted is shown ended (not Ready, ``Succeeded``/``Failed``) once its process
  is gone, then its Pod is removed;
- Envoy balances load over the replicas that are ready and not being deleted: each change of
  that set is pushed, so a deleted pod's endpoint leaves as the SIGTERM goes out (on a cluster
  the endpoint update races the kubelet's signal too) and a new pod joins once it serves.

Everything runs under the store's write lock, like the API's writes.
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..api import ApiError, ApplyRejected, resources
from ..api.resources import ResourceType
from ..api.status import Cause, invalid, method_not_allowed, not_found
from ..readiness import Replica, accepts
from ..views import Key
from . import defaults, logs, model
from .model import Deletion

if TYPE_CHECKING:
    from ..apply import Applier

BUSY_INTERVAL_S = 0.05
IDLE_INTERVAL_S = 0.5
# A replica that cannot be started (bad manifest, missing program) is retried this often.
START_RETRY_S = 5.0
# Metadata the server or the controller owns: a client may send it back changed.
_SERVER_METADATA = (
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
)
_CONTROLLER_ANNOTATIONS = (
    "deployment.kubernetes.io/revision",
    "kubectl.kubernetes.io/last-applied-configuration",
)


def _say(message: str) -> None:
    print(f"pods: {message}", file=sys.stdout, flush=True)


def first_difference(before: Any, after: Any, path: str = "") -> str | None:
    """The dotted path of the first place ``after`` differs from ``before`` (None if equal)."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            found = first_difference(before.get(key), after.get(key), f"{path}.{key}".lstrip("."))
            if found is not None:
                return found
        return None
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (a, b) in enumerate(zip(before, after, strict=True)):
            found = first_difference(a, b, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    return None if before == after else path or "(the object)"


def _comparable(deployment: dict[str, Any]) -> dict[str, Any]:
    """What of a Deployment a client may not change through the API (all but replicas)."""
    shown = defaults.deployment(deployment)
    meta = {
        k: v
        for k, v in (shown.get("metadata") or {}).items()
        if k not in _SERVER_METADATA and k != "namespace"
    }
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in _CONTROLLER_ANNOTATIONS
    }
    meta["annotations"] = annotations or None
    meta["labels"] = meta.get("labels") or None
    spec = {k: v for k, v in (shown.get("spec") or {}).items() if k != "replicas"}
    return {"metadata": meta, "spec": spec}


def wanted_replicas(deployment: dict[str, Any]) -> int:
    """``spec.replicas`` of a Deployment a client sent (1 when absent); 422 when not a whole
    number >= 0."""
    meta = deployment.get("metadata") or {}
    value = (deployment.get("spec") or {}).get("replicas", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(
            "apps",
            "Deployment",
            str(meta.get("name") or ""),
            [
                Cause(
                    "spec.replicas", f"Invalid value: {value!r}: must be greater than or equal to 0"
                )
            ],
        )
    return value


class PodController:
    """Deletes, replaces and scales the replicas of the Applier's Deployments."""

    def __init__(self, applier: Applier, rng: random.Random | None = None) -> None:
        self.applier = applier
        self.store = applier.store
        self.rng = rng or random.Random()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_failed: dict[Key, float] = {}  # deployment -> when a start last failed
        self._endpoints: tuple[tuple[str, str, int], ...] | None = None

    # ---- the store's Owner -------------------------------------------------------------
    def update(self, rt: ResourceType, current: dict[str, Any], wanted: dict[str, Any]) -> None:
        if rt is not resources.DEPLOYMENTS:
            raise method_not_allowed(f"{rt.plural} cannot be changed through the API")
        meta = current.get("metadata") or {}
        key: Key = (meta.get("namespace") or "default", meta["name"])
        changed = first_difference(_comparable(current), _comparable(wanted))
        if changed is not None:
            raise invalid(
                "apps",
                "Deployment",
                key[1],
                [
                    Cause(
                        changed,
                        "the embedded mesh's API changes only spec.replicas of a Deployment "
                        "(scale it); apply the manifest with 'chaosmesh mesh up -f FILE' to "
                        "change anything else",
                        "FieldValueForbidden",
                    )
                ],
            )
        self.scale(key, wanted_replicas(wanted))

    def delete(
        self, rt: ResourceType, current: dict[str, Any], grace_seconds: int | None
    ) -> dict[str, Any]:
        if rt is not resources.PODS:
            raise method_not_allowed(f"{rt.plural} cannot be deleted through the API")
        meta = current.get("metadata") or {}
        return self.delete_pod(meta.get("namespace") or "default", meta["name"], grace_seconds)

    # ---- API actions ---------------------------------------------------------------------
    def scale(self, key: Key, replicas: int) -> None:
        """Want ``replicas`` replicas of the Deployment ``key`` from now on."""
        with self.store.writing():
            if key not in self.applier.deployments:
                raise not_found("apps", "deployments", key[1])
            if replicas != self.applier.desired_replicas(key):
                _say(f"deployment {key[0]}/{key[1]}: scaled to {replicas}")
                self.applier.scale(key, replicas)
                self.applier.publish()
        self._wake.set()

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None) -> dict[str, Any]:
        """Start deleting the pod ``namespace/name``; the Pod as the answer to the DELETE."""
        with self.store.writing():
            found = self._find(namespace, name)
            if found is None:
                raise not_found("", "pods", name)
            key, replica = found
            answer = self.store.get(resources.PODS, namespace, name)
            grace = grace_seconds
            if grace is None:
                grace = defaults.grace_seconds(self.applier.deployments[key])
            if replica.exit_code is not None:
                grace = 0  # an ended pod goes at once, as kube-apiserver's pod strategy says
            if replica.deletion is not None and replica.deletion.grace_seconds <= grace:
                return answer  # already being deleted, no sooner than this asks
            self._begin_deletion(key, replica, grace)
            self.applier.publish()
            with contextlib.suppress(ApiError):
                answer = self.store.get(resources.PODS, namespace, name)
        self._wake.set()
        return answer

    # ---- logs ----------------------------------------------------------------------------
    def pod_logs(self, namespace: str, name: str, query: dict[str, str]) -> Iterable[bytes]:
        """``pods/{name}/log`` from the replica's log file (``pods.logs``)."""
        found = self._find(namespace, name)
        if found is None:
            raise not_found("", "pods", name)
        key, replica = found
        template = (self.applier.deployments[key].get("spec") or {}).get("template") or {}
        containers = [
            str(c.get("name"))
            for c in ((template.get("spec") or {}).get("containers") or [])
            if isinstance(c, dict) and c.get("name")
        ]
        options = logs.parse_options(query, name, containers or ["app"])
        if replica.log_path is None:
            return [b""]
        source = logs.LogSource(replica.log_path, replica.log_offset, replica.created_at)
        if not options.follow:
            return [logs.read(source, options, time.time())]
        return self._follow(source, options, replica)

    def _follow(
        self, source: logs.LogSource, options: logs.LogOptions, replica: Replica
    ) -> Iterator[bytes]:
        def ended() -> bool:
            return replica.exit_code is not None or self._stopping.is_set()

        yield from logs.follow(source, options, ended, time.time)

    # ---- the loop ------------------------------------------------------------------------
    def start(self) -> PodController:
        self._thread = threading.Thread(target=self.run, name="pod-controller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        """Look again now (a replica's process state changed, say)."""
        self._wake.set()

    def run(self) -> None:
        busy = True
        while not self._stopping.is_set():
            self._wake.wait(BUSY_INTERVAL_S if busy else IDLE_INTERVAL_S)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                busy = self.tick()
            except Exception as exc:  # never let one bad tick end the controller
                _say(f"error: {type(exc).__name__}: {exc}")
                busy = True

    def tick(self) -> bool:
        """One pass over every Deployment; True while pods are starting or stopping."""
        with self.store.writing():
            now = time.time()
            changed = False
            busy = False
            for key in list(self.applier.replicas):
                if key not in self.applier.deployments:
                    continue
                step_changed, step_busy = self._reconcile(key, now)
                changed |= step_changed
                busy |= step_busy
            changed |= self._reap()
            busy |= bool(self.applier.reaping)
            self._sync_endpoints()
            if changed:
                self.applier.publish()
                self.applier.on_change()
            return busy

    def _reconcile(self, key: Key, now: float) -> tuple[bool, bool]:
        changed = busy = False
        kept: list[Replica] = []
        for replica in self.applier.replicas.get(key, []):
            code = replica.exit_code
            if code is not None and replica.ended_at is None:
                replica.ended_at = now  # shown ended (not Ready) before the Pod goes
                changed = True
                _say(f"pod {replica.namespace}/{replica.pod}: ended with code {code}")
            if replica.deletion is not None:
                busy = True
                if replica.ended_at is not None and replica.ended_at < now:
                    changed = True  # shown ended at least once: the Pod goes now
                    _say(f"pod {replica.namespace}/{replica.pod}: deleted")
                    continue
                if code is None and now >= replica.deletion.deadline:
                    replica.process.kill()  # the grace period is over
            elif code is None and replica.serving_since is None:
                busy = True
                if accepts(replica.port):
                    replica.serving_since = now
                    changed = True
                    _say(
                        f"pod {replica.namespace}/{replica.pod}: ready on 127.0.0.1:{replica.port}"
                    )
            kept.append(replica)
        if len(kept) != len(self.applier.replicas.get(key, [])):
            self.applier.replicas[key] = kept
        min_ready = defaults.min_ready_seconds(self.applier.deployments[key])
        if min_ready and any(
            r.serving_since is not None and now - r.serving_since <= min_ready + BUSY_INTERVAL_S
            for r in kept
        ):
            changed = busy = True  # availableReplicas moves once minReadySeconds have passed
        desired = self.applier.desired_replicas(key)
        counted = model.active(kept)
        if len(counted) > desired:
            grace = defaults.grace_seconds(self.applier.deployments[key])
            for extra in model.deletion_order(counted)[: len(counted) - desired]:
                self._begin_deletion(key, self._replica(extra), grace)
            changed = busy = True
        elif len(counted) < desired and self._may_start(key, now):
            changed |= self._add_replicas(key, desired - len(counted))
            busy = True
        return changed, busy

    # ---- steps ---------------------------------------------------------------------------
    def _find(self, namespace: str, name: str) -> tuple[Key, Replica] | None:
        for key, reps in self.applier.replicas.items():
            for replica in reps:
                if replica.namespace == namespace and replica.pod == name:
                    return key, replica
        return None

    @staticmethod
    def _replica(view: model.PodLike) -> Replica:
        assert isinstance(view, Replica)
        return view

    def _begin_deletion(self, key: Key, replica: Replica, grace: int) -> None:
        _say(f"pod {replica.namespace}/{replica.pod}: deleting (grace period {grace}s)")
        replica.deletion = Deletion(time.time(), grace)
        if replica.exit_code is None:
            if grace == 0:
                replica.process.kill()
            else:
                replica.process.terminate()
        if grace == 0:
            # Gone from the API at once; its process is still reaped (and listed in mesh.json).
            self.applier.replicas[key] = [r for r in self.applier.replicas[key] if r is not replica]
            self.applier.reaping.append(replica)
        self._wake.set()

    def _reap(self) -> bool:
        """Forget force-deleted replicas whose process has ended (kill those still there)."""
        left = []
        for replica in self.applier.reaping:
            if replica.exit_code is None:
                replica.process.kill()
                left.append(replica)
        changed = len(left) != len(self.applier.reaping)
        self.applier.reaping = left
        return changed

    def _may_start(self, key: Key, now: float) -> bool:
        failed = self._start_failed.get(key)
        return failed is None or now - failed >= START_RETRY_S

    def _add_replicas(self, key: Key, count: int) -> bool:
        taken = {r.pod for reps in self.applier.replicas.values() for r in reps}
        taken |= {r.pod for r in self.applier.reaping}
        names: list[str] = []
        for _ in range(count):
            names.append(model.new_pod_name(key[1], taken | set(names), self.rng))
        try:
            fresh = self.applier.start_replicas(self.applier.deployments[key], names)
        except Exception as exc:
            self._start_failed[key] = time.time()
            _say(f"deployment {key[0]}/{key[1]}: cannot start a replica: {exc}")
            return False
        self._start_failed.pop(key, None)
        for replica in fresh:
            _say(f"pod {replica.namespace}/{replica.pod}: created (pid {replica.pid})")
        self.applier.replicas[key] = [*self.applier.replicas.get(key, []), *fresh]
        return True

    def _sync_endpoints(self) -> None:
        """Push Envoy's endpoints when the set of serving replicas changed."""
        now = tuple(
            sorted(
                (r.namespace, r.pod, r.port) for r in self.applier.all_replicas() if r.in_endpoints
            )
        )
        if now == self._endpoints or not self.applier.envoy_started:
            return
        try:
            # The stored objects themselves (read-only), as every write pushes them: copies
            # would make the translator redo everything, for this push and the next write.
            self.applier.push(self.store.istio_state())
        except (ApplyRejected, ApiError) as exc:
            _say(f"endpoints not pushed (retrying): {exc}")
            return
        self._endpoints = now
