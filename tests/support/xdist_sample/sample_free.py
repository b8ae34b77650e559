"""Tests with no shared fixture, for tests/test_suite_workers.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


@pytest.mark.parametrize("n", range(6))
def test_free(n: int) -> None:
    time.sleep(0.5)  # long enough for every worker to take some
    record = Path(os.environ["SAMPLE_RECORD"]) / f"free-{n}"
    record.write_text(os.environ.get("PYTEST_XDIST_WORKER", "none"))
