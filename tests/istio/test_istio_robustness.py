"""Whatever shape a manifest has, validate and lint answer with causes — they never crash."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from chaosmesh_ext.istio.breaker import apply_circuit_breaker, remove_circuit_breaker
from chaosmesh_ext.istio.errors import IstioError
from chaosmesh_ext.istio.faults import inject_abort, inject_delay, remove_injected_faults
from chaosmesh_ext.istio.lint import lint_objects
from chaosmesh_ext.istio.traffic import set_retries, set_timeout, shift_traffic
from chaosmesh_ext.istio.validate import validate

from .seed import canary_dr, canary_vs, httpbin_dr, load, retry_tomcat_vs

WRONG: list[Any] = [None, 7, "x", [], {}, [None], True]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield (*path, i)
            yield from _paths(item, (*path, i))


def _mutants() -> Iterator[dict[str, Any]]:
    gateway = load("canary/gateway.yaml", "Gateway", "canary-gateway")
    for obj in (canary_vs(), canary_dr(), httpbin_dr(), retry_tomcat_vs(), gateway):
        for path in _paths(obj):
            if path[0] in ("apiVersion", "kind"):
                continue
            for wrong in WRONG:
                mutant = copy.deepcopy(obj)
                holder = mutant
                for step in path[:-1]:
                    holder = holder[step]
                holder[path[-1]] = wrong
                yield mutant


def test_validate_and_lint_never_crash_on_wrong_shapes() -> None:
    count = 0
    for mutant in _mutants():
        causes = validate(mutant, strict=True)
        assert all(c.field or c.message for c in causes)
        lint_objects([mutant, canary_dr()])
        count += 1
    assert count > 300  # the walk really covered the objects


def _edits(obj: dict[str, Any]) -> list[Callable[[], Any]]:
    if obj.get("kind") == "VirtualService":
        return [
            lambda: inject_delay(obj, "1s"),
            lambda: inject_abort(obj, headers={"x": "1"}, source_labels={"app": "web"}),
            lambda: remove_injected_faults(inject_delay(obj, "1s")),
            lambda: shift_traffic(obj, {"v1": 1}, destination_rules=[canary_dr(), obj]),
            lambda: set_timeout(obj, "1s"),
            lambda: set_retries(obj, 2, "1s", "5xx"),
        ]
    if obj.get("kind") == "DestinationRule":
        return [
            lambda: apply_circuit_breaker(obj, "x", "y", max_connections=1),
            lambda: apply_circuit_breaker(obj, "x", "y", subset="v1", interval="1s"),
            lambda: remove_circuit_breaker(obj),
            lambda: remove_circuit_breaker(obj, subset="v1"),
        ]
    return []


def test_edits_refuse_broken_objects_with_istio_error_only() -> None:
    outcomes = {"changed": 0, "refused": 0}
    for mutant in _mutants():
        for edit in _edits(mutant):
            try:
                result = edit()
            except IstioError as exc:
                assert exc.field or exc.reason
                outcomes["refused"] += 1
            else:
                assert validate(result) == [] or validate(mutant) != []
                outcomes["changed"] += 1
    assert outcomes["changed"] > 100 and outcomes["refused"] > 100
