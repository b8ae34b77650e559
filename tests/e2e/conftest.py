"""Fixtures for end-to-end ``chaos run`` tests against the Kubernetes API emulator of tests/kube."""

from __future__ import annotations

import sys
from pathlib import Path

# The emulator and its fixtures live with the kube layer's tests; share them here.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kube"))

from kubefix import emulator_options, kapi, seeded  # type: ignore[import-not-found]

__all__ = ["emulator_options", "kapi", "seeded"]
