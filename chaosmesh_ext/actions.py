"""Chaos Toolkit actions: Istio faults, traffic, timeouts, retries and circuit breakers — undoable.

Each action reads the object, applies a pure edit from ``chaosmesh_ext.istio``, records the
change in the run's ledger and writes it with the read resourceVersion (a conflicting writer
makes it re-read and re-apply, never overwrite). Use ``restore`` as the rollback of every one
of them, and the ``chaosmesh_ext.control`` control as a safety net for runs that end early.

Every failure raises ``ActivityFailed`` naming the object and the field; a failed action
changes nothing. Kubernetes access follows chaostoolkit-kubernetes (``KUBECONFIG`` /
``KUBERNETES_CONTEXT`` / ``CHAOSTOOLKIT_IN_POD`` / ``KUBERNETES_HOST`` ...); the configuration
keys ``kubeconfig_path``, ``istio_api_version`` (default: the newest the cluster serves, v1
first) and ``kubernetes_request_timeout`` (seconds, default 10) are also read.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext._activity import (
    Configuration,
    Secrets,
    check_name,
    failures_as_activity_failed,
    istio_objects,
    run_id_for,
)
from chaosmesh_ext.breaker_sizing import advice_for, capacity_arguments, capacity_knee
from chaosmesh_ext.canary import GuardLimits, check_steps, run_rollout
from chaosmesh_ext.istio import advice as edit_advice
from chaosmesh_ext.istio import breaker, faults, traffic
from chaosmesh_ext.istio.errors import IstioError
from chaosmesh_ext.istio.hosts import fqdn
from chaosmesh_ext.kube.changes import apply_change
from chaosmesh_ext.kube.client import api_identity
from chaosmesh_ext.kube.ledger import Ledger, LedgerError
from chaosmesh_ext.kube.objects import KubeApiError, ObjectRef
from chaosmesh_ext.kube.restore import objects_for, restore_ledger
from chaosmesh_ext.probes import fortio_load

__all__ = [
    "apply_advised_breaker",
    "apply_circuit_breaker",
    "inject_abort",
    "inject_delay",
    "progressive_rollout",
    "remove_circuit_breaker",
    "remove_faults",
    "restore",
    "set_retries",
    "set_timeout",
    "shift_traffic",
]

Edit = Callable[[dict[str, Any] | None], dict[str, Any]]

logger = logging.getLogger("chaostoolkit")


@dataclass(frozen=True)
class _Target:
    """The object an action changes, and the experiment settings to reach it."""

    kind: str
    name: str
    ns: str
    configuration: Configuration | None
    secrets: Secrets | None

    @classmethod
    def of(
        cls,
        kind: str,
        name: Any,
        ns: Any,
        configuration: Configuration | None,
        secrets: Secrets | None,
    ) -> _Target:
        argument = "virtual_service" if kind == "VirtualService" else "destination_rule"
        return cls(
            kind,
            check_name(name, argument, kind),
            check_name(ns, "ns", kind),
            configuration,
            secrets,
        )

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.ns, self.name)

    def change(
        self,
        action: str,
        edit: Edit,
        details: Mapping[str, Any],
        *,
        create_if_absent: bool = False,
        warnings_of: Callable[[dict[str, Any]], list[str]] | None = None,
    ) -> dict[str, Any]:
        """Apply ``edit`` through the run's ledger; the change's summary, or ActivityFailed.

        ``warnings_of`` reads the object as written and says what is valid but almost certainly
        not meant (``istio.advice``): logged as warnings and returned under ``warnings``.
        """
        ref = self.ref
        with istio_objects(self.configuration, self.secrets) as objects:
            ledger = Ledger(
                run_id_for(self.configuration),
                api=api_identity(objects.api_client, self.configuration),
            )
            logger.info(
                "chaosmesh: %s on %s (%s), run %s, API %s",
                action,
                ref,
                ", ".join(f"{k}={v}" for k, v in details.items()) or "no arguments",
                ledger.run_id,
                objects.api_client.configuration.host,
            )
            try:
                result = apply_change(
                    objects, ledger, ref, edit, action, create_if_absent=create_if_absent
                )
            except IstioError as exc:
                # The edit's message names the object; make sure it says the ns/name we were given.
                text = str(exc)
                raise ActivityFailed(
                    text if f"{self.ns}/{self.name}" in text else f"{ref}: {text}"
                ) from exc
            except KubeApiError as exc:
                raise ActivityFailed(str(exc)) from exc
            except LedgerError as exc:
                # The entry is made durable before the write, so a failure here usually means
                # nothing was changed; restore checks the object's ledger annotation either way.
                raise ActivityFailed(f"{ref}: {exc}") from exc
        logger.info(
            "chaosmesh: %s on %s: %s (resourceVersion %s, ledger entry %s)",
            action,
            ref,
            "created" if result.created else "changed" if result.changed else "already so",
            result.resource_version,
            result.ledger_entry,
        )
        warnings = warnings_of(result.object) if warnings_of is not None else []
        for warning in warnings:
            logger.warning(f"{action}: {warning}")
        summary = result.summary(action=action, **details)
        if warnings:
            summary["warnings"] = warnings
        return summary


def _listed(warning: str | None) -> list[str]:
    return [warning] if warning else []


def _present(obj: dict[str, Any] | None) -> dict[str, Any]:
    # apply_change only passes None to edits that may create the object.
    assert obj is not None
    return obj


def _given(**fields: Any) -> dict[str, Any]:
    """The arguments that were given (not None): passed to the edit and reported back."""
    return {k: v for k, v in fields.items() if v is not None}


def inject_delay(
    virtual_service: str,
    delay: str,
    percentage: float = 100,
    route: str | int | None = None,
    headers: dict[str, Any] | None = None,
    source_labels: dict[str, str] | None = None,
    ns: str = "default",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Add a fixed delay fault to HTTP routes of a VirtualService.

    - ``delay``: a duration such as ``"2s"``, ``"500ms"``, ``"1.5s"``.
    - ``percentage``: share of matching requests delayed, in (0, 100] (default 100).
    - ``route``: an HTTP route's ``name`` or its index in ``spec.http``; default every route.
    - ``headers`` (e.g. ``{"end-user": {"exact": "jason"}}``) / ``source_labels`` (e.g.
      ``{"app": "fortio"}``): fault only that traffic. A new route is inserted in front of the
      target route, matching only those requests and carrying the fault with the same
      destinations; other traffic is untouched. ``source_labels`` match the sidecars of the
      calling workloads with those pod labels, so only calls made by those workloads (through
      their sidecars) are delayed, not calls from outside the mesh.

    An existing fault on the route keeps its other half (an abort stays). Undo with
    ``remove_faults`` or ``restore``. Returns the object, resourceVersion and ledger entry.
    """
    target = _Target.of("VirtualService", virtual_service, ns, configuration, secrets)
    args = _given(percentage=percentage, route=route, headers=headers, source_labels=source_labels)
    return target.change(
        "inject_delay",
        lambda vs: faults.inject_delay(_present(vs), delay, **args),
        {"delay": delay, **args},
        warnings_of=lambda vs: _listed(edit_advice.percentage_warning(percentage)),
    )


