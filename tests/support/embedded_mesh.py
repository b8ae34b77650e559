"""An embedded mesh for a whole test module: ``chaosmesh mesh up -f`` as a user runs it (a
real daemon, real Envoy), and afterwards ``mesh down`` with a check that no process the mesh
ever listed survives it (pods replaced during the tests included)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmesh_ext.mesh.state import alive
from tests.support.cli import chaosmesh

T = 30


@dataclass
class RunningMesh:
    workdir: Path
    state: dict[str, Any]
    # Every process mesh.json listed while the tests looked (replaced pods' too).
    seen_pids: dict[int, str | None] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.workdir / ".chaosmesh"

    @property
    def kubeconfig(self) -> str:
        return str(self.state["kubeconfig"])

    def refresh(self) -> dict[str, Any]:
        """mesh.json now (and remember its processes for the survivors check)."""
        self.state = json.loads((self.state_dir / "mesh.json").read_text())
        for entry in self.state.get("pids") or []:
            self.seen_pids[int(entry["pid"])] = entry.get("started")
        return self.state

    def service_url(self, name: str) -> str:
        return str(next(s for s in self.state["services"] if s["name"] == name)["url"])

    def envoy_endpoints(self, cluster_part: str) -> set[int]:
        """Ports of the endpoints Envoy balances over in the clusters named with
        ``cluster_part`` (e.g. ``|8000||catalog.``)."""
        url = f"{self.state['admin_url']}/clusters?format=json"
        with urllib.request.urlopen(url, timeout=T) as answer:
            clusters = json.load(answer)["cluster_statuses"]
        return {
            int(host["address"]["socket_address"]["port_value"])
            for cluster in clusters
            if cluster_part in cluster["name"]
            for host in cluster.get("host_statuses") or []
        }


@contextmanager
def running_mesh(workdir: Path, manifests: dict[str, str], *options: str) -> Iterator[RunningMesh]:
    """A mesh in ``workdir/.chaosmesh`` with ``manifests`` (file name -> YAML text)."""
    files: list[str] = []
    for name, text in manifests.items():
        (workdir / name).write_text(text)
        files += ["-f", str(workdir / name)]
    env = {"CHAOSMESH_STATE_DIR": str(workdir / ".chaosmesh"), "HOME": str(workdir)}
    up = chaosmesh("mesh", "up", *files, *options, cwd=workdir, env=env)
    if up.returncode != 0:
        raise AssertionError(f"mesh up failed:\n{up.stderr}\n{up.stdout}")
    mesh = RunningMesh(workdir, {})
    mesh.refresh()
    try:
        yield mesh
    finally:
        mesh.refresh()
        chaosmesh("mesh", "down", cwd=workdir, env=env)
        survivors = [pid for pid, started in mesh.seen_pids.items() if alive(pid, started)]
        assert not survivors, f"processes survived mesh down: {survivors}"
