"""The Kubernetes API emulator for the rollout's argument checks (tests/support/kubefix.py)."""

from tests.support.kubefix import emulator_options, kapi

__all__ = ["emulator_options", "kapi"]
