"""Kubernetes access for chaostoolkit-mesh: the client, Istio custom objects, the change ledger.

- ``client``: build an ``ApiClient`` from kubeconfig / in-cluster / environment settings;
- ``objects``: get/list/create/replace/patch/delete Istio resources with clear errors;
- ``ledger``: the durable record of every change a run makes, written before the change;
- ``changes``: read-edit-replace with optimistic concurrency, recorded in the ledger;
- ``restore``: put back what a run changed, refusing to clobber anyone else's change.

No Chaos Toolkit here: ``chaosmesh_ext.actions`` and ``chaosmesh_ext.control`` are the faces.
"""
