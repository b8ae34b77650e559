"""Where an embedded mesh keeps its files: the state directory's settings and layout.

One place for what every part of the package reads about the state directory:

- which directory: the configuration key ``mesh_state_dir`` (experiments), else the
  environment variable ``CHAOSMESH_STATE_DIR``, else the nearest ``.chaosmesh/`` from the
  working directory up, else ``.chaosmesh`` in the working directory (``state_dir_of``; the
  commands' ``--state-dir`` defaults to the last three, ``default_state_dir``);
- what is in it (``StatePaths``): ``mesh.json`` (the running mesh, keys in docs/CONTRACTS.md),
  the lock and pid files, the ``kubeconfig``, the sidecars' ``outbound.json``, ``daemon.log``,
  workload logs under ``logs/``, Envoy's access logs, xDS files, bootstrap and logs, the API
  server's certificate, and Prometheus' directory and log.

Pure: names and paths only, no I/O beyond reading the environment and looking for
``.chaosmesh/`` directories when asked.
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


def find_state_dir(start: Path | None = None) -> Path | None:
    """The nearest ``.chaosmesh/`` in ``start`` (default: the working directory) or a parent,
    as git finds ``.git/``: a command run from ``experiments/`` finds the project's mesh. The
    per-user ``~/.chaosmesh/`` (where ledgers live by default) counts only when a mesh ran
    there (it holds a ``mesh.json`` or a ``kubeconfig``)."""
    here = (start or Path.cwd()).absolute()
    home = Path.home() / DEFAULT_STATE_DIR
    for directory in (here, *here.parents):
        candidate = directory / DEFAULT_STATE_DIR
        if not candidate.is_dir():
            continue
        if candidate == home and not any(
            (candidate / name).exists() for name in (MESH_JSON, KUBECONFIG)
        ):
            continue
        return candidate
    return None


def default_state_dir() -> str:
    """The state directory when none is given, for every command, ``chaos run``'s control
    and game days alike: ``CHAOSMESH_STATE_DIR``, else the nearest ``.chaosmesh/`` from the
    working directory up (``find_state_dir``), else ``.chaosmesh`` here (a new mesh's)."""
    from_env = os.environ.get(STATE_DIR_ENV)
    if from_env:
        return from_env
    found = find_state_dir()
    if found is None or found == Path.cwd().absolute() / DEFAULT_STATE_DIR:
        return DEFAULT_STATE_DIR  # shown as users type it
    return str(found)


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

    def is_state_dir(self) -> bool:
        """Whether a mesh ever ran here (its daemon's log is there), so a kubeconfig in it is
        an embedded mesh's."""
        return self.daemon_log.is_file()
