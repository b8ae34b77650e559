"""Pods and Deployments of the embedded mesh behave as a cluster's do.

- ``runtime``: what the lifecycle needs of one replica (terminate, kill, poll), so replicas
  hosted together in one process can implement it as well as a process of its own;
- ``defaults``: the API server's defaults for Deployments and pod templates (pure);
- ``model``: Pod and Deployment objects from the replicas' state, the scale-down ranking and
  new pod names (pure);
- ``controller``: the ReplicaSet's work on one machine — delete a pod gracefully, replace it
  under a new name, scale, keep Envoy's endpoints to the serving replicas;
- ``logs``: a pod's log as ``kubectl logs`` reads it, from its replica's log file.
"""
