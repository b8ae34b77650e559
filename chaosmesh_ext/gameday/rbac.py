"""Least-privilege RBAC for a plan: the verbs its experiments' activities actually need.

Pure: reads experiment dicts, returns Role rules per namespace. What each part of this
extension calls on the Kubernetes API:

- ``chaosmesh_ext.actions``: read-modify-write of VirtualServices and DestinationRules
  (get, list, patch, update); circuit breakers may create a DestinationRule from nothing
  and their rollback deletes it (create, delete on destinationrules).
- the safety net (``chaosmesh_ext.control``) and ``chaosmesh restore``: the same as the
  plan's actions, since they undo them.
- load probes (``fortio_load``, ``latency_ms``, ``error_rate``, ``response_codes``,
  ``traffic_split``): fortio's REST API through the service proxy (get on
  ``services/proxy``), or ``kubectl exec``-style into the fortio pod as a fallback (get and
  list on pods to find it, create on ``pods/exec``).
- ``split_follows_weights``: reads the VirtualService (get), then runs load as above.
- ``progressive_rollout`` (an action): edits the VirtualService and runs load as above.
- ``breaker_stats``: the sidecar's stats through the pod proxy (get on ``pods/proxy``, get
  and list on pods to find the pods behind a service, create on ``pods/exec`` as fallback).
- ``chaosmesh_ext.prometheus`` talks to Prometheus and ``chaosmesh_ext.tolerances`` checks
  values: nothing.
- any other module of this extension: read access to Istio objects (get, list).
- chaostoolkit-kubernetes' pod and deployment activities (``CHAOSK8S``): what their source
  calls — ``terminate_pods`` lists and deletes pods, the pod probes list them,
  ``read_pod_logs`` reads ``pods/log``, ``exec_in_pods`` opens ``pods/exec``, the deployment
  probes list (and watch) Deployments, ``scale_deployment``/``rollout_deployment`` patch
  them. Its other modules (nodes, namespaces, services...) are noted as not covered.

The namespace of an activity is its ``ns`` argument (the name this extension's activities
use; ``namespace`` is read too), and for load the fortio client's ``fortio_ns`` when given.
``${name}`` in it is resolved as ``chaos run`` would in the pod: the plan's variables
(``--var``), else the experiment's configuration (a literal, or an env entry's default).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

ISTIO = "networking.istio.io"
CORE = ""
VS, DR = (ISTIO, "virtualservices"), (ISTIO, "destinationrules")
EDIT = {"get", "list", "patch", "update"}
READ = {"get", "list"}
OWN_PREFIX = "chaosmesh_ext"
_VARIABLE = re.compile(r"\$\{([^}]+)\}")
APPS = "apps"
PODS, DEPLOYMENTS = (CORE, "pods"), (APPS, "deployments")
Need = list[tuple[tuple[str, str], set[str]]]
# chaostoolkit-kubernetes 0.39: what each activity calls (module -> func -> needs; "*" for
# the module's other functions).
CHAOSK8S: dict[str, dict[str, Need]] = {
    "chaosk8s.pod.actions": {
        "terminate_pods": [(PODS, {"list", "delete"})],
        "delete_pods": [(PODS, {"list", "delete"})],
        # A WebSocket exec is a GET; Kubernetes >= 1.30 checks `create` for it too.
        "exec_in_pods": [(PODS, {"list"}), ((CORE, "pods/exec"), {"create", "get"})],
    },
    "chaosk8s.pod.probes": {
        "read_pod_logs": [(PODS, {"list"}), ((CORE, "pods/log"), {"get"})],
        "should_be_found_in_logs": [],  # reads the value it is given
        "*": [(PODS, {"list"})],
    },
    "chaosk8s.deployment.probes": {
        "deployment_fully_available": [(DEPLOYMENTS, {"list", "watch"})],
        "deployment_not_fully_available": [(DEPLOYMENTS, {"list", "watch"})],
        "*": [(DEPLOYMENTS, {"list"})],
    },
    "chaosk8s.deployment.actions": {
        "create_deployment": [(DEPLOYMENTS, {"create"})],
        "delete_deployment": [(DEPLOYMENTS, {"list", "delete"})],
        "*": [(DEPLOYMENTS, {"patch"})],  # scale_deployment, rollout_deployment
    },
}
# Activities that run load besides what their module does.
RUNS_LOAD = {"progressive_rollout", "split_follows_weights"}
READS_VS = {"split_follows_weights"}


@dataclass
class Permissions:
    """(api group, resource) -> verbs, per namespace; plus modules this tool cannot vouch for."""

    rules: dict[str, dict[tuple[str, str], set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )
    foreign_modules: set[str] = field(default_factory=set)

    def grant(self, namespace: str, resource: tuple[str, str], verbs: Iterable[str]) -> None:
        self.rules[namespace][resource].update(verbs)

    def role_rules(self, namespace: str) -> list[dict[str, Any]]:
        """Kubernetes PolicyRules, one per (group, verbs) with the resources that share them."""
        grouped: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
        for (group, resource), verbs in sorted(self.rules.get(namespace, {}).items()):
            grouped[(group, tuple(sorted(verbs)))].append(resource)
        return [
            {"apiGroups": [group], "resources": sorted(resources), "verbs": list(verbs)}
            for (group, verbs), resources in sorted(grouped.items())
        ]


def activities(experiment: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every activity an experiment can run: hypothesis probes (and probe tolerances),
    method, rollbacks."""
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    listed = list(hypothesis.get("probes") or [])
    listed += list(experiment.get("method") or []) + list(experiment.get("rollbacks") or [])
    for activity in listed:
        if not isinstance(activity, dict):
            continue
        yield activity
        tolerance = activity.get("tolerance")
        if isinstance(tolerance, dict) and tolerance.get("type") == "probe":
            yield tolerance


