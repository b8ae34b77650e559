"""Fixtures for the kube layer's tests (defined in kubefix.py, shared with tests/e2e)."""

from kubefix import emulator_options, kapi, seeded

__all__ = ["emulator_options", "kapi", "seeded"]
