"""Fixtures for the load layer's tests: real local HTTP targets, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.load_target import Target, started_targets


@pytest.fixture
def make_target() -> Iterator[Callable[..., Target]]:
    with started_targets() as make:
        yield make


@pytest.fixture
def target(make_target: Callable[..., Target]) -> Target:
    return make_target()
