"""Shared test settings: every test session gets its own ledger and mesh state directories.

Layer fixtures live in each layer's own ``conftest.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _isolated_state(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep ledgers and mesh state out of the user's home and working tree."""
    base = tmp_path_factory.mktemp("chaosmesh-home")
    os.environ.setdefault("CHAOSMESH_LEDGER_DIR", str(base / "ledger"))
    os.environ.setdefault("CHAOSMESH_STATE_DIR", str(base / "mesh"))
    # Commands that find a cluster by themselves (chaosmesh lint) must never reach the
    # developer's: a test that wants one passes its own kubeconfig.
    os.environ.pop("KUBECONFIG", None)


# Scopes whose fixtures are worth keeping on one worker under pytest-xdist (`make test` runs
# with `-n` and `--dist loadgroup`): a module's or package's embedded mesh, Prometheus...
_SHARED_SCOPES = ("package", "module", "class")


def _shared_fixture_group(item: pytest.Item) -> str | None:
    """The widest module, package or class whose fixture ``item`` uses, as an xdist group name:
    its tests then run on one worker, so that fixture is set up once, not once per worker."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    widest: tuple[int, str] | None = None
    for definitions in info.name2fixturedefs.values():
        fixture = definitions[-1]
        if fixture.scope not in _SHARED_SCOPES:
            continue
        rank = _SHARED_SCOPES.index(fixture.scope)
        if fixture.scope == "package":
            where = fixture.baseid or "tests"  # the folder of the conftest.py defining it
        elif fixture.scope == "module":
            where = item.nodeid.split("::", 1)[0]
        else:
            where = item.nodeid.rsplit("::", 1)[0]
        if widest is None or rank < widest[0]:
            widest = (rank, where)
    return widest[1] if widest else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist: tests sharing a module- or package-scoped fixture form one group,
    and the tests marked ``slow`` are handed out first, so that the longest ones do not start
    last and hold up the end of the run."""
    if not hasattr(config, "workerinput"):
        return  # not an xdist worker: the usual order, nothing to group
    for item in items:
        group = None if item.get_closest_marker("xdist_group") else _shared_fixture_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable
