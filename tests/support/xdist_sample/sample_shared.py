"""Tests sharing a module-scoped fixture, for tests/test_suite_workers.py (collected only by
the run that test starts: ``-o python_files=sample_*.py``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def expensive() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "none")


@pytest.mark.parametrize("n", range(6))
def test_shared(expensive: str, n: int) -> None:
    time.sleep(0.1)
    record = Path(os.environ["SAMPLE_RECORD"]) / f"shared-{n}"
    record.write_text(os.environ.get("PYTEST_XDIST_WORKER", "none"))
