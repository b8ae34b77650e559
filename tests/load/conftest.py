"""Fixtures for the load layer's tests: real local HTTP targets, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.load_target import Behaviour, Target, ok


@pytest.fixture
def make_target() -> Iterator[Callable[..., Target]]:
    started: list[Target] = []

    def make(behaviour: Behaviour = ok, **kw: float) -> Target:
        target = Target(behaviour, **kw).start()
        started.append(target)
        return target

    try:
        yield make
    finally:
        for target in started:
            target.stop()


@pytest.fixture
def target(make_target: Callable[..., Target]) -> Target:
    return make_target()
