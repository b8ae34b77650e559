"""Where an embedded mesh keeps its files: the state directory's settings and layout.

One place for what every part of the package reads about the state directory:

- which directory: the configuration key ``mesh_state_dir`` (experiments), else the
  environment variable ``CHAOSMESH_STATE_DIR``, else ``.chaosmesh`` in the working directory
  (``state_dir_of``; the commands' ``--state-dir`` defaults to the last two, ``default_state_dir``);
- what is in it (``StatePaths``): ``mesh.json`` (the running mesh, keys in docs/CONTRACTS.md),
  the lock and pid files, the ``kubeconfig``, the sidecars' ``outbound.json``, ``daemon.log``,
  workload logs under ``logs/``, Envoy's access logs, xDS files, bootstrap and logs, the API
  server's certificate, and Prometheus' directory and log.

Pure: names and paths only, no I/O beyond reading the environment when asked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = ".chaosmesh"
STATE_DIR_ENV = "CHAOSMESH_STATE_DIR"
CONFIG_KEY = "mesh_state_dir"

MESH_JSON = "mesh.json"
LOCK_FILE = "mesh.lock"
PID_FILE = "mesh.pid"
KUBECONFIG = "kubeconfig"
OUTBOUND_JSON = "outbound.json"
DAEMON_LOG = "daemon.log"
WORKLOAD_LOGS = "logs"
ACCESS_LOG = "access.log"
ACCESS_JSONL = "access.jsonl"
XDS_DIR = "xds"
ENVOY_BOOTSTRAP = "envoy-bootstrap.json"
ENVOY_ADMIN_ADDRESS = "envoy-admin-address"
ENVOY_LOG = "envoy.log"
ENVOY_OUT = "envoy.out"
API_CERT = "api.crt"
API_KEY = "api.key"
GATEWAY_FALLBACK_CERT = "gateway-fallback"  # .crt/.key: HTTPS servers whose Secret is missing
PROMETHEUS_DIR = "prometheus"
PROMETHEUS_LOG = "prometheus.log"  # in PROMETHEUS_DIR


def default_state_dir() -> str:
    """The state directory when none is given: ``CHAOSMESH_STATE_DIR``, else ``.chaosmesh``."""
    return os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR


def state_dir_of(configuration: Mapping[str, Any] | None = None) -> Path:
    """An experiment's state directory (absolute): ``mesh_state_dir``, else the default."""
    raw = (configuration or {}).get(CONFIG_KEY)
    return Path(raw or default_state_dir()).resolve()


@dataclass(frozen=True)
class StatePaths:
    """The files of one state directory (``root``); nothing is created or read here."""

    root: Path

    @property
    def mesh_json(self) -> Path:
        return self.root / MESH_JSON

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def pid_path(self) -> Path:
        return self.root / PID_FILE

    @property
    def kubeconfig(self) -> Path:
        return self.root / KUBECONFIG

    @property
    def outbound_file(self) -> Path:
        return self.root / OUTBOUND_JSON

    @property
    def daemon_log(self) -> Path:
        return self.root / DAEMON_LOG

    @property
    def workload_logs(self) -> Path:
        return self.root / WORKLOAD_LOGS

    @property
    def access_log(self) -> Path:
        return self.root / ACCESS_LOG

    @property
    def access_jsonl(self) -> Path:
        return self.root / ACCESS_JSONL

    @property
    def xds(self) -> Path:
        return self.root / XDS_DIR

    @property
    def envoy_bootstrap(self) -> Path:
        return self.root / ENVOY_BOOTSTRAP

    @property
    def envoy_admin_address(self) -> Path:
        return self.root / ENVOY_ADMIN_ADDRESS

    @property
    def envoy_log(self) -> Path:
        return self.root / ENVOY_LOG

    @property
    def envoy_out(self) -> Path:
        return self.root / ENVOY_OUT

    @property
    def api_cert(self) -> Path:
        return self.root / API_CERT

    @property
    def api_key(self) -> Path:
        return self.root / API_KEY

    @property
    def prometheus(self) -> Path:
        return self.root / PROMETHEUS_DIR