def inject_abort(
    virtual_service: str,
    status: int = 503,
    grpc_status: str | None = None,
    percentage: float = 100,
    route: str | int | None = None,
    headers: dict[str, Any] | None = None,
    source_labels: dict[str, str] | None = None,
    ns: str = "default",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Make a share of requests fail immediately with an HTTP status (or a gRPC status).

    - ``status``: HTTP status returned, 200..599 (default 503); ``grpc_status`` (e.g.
      ``"UNAVAILABLE"``) aborts gRPC calls instead.
    - ``percentage``: share of matching requests aborted, in (0, 100] (default 100).
    - ``route``: an HTTP route's ``name`` or index; default every HTTP route.
    - ``headers`` / ``source_labels``: fault only that traffic, through a new route inserted in
      front of the target that matches only it (same destinations); ``source_labels`` select
      the calling workloads' sidecars by pod labels.

    An existing delay on the route is kept. Undo with ``remove_faults`` or ``restore``.
    """
    target = _Target.of("VirtualService", virtual_service, ns, configuration, secrets)
    args = _given(
        status=status,
        grpc_status=grpc_status,
        percentage=percentage,
        route=route,
        headers=headers,
        source_labels=source_labels,
    )
    return target.change(
        "inject_abort",
        lambda vs: faults.inject_abort(_present(vs), **args),
        args,
        warnings_of=lambda vs: (
            _listed(edit_advice.percentage_warning(percentage))
            + edit_advice.retries_on_abort(vs, route)
        ),
    )


def remove_faults(
    virtual_service: str,
    ns: str = "default",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Remove the faults this tool injected into a VirtualService, and nothing else.

    Faults that were there before (written by people) stay; routes this tool inserted for
    ``headers`` / ``source_labels`` targets are removed. A VirtualService with no injected
    fault is left untouched (``changed: false``).
    """
    target = _Target.of("VirtualService", virtual_service, ns, configuration, secrets)
    return target.change(
        "remove_faults", lambda vs: faults.remove_injected_faults(_present(vs)), {}
    )


def shift_traffic(
    virtual_service: str,
    weights: dict[str, int],
    route: str | int | None = None,
    ns: str = "default",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Set the weights of a route's destinations by subset, e.g. ``{"v1": 90, "v2": 10}``.

    Every named subset must be defined by a DestinationRule for the route's host (in ``ns``
    or in the host's own namespace). Weights are integers >= 0 with a total > 0, written
    as given: Envoy splits traffic in proportion to them (``{"v1": 1, "v2": 3}`` sends 75 %
    to v2), so a total other than 100 still works, but Istio's convention is 100.
    The route's destinations become exactly the named subsets (one left out gets no traffic).
    ``route``: a route's ``name`` or index; default every HTTP route.
    """
    target = _Target.of("VirtualService", virtual_service, ns, configuration, secrets)
    with istio_objects(configuration, secrets) as objects:
        try:
            rules = objects.list("DestinationRule", ns)
            vs = objects.get_or_none(target.ref)
        except KubeApiError as exc:
            raise ActivityFailed(
                f"{target.ref}: cannot list DestinationRules to check subsets: {exc}"
            ) from exc
        for other in sorted(_destination_namespaces(vs, ns) - {ns}):
            # Istio also applies the DestinationRule of the host's own namespace; without
            # the right to list there, the subsets are checked against what we could read.
            with contextlib.suppress(KubeApiError):
                rules += objects.list("DestinationRule", other)
    return target.change(
        "shift_traffic",
        lambda vs: traffic.shift_traffic(
            _present(vs), weights, route=route, destination_rules=rules
        ),
        _given(weights=weights, route=route),
    )


def _destination_namespaces(vs: dict[str, Any] | None, ns: str) -> set[str]:
    """Namespaces of the Kubernetes services a VirtualService routes to (``name.ns.svc...``)."""
    found: set[str] = set()
    for route in ((vs or {}).get("spec") or {}).get("http") or []:
        for dest in (route.get("route") if isinstance(route, dict) else None) or []:
            host = str(((dest or {}).get("destination") or {}).get("host") or "")
            parts = fqdn(host, ns).split(".")
            if len(parts) >= 3 and parts[2] == "svc":
                found.add(parts[1])
    return found


def set_timeout(
    virtual_service: str,
    timeout: str,
    route: str | int | None = None,
    ns: str = "default",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Set the request timeout (e.g. ``"2s"``) of a route.

    ``route``: a route's ``name`` or index; default every HTTP route.
    """
    target = _Target.of("VirtualService", virtual_service, ns, configuration, secrets)
    return target.change(
        "set_timeout",
        lambda vs: traffic.set_timeout(_present(vs), timeout, route=route),
        _given(timeout=timeout, route=route),
    )


def set_retries(
    virtual_service: str,
    attempts: int,
    per_try_timeout: str | None = None,
    retry_on: str | None = None,
    route: str | int | None = None,
    ns: str = "default",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Set a route's retry policy.

    - ``attempts``: retries allowed (>= 0; 0 disables retries).
    - ``per_try_timeout``: timeout of each try, e.g. ``"2s"``.
    - ``retry_on``: Envoy retry conditions, e.g. ``"5xx,connect-failure"``.
    - ``route``: a route's ``name`` or index; default every HTTP route.
    """
    target = _Target.of("VirtualService", virtual_service, ns, configuration, secrets)
    args = _given(per_try_timeout=per_try_timeout, retry_on=retry_on, route=route)
    return target.change(
        "set_retries",
        lambda vs: traffic.set_retries(_present(vs), attempts, **args),
        {"attempts": attempts, **args},
        warnings_of=lambda vs: edit_advice.retries_on_abort(vs, route),
    )


def apply_circuit_breaker(
    destination_rule: str,
    host: str | None = None,
    subset: str | None = None,
    max_connections: int | None = None,
    http1_max_pending_requests: int | None = None,
    http2_max_requests: int | None = None,
    max_requests_per_connection: int | None = None,
    max_retries: int | None = None,
    consecutive_gateway_errors: int | None = None,
    consecutive_5xx_errors: int | None = None,
    interval: str | None = None,
    base_ejection_time: str | None = None,
    max_ejection_percent: int | None = None,
    min_health_percent: int | None = None,
    port: int | None = None,
    ns: str = "default",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Set a DestinationRule's connection pool and outlier detection (a circuit breaker).

    Patches the rule's ``trafficPolicy`` (or that of ``subset``), keeping fields not given.
    When the DestinationRule does not exist, ``host`` creates it (``restore`` deletes it again).
    A policy with ``portLevelSettings`` needs ``port``: Istio uses a port's port-level policy
    instead of the rest for that port, so the breaker goes there (the action refuses to write
    one Istio would ignore).
    Connection pool: ``max_connections``, ``http1_max_pending_requests``, ``http2_max_requests``,
    ``max_requests_per_connection``, ``max_retries``. Outlier detection:
    ``consecutive_gateway_errors``, ``consecutive_5xx_errors``, ``interval`` ("1s"),
    ``base_ejection_time`` ("3m"), ``max_ejection_percent``, ``min_health_percent``.
    """
    target = _Target.of("DestinationRule", destination_rule, ns, configuration, secrets)
    fields = _given(
        max_connections=max_connections,
        http1_max_pending_requests=http1_max_pending_requests,
        http2_max_requests=http2_max_requests,
        max_requests_per_connection=max_requests_per_connection,
        max_retries=max_retries,
        consecutive_gateway_errors=consecutive_gateway_errors,
        consecutive_5xx_errors=consecutive_5xx_errors,
        interval=interval,
        base_ejection_time=base_ejection_time,
        max_ejection_percent=max_ejection_percent,
        min_health_percent=min_health_percent,
    )
    return target.change(
        "apply_circuit_breaker",
        lambda dr: breaker.apply_circuit_breaker(
            dr, destination_rule, ns, host=host, subset=subset, port=port, **fields
        ),
        _given(host=host, subset=subset, port=port, **fields),
        create_if_absent=True,
    )


def apply_advised_breaker(
    destination_rule: str,
    host: str | None = None,
    subset: str | None = None,
    measure: Mapping[str, Any] | None = None,
    from_knee: Mapping[str, Any] | str | None = None,  # a knee probe output, or its file
    pods: int | None = None,
    p99_slo: str | float | None = None,
    service_time: str | float | None = None,
    rps_per_pod: float | None = None,
    concurrency_per_pod: float | None = None,
    knee_p99: str | float | None = None,
    callers: int = 1,
    keepalive: bool = True,
    http2: bool = False,
    behind_l4_proxy: bool = False,
    can_lose: int | None = None,
    peak_rps: float | None = None,
    envoy_workers: int = 2,
    ns: str = "default",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Apply the advised circuit breaker to a DestinationRule (``restore`` undoes it).

    The capacity comes from ``measure`` (the ``capacity_knee`` probe's arguments: the knee is
    measured now, in this run), ``from_knee`` (a knee measured before) or the declared
    arguments, as in the ``advise_breaker`` probe. Fields the advice leaves out (outlier
    detection behind an L4 proxy, ``maxRequestsPerConnection`` with keep-alive) keep their
    current value. Returns ``knee_search`` (when measured), ``advice`` (fields with reasons)
    and ``change`` (what ``apply_circuit_breaker`` did).
    """
    where = f"apply_advised_breaker {ns}/{destination_rule}"
    knee_search = None
    if measure is not None:
        if from_knee is not None:
            raise ActivityFailed(f"{where}: measure: give measure or from_knee, not both")
        if not isinstance(measure, Mapping) or not measure.get("url"):
            raise ActivityFailed(
                f"{where}: measure: the capacity_knee arguments, at least url and max_p99_ms"
            )
        arguments = {"ns": ns, "pods": pods, **measure}
        unknown = sorted(set(arguments) - set(inspect.signature(capacity_knee).parameters))
        if unknown or {"configuration", "secrets"} & set(measure):
            raise ActivityFailed(
                f"{where}: measure: not capacity_knee arguments: {unknown or ['configuration']}"
            )
        knee_search = capacity_knee(**arguments, configuration=configuration, secrets=secrets)
        from_knee = knee_search
    advice = advice_for(where, **capacity_arguments(locals()))
    change = apply_circuit_breaker(
        destination_rule,
        host=host,
        subset=subset,
        ns=ns,
        configuration=configuration,
        secrets=secrets,
        **advice.breaker_arguments(),
    )
    result: dict[str, Any] = {"advice": advice.to_dict(), "change": change}
    if knee_search is not None:
        result["knee_search"] = knee_search
    return result


def remove_circuit_breaker(
    destination_rule: str,
    subset: str | None = None,
    port: int | None = None,
    ns: str = "default",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Remove the connection pool and outlier detection of a DestinationRule (or of ``subset``,
    or of the port-level policy of ``port``)."""
    target = _Target.of("DestinationRule", destination_rule, ns, configuration, secrets)
    return target.change(
        "remove_circuit_breaker",
        lambda dr: breaker.remove_circuit_breaker(_present(dr), subset=subset, port=port),
        _given(subset=subset, port=port),
    )


def restore(
    ns: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Put back every object this run changed (objects it created are deleted); the rollback.

    Each object returns to its spec, labels and annotations from before the run's first change.
    An object someone else changed since this run's last write is left alone and reported with
    a diff (``ActivityFailed``, after the others are restored). Running it twice is harmless.
    ``ns`` limits it to one namespace.
    """
    ledger = Ledger(run_id_for(configuration))
    with istio_objects(configuration, secrets) as objects:
        try:
            outcomes = restore_ledger(
                ledger, objects_for(objects.api_client, objects.timeout), namespace=ns
            )
        except LedgerError as exc:
            raise ActivityFailed(f"restore of run {ledger.run_id}: {exc}") from exc
    for outcome in outcomes:
        log = logger.info if outcome.ok else logger.error
        log("chaosmesh: restore %s: %s %s", outcome.ref, outcome.result, outcome.detail or "")
    if not outcomes:
        logger.info("chaosmesh: restore: run %s changed nothing", ledger.run_id)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        text = "\n".join(f"{o.ref}: {o.result}: {o.detail}" for o in failed)
        done = len(outcomes) - len(failed)
        raise ActivityFailed(
            f"restore of run {ledger.run_id}: {done} object(s) restored, {len(failed)} not:\n{text}"
        )
    return {"run_id": ledger.run_id, "objects": [o.summary() for o in outcomes]}


def progressive_rollout(
    virtual_service: str,
    stable: str,
    canary: str,
    url: str,
    steps: Sequence[int] = (10, 25, 50, 100),
    route: str | int | None = None,
    interval: float = 1.0,
    n: int = 100,
    c: int = 2,
    max_error_rate: float = 0.01,
    max_p99_ms: float | None = None,
    via: str = "mesh",
    headers: Mapping[str, str] | list[str] | None = None,
    ns: str = "default",
    fortio_ns: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Shift traffic from ``stable`` to ``canary`` subset step by step, guarded by an SLO.

    After each step (the canary's weight in percent, increasing, ending at most at 100) it
    waits ``interval`` seconds, then sends ``n`` requests to ``url`` from inside the mesh and
    checks the error rate (``max_error_rate``) and, if given, the p99 (``max_p99_ms``). On
    the first failed check it shifts all traffic back to ``stable`` and stops — like Flagger
    with a failure threshold of 1. Every shift is recorded in the run's ledger, so
    ``restore`` afterwards gives back the weights the VirtualService had before.

    Returns ``promoted`` (bool), ``max_canary_weight`` (the largest share the canary ever
    had), ``halted_at`` (the failing step or null) and each step's numbers.
    """
    what = f"VirtualService {ns}/{virtual_service}"
    with failures_as_activity_failed():
        step_list = check_steps(steps, what=what)
        limits = GuardLimits(max_error_rate=max_error_rate, max_p99_ms=max_p99_ms)

    def shift(weight: int) -> object:
        return shift_traffic(
            virtual_service,
            {stable: 100 - weight, canary: weight},
            route=route,
            ns=ns,
            configuration=configuration,
            secrets=secrets,
        )

    def guard(weight: int) -> Mapping[str, Any]:
        return fortio_load(
            url,
            c=c,
            n=n,
            headers=headers,
            via=via,
            ns=fortio_ns or ns,
            configuration=configuration,
            secrets=secrets,
        )

    with failures_as_activity_failed():
        return run_rollout(
            step_list,
            shift=shift,
            guard=guard,
            limits=limits,
            stable=stable,
            canary=canary,
            what=what,
            interval=interval,
        )
