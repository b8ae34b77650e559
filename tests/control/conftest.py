"""Fixtures for end-to-end ``chaos run`` tests against the Kubernetes API emulator
(tests/support/kapi.py), shared with the kube layer's tests."""

from tests.support.kubefix import emulator_options, kapi, seeded

__all__ = ["emulator_options", "kapi", "seeded"]
