"""Canary analysis: does traffic follow the declared weights, and a guarded progressive rollout.

Two activities build on the traffic action and the load probes:

- ``split_follows_weights`` (probe): measures the split of real requests and compares it with
  the weights the VirtualService declares right now, so one steady-state probe holds before
  and after a weight shift (the seed's "90 times v1, 10 times v2" check, generalised);
- ``progressive_rollout`` (action): Flagger-style — raise the canary's weight step by step,
  run an SLO guard (fortio load through the mesh) after each step, and on the first failed
  guard put all traffic back on the stable subset and stop. A bad canary never gets more
  than the share of the step at which it was caught.

Both are listed in ``chaosmesh_ext.probes`` / ``chaosmesh_ext.actions``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext.istio.routes import is_inserted

logger = logging.getLogger("chaostoolkit")

Configuration = dict[str, Any]
Secrets = dict[str, Any]


def declared_split(vs: Mapping[str, Any], route: str | int | None = None) -> dict[str, float]:
    """Fraction per subset (or per host, for host-only destinations) of one HTTP route.

    Pure. ``route`` is the route's name or index; default the first HTTP route (the one a
    request without special headers takes in the usual canary layout).
    """
    routes = list((vs.get("spec") or {}).get("http") or [])
    user_routes = [r for r in routes if not is_inserted(r)]
    name = (vs.get("metadata") or {}).get("name", "?")
    if not user_routes:
        raise ValueError(f"VirtualService {name}: spec.http: no HTTP route")
    if route is None:
        chosen = user_routes[0]
    elif isinstance(route, int) or str(route).isdigit():
        index = int(route)
        if not 0 <= index < len(user_routes):
            raise ValueError(f"VirtualService {name}: spec.http[{index}]: no such route")
        chosen = user_routes[index]
    else:
        matching = [r for r in user_routes if r.get("name") == route]
        if not matching:
            raise ValueError(f"VirtualService {name}: spec.http: no route named {route!r}")
        chosen = matching[0]
    destinations = chosen.get("route") or []
    weights: dict[str, float] = {}
    for dest in destinations:
        target = dest.get("destination") or {}
        key = str(target.get("subset") or target.get("host") or "?")
        # One destination without a weight takes everything (Istio's rule).
        weight = float(dest.get("weight", 100 if len(destinations) == 1 else 0))
        weights[key] = weights.get(key, 0.0) + weight
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"VirtualService {name}: route weights add up to {total}")
    return {key: round(value / total, 4) for key, value in weights.items()}


def _read_vs(
    virtual_service: str, ns: str, configuration: Configuration | None, secrets: Secrets | None
) -> dict[str, Any]:
    from chaosmesh_ext.actions import _objects
    from chaosmesh_ext.kube.objects import KubeApiError, ObjectRef

    with _objects(configuration, secrets) as objects:
        try:
            return objects.get(ObjectRef("VirtualService", ns, virtual_service))
        except KubeApiError as exc:
            raise ActivityFailed(str(exc)) from exc


def split_follows_weights(
    url: str,
    virtual_service: str,
    route: str | int | None = None,
    n: int = 400,
    classify: str | Mapping[str, str] = r"(?P<version>v\d+)",
    c: int = 2,
    via: str = "mesh",
    headers: Mapping[str, str] | list[str] | None = None,
    ns: str = "default",
    fortio_ns: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """How far the measured split is from the weights ``virtual_service`` declares now.

    Sends ``n`` requests to ``url`` (from the mesh's fortio, or ``via="local"`` e.g. through
    the ingress gateway), classifies each response (``classify``: a body regex or
    ``"header:<name>"``; the class names must be the subset names) and returns
    ``max_deviation`` (the largest absolute difference of a fraction, 0..1) with the
    ``declared`` and ``observed`` fractions. Use it with
    ``{"type": "range", "range": [0, 0.05], "target": "max_deviation"}``.
    """
    from chaosmesh_ext import probes

    vs = _read_vs(virtual_service, ns, configuration, secrets)
    try:
        declared = declared_split(vs, route)
    except ValueError as exc:
        raise ActivityFailed(str(exc)) from exc
    observed = probes.traffic_split(
        url,
        n=n,
        classify=classify,
        c=c,
        headers=headers,
        via=via,
        ns=fortio_ns or ns,
        configuration=configuration,
        secrets=secrets,
    )
    keys = sorted(set(declared) | set(observed))
    deviation = max(abs(observed.get(k, 0.0) - declared.get(k, 0.0)) for k in keys)
    logger.info(
        f"split_follows_weights {ns}/{virtual_service}: declared {declared}, observed "
        f"{observed}, max deviation {deviation:.3f}"
    )
    return {
        "max_deviation": round(deviation, 4),
        "declared": declared,
        "observed": observed,
        "n": n,
    }


def _guard_failures(
    result: Mapping[str, Any], max_error_rate: float, max_p99_ms: float | None
) -> list[str]:
    failures = []
    error_rate = float(result.get("error_rate", 1.0))
    if error_rate > max_error_rate:
        failures.append(f"error rate {error_rate:.3f} > {max_error_rate}")
    p99 = result.get("p99_ms")
    if max_p99_ms is not None and p99 is not None and float(p99) > max_p99_ms:
        failures.append(f"p99 {float(p99):.1f} ms > {max_p99_ms} ms")
    return failures


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
    from chaosmesh_ext import actions, probes

    step_list = [int(s) for s in steps]
    if (
        not step_list
        or any(not 0 < s <= 100 for s in step_list)
        or step_list != sorted(set(step_list))
    ):
        raise ActivityFailed(
            f"VirtualService {ns}/{virtual_service}: steps must be increasing percentages "
            f"in (0, 100], got {list(steps)!r}"
        )
    if not 0 <= max_error_rate <= 1:
        raise ActivityFailed(f"max_error_rate must be within [0, 1], got {max_error_rate!r}")
    if interval < 0:
        raise ActivityFailed(f"interval must be >= 0 seconds, got {interval!r}")

    def _back_to_stable() -> None:
        actions.shift_traffic(
            virtual_service,
            {stable: 100, canary: 0},
            route=route,
            ns=ns,
            configuration=configuration,
            secrets=secrets,
        )

    history: list[dict[str, Any]] = []
    max_weight = 0
    for step in step_list:
        actions.shift_traffic(
            virtual_service,
            {stable: 100 - step, canary: step},
            route=route,
            ns=ns,
            configuration=configuration,
            secrets=secrets,
        )
        max_weight = step
        try:
            time.sleep(interval)
            result = probes.fortio_load(
                url,
                c=c,
                n=n,
                headers=headers,
                via=via,
                ns=fortio_ns or ns,
                configuration=configuration,
                secrets=secrets,
            )
        except BaseException as exc:
            # A guard that cannot measure has not passed: the canary must not keep its share
            # (not even on SIGTERM) while the error travels up.
            logger.warning(
                f"progressive_rollout {ns}/{virtual_service}: guard at {step}% could not run "
                f"({exc}); all traffic back to {stable}"
            )
            _back_to_stable()
            raise
        failures = _guard_failures(result, max_error_rate, max_p99_ms)
        history.append(
            {
                "canary_weight": step,
                "error_rate": result.get("error_rate"),
                "p99_ms": result.get("p99_ms"),
                "codes": result.get("codes"),
                "passed": not failures,
                "failures": failures,
            }
        )
        if failures:
            logger.warning(
                f"progressive_rollout {ns}/{virtual_service}: guard failed at {step}% "
                f"({'; '.join(failures)}); all traffic back to {stable}"
            )
            _back_to_stable()
            return {
                "promoted": False,
                "halted_at": step,
                "max_canary_weight": max_weight,
                "rolled_back_to": stable,
                "steps": history,
            }
        logger.info(f"progressive_rollout {ns}/{virtual_service}: {step}% to {canary} passed")
    return {
        "promoted": max_weight == 100,
        "halted_at": None,
        "max_canary_weight": max_weight,
        "rolled_back_to": None,
        "steps": history,
    }
