"""Every activity takes ``configuration`` and ``secrets`` — as ``chaos discover`` lists them.

chaoslib passes the experiment's configuration (the Kubernetes settings the control put there,
such as ``kubeconfig_path``) only to a parameter named ``configuration``; an activity without
one falls back to ``KUBECONFIG`` and fails on the embedded mesh.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import chaosmesh_ext

CHAOS = str(Path(sys.executable).with_name("chaos"))


def _missing(activities: list[dict]) -> list[str]:  # type: ignore[type-arg]
    missing = []
    for activity in activities:
        if activity["type"] == "control":
            continue  # chaoslib hands controls what they name; not activities
        names = {a["name"] for a in activity.get("arguments") or []}
        for needed in ("configuration", "secrets"):
            if needed not in names:
                missing.append(f"{activity['mod']}.{activity['name']}: no '{needed}'")
    return missing


def test_every_discovered_activity_takes_configuration_and_secrets() -> None:
    activities = chaosmesh_ext.discover(discover_system=False)["activities"]
    kinds = {a["type"] for a in activities}
    assert {"action", "probe", "tolerance"} <= kinds
    assert len([a for a in activities if a["type"] != "control"]) >= 20
    assert _missing(activities) == []


def test_chaos_discover_lists_the_load_arguments_of_the_convenience_probes(tmp_path: Path) -> None:
    out = tmp_path / "discovery.json"
    done = subprocess.run(
        [CHAOS, "--no-log-file", "discover", "--no-install", "--no-system-info",
         "--discovery-path", str(out), "chaostoolkit-mesh"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    activities = json.loads(out.read_text())["activities"]
    assert _missing(activities) == []
    by_name = {a["name"]: {x["name"] for x in a["arguments"]} for a in activities}
    for probe in ("error_rate", "latency_ms", "response_codes"):
        assert {"url", "c", "n", "qps", "via", "ns"} <= by_name[probe], probe
    assert {"expect"} <= by_name["fortio_load"] and {"expect"} <= by_name["breaker_stats"]
    assert {"min_error_rate", "min_p50_ms", "max_p99_ms"} <= by_name["slo"]
