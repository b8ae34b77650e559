"""Whatever shape a manifest has, validate and lint answer with causes — they never crash."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from chaosmesh_ext.istio.errors import IstioError
from chaosmesh_ext.istio.faults import inject_abort, inject_delay
from chaosmesh_ext.istio.lint import lint_objects
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


@pytest.mark.parametrize("mutant", list(_mutants())[::7])
def test_edits_refuse_broken_objects_with_istio_error_only(mutant: dict[str, Any]) -> None:
    if mutant.get("kind") != "VirtualService":
        return
    for edit in (
        lambda: inject_delay(mutant, "1s"),
        lambda: inject_abort(mutant, headers={"x": "1"}),
    ):
        try:
            edit()
        except IstioError:
            pass
