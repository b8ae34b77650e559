"""Kubernetes access for chaostoolkit-mesh: the client, Istio custom objects, the change ledger.

- ``client``: build an ``ApiClient`` from kubeconfig / in-cluster / environment settings;
- ``objects``: get/list/create/replace/patch/delete Istio resources with clear errors;
- ``ledger``: the durable record of every change a run makes, written before the change;
- ``changes``: read-edit-replace with optimistic concurrency, recorded in the ledger;
- ``restore``: put back what a run changed, refusing to clobber anyone else's change;
- ``cluster_lint``: the ``lint_mesh`` probe (re-exported by ``chaosmesh_ext.probes``): lint
  the objects on the cluster as ``chaosmesh lint`` does files.

No Chaos Toolkit here, except ``cluster_lint.lint_mesh`` (a probe, so it raises
``ActivityFailed``): ``chaosmesh_ext.actions`` and ``chaosmesh_ext.control`` are the faces.
"""
