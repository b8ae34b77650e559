"""What one workload replica is, and the command line that runs it (pure).

The daemon fills a :class:`WorkloadSpec` per pod; :func:`command_line` turns it into the
``python -m chaosmesh_ext.mesh.workloads <kind> ...`` invocation plus its environment, after
checking every annotation the kind needs, so a bad manifest fails before anything starts.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chaosmesh_ext._sidecar import Sidecar

from .capacity import parse_capacity
from .kinds import (
    CAPACITY_ANNOTATION,
    CAPACITY_KINDS,
    COMMAND_ANNOTATION,
    KINDS,
    PROXY_TIMEOUT_ANNOTATION,
    UPSTREAM_ANNOTATION,
)
from .upstream import Upstream, parse_upstream, parse_upstreams

__all__ = [
    "DEFAULT_PROXY_TIMEOUT",
    "FORTIO_MODULE",
    "Upstream",
    "WorkloadSpec",
    "command_line",
    "parse_seconds",
    "parse_upstream",
    "parse_upstreams",
    "split_command",
]

# nginx's proxy_read_timeout default: the proxy waits this long for its upstream.
DEFAULT_PROXY_TIMEOUT = 60.0
FORTIO_MODULE = "chaosmesh_ext.load.rest"
# Kinds that run with ``python -S``: they import only the standard library and this package,
# and site (the venv's .pth files, the editable install's finder) costs ~1.3 MB of RSS in
# each replica. Without site the package is found through PYTHONPATH (PACKAGE_ROOT); a user's
# sitecustomize does not run in them. httpbin needs site-packages, and command/fortio
# replicas start code that may rely on site, so they keep the normal start-up.
LEAN_KINDS = ("echo", "proxy")
# The directory holding the chaosmesh_ext package this launcher comes from.
PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


@dataclass(frozen=True)
class WorkloadSpec:
    """One replica of a Deployment, as the embedded mesh runs it."""

    kind: str
    deployment: str
    namespace: str
    pod: str
    port: int
    log_path: Path
    labels: Mapping[str, str] = field(default_factory=dict)
    version: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    sidecar: Sidecar = field(default_factory=Sidecar)
    # A command replica's program: its container's resolved `env` (container_env).
    env: Mapping[str, str] = field(default_factory=dict)
    # The pod's terminationGracePeriodSeconds: a stopping command program has this long
    # between SIGTERM and SIGKILL (None: the supervisor's own default).
    grace_seconds: float | None = None

    @property
    def name(self) -> str:
        return f"{self.kind} workload {self.namespace}/{self.pod} (Deployment {self.deployment})"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_seconds(text: str, where: str) -> float:
    """``"60s"``, ``"2.5s"``, ``"500ms"``, ``"1m"`` or a bare number of seconds; > 0."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{where}: expected a duration such as '60s' or '500ms', got {text!r}")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{where}: must be greater than 0, got {text!r}")
    return seconds


def split_command(command: str, where: str) -> list[str]:
    """The user's command as an argv list (shell-like quoting, but no shell runs it)."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"{where}: cannot split {command!r}: {exc}") from None
    if not argv:
        raise ValueError(f"{where}: is empty")
    return argv


def _annotation_where(spec: WorkloadSpec, key: str) -> str:
    return f"Deployment {spec.namespace}/{spec.deployment}: annotation {key}"


def _required(spec: WorkloadSpec, key: str) -> str:
    value = spec.annotations.get(key)
    if value is None or not str(value).strip():
        raise ValueError(
            f"Deployment {spec.namespace}/{spec.deployment}: the {spec.kind} workload needs "
            f"the annotation {key}"
        )
    return str(value)


def _capacity_argv(spec: WorkloadSpec) -> list[str]:
    """``--capacity <canonical text>`` when the annotation is set; ValueError when it is bad
    or on a kind whose server is not ours."""
    text = spec.annotations.get(CAPACITY_ANNOTATION)
    if text is None:
        return []
    where = _annotation_where(spec, CAPACITY_ANNOTATION)
    if spec.kind not in CAPACITY_KINDS:
        raise ValueError(
            f"{where}: a {spec.kind} workload cannot be capacity-limited (its server is not"
            f" this mesh's); use one of {', '.join(CAPACITY_KINDS)}"
        )
    return ["--capacity", parse_capacity(text, where).text()]


def command_line(spec: WorkloadSpec) -> tuple[list[str], dict[str, str]]:
    """argv and the extra environment for ``spec``; ``ValueError`` on a bad spec."""
    if spec.kind not in KINDS:
        raise ValueError(
            f"Deployment {spec.namespace}/{spec.deployment}: kind: unknown workload "
            f"{spec.kind!r}, expected one of {', '.join(KINDS)}"
        )
    if not 0 < spec.port < 65536:
        raise ValueError(f"{spec.name}: port: must be in 1..65535, got {spec.port}")
    env = {**spec.sidecar.to_env(), "PYTHONUNBUFFERED": "1"}
    capacity = _capacity_argv(spec)
    if spec.kind == "fortio":
        # The load layer's REST server is the fortio stand-in; it reads the sidecar itself.
        return [sys.executable, "-m", FORTIO_MODULE, "--port", str(spec.port)], env
    python = [sys.executable]
    if spec.kind in LEAN_KINDS:
        python.append("-S")
        env["PYTHONPATH"] = PACKAGE_ROOT
    argv = [
        *python,
        "-m",
        "chaosmesh_ext.mesh.workloads",
        spec.kind,
        "--port",
        str(spec.port),
        "--deployment",
        spec.deployment,
        "--namespace",
        spec.namespace,
        "--pod",
        spec.pod,
    ]
    if spec.version is not None:
        argv += ["--version", spec.version]
    argv += capacity
    if spec.kind == "proxy":
        upstream = _required(spec, UPSTREAM_ANNOTATION)
        parse_upstreams(upstream, _annotation_where(spec, UPSTREAM_ANNOTATION))
        argv += ["--upstream", upstream]
        timeout = spec.annotations.get(PROXY_TIMEOUT_ANNOTATION)
        seconds = (
            DEFAULT_PROXY_TIMEOUT
            if timeout is None
            else parse_seconds(timeout, _annotation_where(spec, PROXY_TIMEOUT_ANNOTATION))
        )
        argv += ["--timeout", repr(seconds)]
    elif spec.kind == "command":
        command = _required(spec, COMMAND_ANNOTATION)
        split_command(command, _annotation_where(spec, COMMAND_ANNOTATION))
        argv += ["--command", command]
        if spec.grace_seconds is not None:
            argv += ["--grace", repr(float(spec.grace_seconds))]
        # What the program's container would see on a cluster (the kubelet's HOSTNAME, the
        # usual downward-API names), then its own env, then what the mesh must decide.
        pod = {"HOSTNAME": spec.pod, "POD_NAME": spec.pod, "POD_NAMESPACE": spec.namespace}
        if spec.version is not None:
            pod["SERVICE_VERSION"] = spec.version
        env = {**pod, **spec.env, **env, "PORT": str(spec.port)}
    return argv, env