def known_values(experiment: dict[str, Any], variables: Mapping[str, str]) -> dict[str, str]:
    """What ``${name}`` will stand for in the pod: plan variables over configuration."""
    values: dict[str, str] = {}
    configuration = experiment.get("configuration")
    for key, value in (configuration if isinstance(configuration, dict) else {}).items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            values[str(key)] = str(value)
        elif (
            isinstance(value, dict)
            and value.get("type") == "env"
            and value.get("default") not in (None, "")
        ):
            values[str(key)] = str(value["default"])
    values.update({str(k): str(v) for k, v in variables.items()})
    return values


def _namespace(
    activity: dict[str, Any],
    default: str,
    values: Mapping[str, str] | None = None,
    keys: tuple[str, ...] = ("ns", "namespace"),
) -> str:
    args = (activity.get("provider") or {}).get("arguments") or {}
    if not isinstance(args, dict):
        return default
    for key in keys:
        ns = args.get(key)
        if not isinstance(ns, str) or not ns:
            continue
        resolved = _VARIABLE.sub(lambda m: (values or {}).get(m.group(1), m.group(0)), ns)
        return default if "${" in resolved else resolved
    return default


def _load_needs() -> list[tuple[tuple[str, str], set[str]]]:
    return [
        ((CORE, "services/proxy"), {"get"}),
        ((CORE, "pods"), READ),
        ((CORE, "pods/exec"), {"create"}),
    ]


def _probe_needs(func: str) -> list[tuple[tuple[str, str], set[str]]]:
    if "breaker" in func.lower() or "stats" in func.lower():
        return [
            ((CORE, "pods/proxy"), {"get"}),
            ((CORE, "pods"), READ),
            ((CORE, "pods/exec"), {"create"}),
        ]
    # fortio_load, latency_ms, error_rate, response_codes, traffic_split: all run load.
    return _load_needs()


def permissions(
    experiments: Iterable[dict[str, Any]],
    default_namespace: str,
    variables: Mapping[str, str] | None = None,
) -> Permissions:
    """What the experiments need, per namespace (``variables``: the plan's, as ``--var``)."""
    perms = Permissions()
    action_namespaces: set[str] = set()
    breakers = False
    safety_net = False
    for experiment in experiments:
        values = known_values(experiment, variables or {})
        for control in experiment.get("controls") or []:
            module = ((control or {}).get("provider") or {}).get("module") or ""
            if module.startswith(OWN_PREFIX):
                safety_net = True
        for activity in activities(experiment):
            provider = activity.get("provider") or {}
            if provider.get("type") != "python":
                continue
            module = str(provider.get("module") or "")
            func = str(provider.get("func") or "")
            ns = _namespace(activity, default_namespace, values)
            # The fortio client may live in another namespace than the objects acted on.
            load_ns = _namespace(activity, ns, values, keys=("fortio_ns",))
            if module in (f"{OWN_PREFIX}.actions", f"{OWN_PREFIX}.probes") and func in RUNS_LOAD:
                for resource, verbs in _load_needs():
                    perms.grant(load_ns, resource, verbs)
            if func in READS_VS and module == f"{OWN_PREFIX}.probes":
                perms.grant(ns, VS, READ)
            if module == f"{OWN_PREFIX}.actions":
                action_namespaces.add(ns)
                perms.grant(ns, VS, EDIT)
                perms.grant(ns, DR, EDIT)
                if "breaker" in func.lower():
                    breakers = True
                    perms.grant(ns, DR, {"create", "delete"})
            elif module == f"{OWN_PREFIX}.probes":
                probe_ns = ns if "breaker" in func.lower() else load_ns
                for resource, verbs in _probe_needs(func):
                    perms.grant(probe_ns, resource, verbs)
            elif module in (f"{OWN_PREFIX}.prometheus", f"{OWN_PREFIX}.tolerances"):
                continue  # Prometheus's HTTP API, or pure checks of a value: no API server
            elif module.startswith(OWN_PREFIX):
                perms.grant(ns, VS, READ)
                perms.grant(ns, DR, READ)
            elif module in CHAOSK8S:
                table = CHAOSK8S[module]
                for resource, verbs in table.get(func, table.get("*", [])):
                    perms.grant(ns, resource, verbs)
            else:
                perms.foreign_modules.add(module)
    # Restore (the safety net, or `chaosmesh restore` after a time limit) undoes the
    # actions: the same verbs where they acted, plus re-creating a DestinationRule a
    # breaker created from nothing was deleted, or deleting it.
    if safety_net or action_namespaces:
        for ns in action_namespaces or {default_namespace}:
            perms.grant(ns, VS, EDIT)
            perms.grant(ns, DR, EDIT)
            if breakers:
                perms.grant(ns, DR, {"create", "delete"})
    return perms
