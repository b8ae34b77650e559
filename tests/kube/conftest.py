"""Fixtures for the kube layer's tests (defined in tests/support/kubefix.py, shared with
tests/control)."""

from tests.support.kubefix import emulator_options, kapi, seeded

__all__ = ["emulator_options", "kapi", "seeded"]
