"""Build a Kubernetes API client the way chaostoolkit-kubernetes users already configure one.

Order (chaosk8s): a kubeconfig file (the ``kubeconfig_path`` configuration key, else
``KUBECONFIG``, else ``~/.kube/config``; context from ``KUBERNETES_CONTEXT`` in secrets or the
environment) -> the pod's service account when ``CHAOSTOOLKIT_IN_POD=true`` -> explicit
``KUBERNETES_HOST`` / ``KUBERNETES_API_KEY`` (+ ``_PREFIX``) / ``KUBERNETES_CERT_FILE`` /
``KUBERNETES_KEY_FILE`` / ``KUBERNETES_CA_CERT_FILE`` / ``KUBERNETES_VERIFY_SSL`` settings, each
read from secrets first, then the environment.

:func:`client_settings` is pure (it decides, from mappings) and :func:`api_client` does the
loading. Credentials stay inside the client object: nothing here returns them, so they never
reach a journal.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from chaosmesh_ext._fingerprint import file_fingerprint
from chaosmesh_ext._parse import parse_bool
from chaosmesh_ext.errors import KubeError

DEFAULT_KUBECONFIG = "~/.kube/config"
# Set by the safety-net control when the experiment's target (the embedded mesh) could not be
# prepared: no client may then fall back to KUBECONFIG / ~/.kube/config (maybe production).
TARGET_ERROR_KEY = "chaosmesh_target_error"


class KubeSettingsError(KubeError, ValueError):
    """No usable Kubernetes configuration, or a setting that cannot be used."""


@dataclass(frozen=True)
class ClientSettings:
    """Where the client's configuration comes from; secrets are kept out of ``repr``."""

    mode: str  # "kubeconfig" | "incluster" | "env"
    kubeconfig: str | None = None
    context: str | None = None
    host: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_prefix: str = "Bearer"
    cert_file: str | None = None
    key_file: str | None = None
    ca_cert_file: str | None = None
    verify_ssl: bool = True


def _existing_kubeconfig(spec: str) -> str | None:
    # KUBECONFIG may list several files (':'-separated); the loader merges those that exist.
    paths = [p for p in spec.split(os.pathsep) if p]
    existing = [p for p in paths if Path(p).expanduser().is_file()]
    return os.pathsep.join(existing) if existing else None


