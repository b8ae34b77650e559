"""File-based xDS: where Envoy finds its listeners, clusters and route configurations.

Layout under the xDS root: ``cds/cds.json``, ``lds/lds.json`` and ``rds/<name>/route.json``
(one directory per route configuration, so renaming one file reloads only that one). Every
write goes to a temp file in the same directory and is renamed over the live one: Envoy's
``watched_directory`` reacts to the rename, and in-place writes would be ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

JSON = dict[str, Any]


def config_source(path: Path) -> JSON:
    """A ``path_config_source`` that reloads when a file is renamed into its directory."""
    return {
        "resource_api_version": "V3",
        "path_config_source": {"path": str(path), "watched_directory": {"path": str(path.parent)}},
    }


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` by rename, so a reader sees the old or the new file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _document(version: str, resources: list[JSON]) -> str:
    return json.dumps({"version_info": version, "resources": resources}, sort_keys=True)


class XdsFiles:
    """The xDS directory tree of one Envoy."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.cds_path = self.root / "cds" / "cds.json"
        self.lds_path = self.root / "lds" / "lds.json"
        self.rds_root = self.root / "rds"

    def rds_path(self, name: str) -> Path:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"route configuration name {name!r} cannot name a file")
        return self.rds_root / name / "route.json"

    def bind_rds(self, listener: JSON) -> JSON:
        """A copy of ``listener`` whose HCM fetches its route config from our RDS file."""
        out = json.loads(json.dumps(listener))
        for chain in out.get("filter_chains") or []:
            for flt in chain.get("filters") or []:
                rds = (flt.get("typed_config") or {}).get("rds")
                if rds is not None:
                    rds["config_source"] = config_source(self.rds_path(rds["route_config_name"]))
        return out

    def write_cds(self, clusters: list[JSON], version: str) -> None:
        atomic_write(self.cds_path, _document(version, clusters))

    def write_lds(self, listeners: list[JSON], version: str) -> None:
        atomic_write(self.lds_path, _document(version, [self.bind_rds(x) for x in listeners]))

    def write_rds(self, route: JSON, version: str) -> None:
        atomic_write(self.rds_path(route["name"]), _document(version, [route]))

    def remove_rds(self, name: str) -> None:
        """Drop a route configuration's file but keep its directory.

        Envoy watches the directory with inotify and never re-adds the watch: a removed
        listener keeps draining (and keeps its RDS subscription) for ``--drain-time-s``, and
        a listener re-added with the same route name meanwhile shares that subscription. If
        the directory were deleted, the shared subscription would never see the new file.
        """
        with contextlib.suppress(FileNotFoundError):
            self.rds_path(name).unlink()

    def route_names(self) -> list[str]:
        if not self.rds_root.is_dir():
            return []
        return sorted(p.name for p in self.rds_root.iterdir() if (p / "route.json").is_file())
