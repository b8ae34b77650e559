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
