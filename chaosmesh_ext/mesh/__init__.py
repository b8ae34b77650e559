"""The embedded mesh: the user's Istio YAML enforced by a real Envoy on one machine.

Parts, one role each: ``api`` (the Kubernetes-style API server and its store), ``translate``
(istiod's mapping, pure), ``envoy`` (the supervised data plane), ``workloads`` (local
stand-ins for pods), ``manifests`` (loading ``-f`` files), ``daemon`` (running it all),
``state`` (``mesh.json``, lock, pids) and ``kubeconfig``. Users drive it with
``chaosmesh mesh up/down/status/url``; experiments reach it through the kubeconfig it writes.
"""

from .state import DEFAULT_STATE_DIR, StateDir

__all__ = ["DEFAULT_STATE_DIR", "StateDir"]