def client_settings(
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientSettings:
    """Decide how to reach the cluster from the configuration, secrets and environment."""
    configuration = configuration or {}
    secrets = secrets or {}
    env = os.environ if environ is None else environ

    def lookup(key: str) -> Any:
        value = secrets.get(key)
        return value if value not in (None, "") else env.get(key)

    target_error = configuration.get(TARGET_ERROR_KEY)
    if target_error:
        raise KubeSettingsError(
            f"configuration.{TARGET_ERROR_KEY}: the experiment's target could not be prepared "
            f"({target_error}); refusing to use KUBECONFIG or ~/.kube/config instead"
        )
    context = lookup("KUBERNETES_CONTEXT") or configuration.get("kubernetes_context") or None
    explicit = configuration.get("kubeconfig_path")
    if explicit:
        path = Path(str(explicit)).expanduser()
        if not path.is_file():
            raise KubeSettingsError(f"configuration.kubeconfig_path: no such file {str(path)!r}")
        return ClientSettings(mode="kubeconfig", kubeconfig=str(path), context=context)
    kubeconfig = _existing_kubeconfig(
        env.get("KUBECONFIG") or str(Path(DEFAULT_KUBECONFIG).expanduser())
    )
    if kubeconfig:
        return ClientSettings(mode="kubeconfig", kubeconfig=kubeconfig, context=context)
    if str(lookup("CHAOSTOOLKIT_IN_POD") or "").strip().lower() == "true":
        return ClientSettings(mode="incluster")
    host = lookup("KUBERNETES_HOST")
    if not host:
        raise KubeSettingsError(
            "no Kubernetes configuration found: set KUBECONFIG (or configuration.kubeconfig_path), "
            "create ~/.kube/config, set CHAOSTOOLKIT_IN_POD=true inside a pod, "
            "or set KUBERNETES_HOST"
        )
    return ClientSettings(
        mode="env",
        host=str(host),
        api_key=lookup("KUBERNETES_API_KEY") or None,
        api_key_prefix=lookup("KUBERNETES_API_KEY_PREFIX") or "Bearer",
        cert_file=lookup("KUBERNETES_CERT_FILE") or None,
        key_file=lookup("KUBERNETES_KEY_FILE") or None,
        ca_cert_file=lookup("KUBERNETES_CA_CERT_FILE") or None,
        verify_ssl=parse_bool(lookup("KUBERNETES_VERIFY_SSL"), default=True),
    )


def client_configuration(settings: ClientSettings) -> k8s.Configuration:
    """A fresh ``Configuration`` for these settings (never the process-wide default)."""
    cfg = k8s.Configuration()
    if settings.mode == "kubeconfig":
        try:
            k8s_config.load_kube_config(
                config_file=settings.kubeconfig,
                context=settings.context,
                client_configuration=cfg,
                persist_config=False,
            )
        except k8s_config.ConfigException as exc:
            where = f"context {settings.context!r} in " if settings.context else ""
            raise KubeSettingsError(f"kubeconfig {where}{settings.kubeconfig}: {exc}") from exc
    elif settings.mode == "incluster":
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)
        except k8s_config.ConfigException as exc:
            raise KubeSettingsError(
                f"CHAOSTOOLKIT_IN_POD=true but no service account: {exc}"
            ) from exc
    else:
        cfg.host = settings.host or ""
        if settings.api_key:
            cfg.api_key["authorization"] = settings.api_key
            cfg.api_key_prefix["authorization"] = settings.api_key_prefix
        cfg.cert_file = settings.cert_file
        cfg.key_file = settings.key_file
        # The CA verifies the server; the client cert above identifies us (chaosistio mixes them).
        cfg.ssl_ca_cert = settings.ca_cert_file
        cfg.verify_ssl = settings.verify_ssl
    # urllib3 would silently resend a timed-out request three times: a 2 s timeout would then
    # take 8 s, and a PUT whose first copy landed would come back as our own 409. We retry
    # ourselves, on fresh state, where it is safe.
    cfg.retries = 0
    return cfg


def api_client(
    configuration: Mapping[str, Any] | None = None, secrets: Mapping[str, Any] | None = None
) -> k8s.ApiClient:
    """A ``kubernetes.client.ApiClient`` for the experiment's cluster (see the module doc)."""
    return k8s.ApiClient(
        configuration=client_configuration(client_settings(configuration, secrets))
    )


def api_identity(
    client: k8s.ApiClient, configuration: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Which API server ``client`` talks to, for the change ledger: its ``host``, the
    ``kubeconfig`` file when the experiment named one (``kubeconfig_path``), so a later
    ``chaosmesh restore`` from another environment can find the same server again, and the
    fingerprint of the CA it trusts (``ca_sha256``): an embedded mesh makes a new one at every
    start, so it tells changes made on a mesh that has since stopped."""
    identity = {"host": str(client.configuration.host or "")}
    explicit = (configuration or {}).get("kubeconfig_path")
    if explicit:
        identity["kubeconfig"] = str(Path(str(explicit)).expanduser().resolve())
    fingerprint = file_fingerprint(client.configuration.ssl_ca_cert)
    if fingerprint:
        identity["ca_sha256"] = fingerprint
    return identity


def same_host(a: str | None, b: str | None) -> bool:
    """Whether two API server URLs name the same server (case and trailing '/' aside)."""
    return (a or "").rstrip("/").lower() == (b or "").rstrip("/").lower()
