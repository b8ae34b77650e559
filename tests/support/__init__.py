"""Shared test parts: emulators (``kapi``, ``kube_exec``), local servers (``load_target``,
``upstream``), fixtures (``kubefix``, ``prometheus_fixtures``; a folder's conftest.py imports the
ones it uses) and builders of test inputs (``mesh_seed``, ``metrics_helpers``, ``gameday_plans``,
``ctk_helpers``, ``cli``)."""
