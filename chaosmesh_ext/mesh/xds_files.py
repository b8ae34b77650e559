"""File-based xDS: where Envoy finds its listeners, clusters and route configurations.

Layout under the xDS root: ``cds/cds.json``, ``lds/lds.json`` and ``rds/<name>/route.json``
(one directory per route configuration, so renaming one file reloads only that one). Every
write goes to a temp file in the same directory and is renamed over the live one: Envoy's
``watched_directory`` reacts to the rename, and in-place writes would be ignored.

A change that spans several files is staged first (``Staged``): every temp file is written
before any is renamed, so a full disk fails it before Envoy sees anything, and the renames
that follow need no space. No fsync: these files live only as long as the Envoy reading
them (a mesh does not survive a reboot); what must survive a crash (the change ledger) is
written elsewhere, with fsync.
"""

from __future__ import annotations

import contextlib
import errno
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
    """Write ``text`` to ``path`` by rename, so a reader sees the old or the new file whole.

    On a full disk (``OSError`` ENOSPC) the old file is left as it was.
    """
    staged = Staged()
    try:
        staged.add("file", path, text)
        staged.commit("file")
    finally:
        staged.discard()


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write refused for want of space (or of quota)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class Staged:
    """Files written in advance next to their targets; ``commit(key)`` renames one in place.

    ``add`` raises ``OSError`` (a full disk) with nothing visible changed; ``discard`` removes
    whatever was not committed (and directories ``add`` created for it).
    """

    def __init__(self) -> None:
        self._pending: dict[str, tuple[Path, Path]] = {}  # key -> (temp file, target)
        self._made_dirs: list[Path] = []

    def add(self, key: str, path: Path, text: str) -> None:
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True)
            self._made_dirs.append(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        self._pending[key] = (Path(tmp), path)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)

    def has(self, key: str) -> bool:
        return key in self._pending

    def commit(self, key: str) -> None:
        tmp, path = self._pending.pop(key)
        os.replace(tmp, path)
        with contextlib.suppress(ValueError):
            self._made_dirs.remove(path.parent)  # holds a live file now

    def discard(self) -> None:
        for tmp, _ in self._pending.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._pending.clear()
        for directory in reversed(self._made_dirs):
            with contextlib.suppress(OSError):
                directory.rmdir()
        self._made_dirs.clear()


def _document(version: str, resources: list[JSON]) -> str:
    return json.dumps({"version_info": version, "resources": resources}, sort_keys=True)


class _Texts:
    """The JSON text of the objects in the last document of one file, by identity.

    The translator hands back the very same objects for what a change left alone (its memo),
    so a thousand unchanged clusters or virtual hosts are not serialised again. Each object is
    held with its text, so no other object can take its identity while it is remembered; only
    the last document's objects are.
    """

    def __init__(self) -> None:
        self._last: dict[int, tuple[object, str]] = {}
        self._now: dict[int, tuple[object, str]] = {}

    def text(self, obj: JSON) -> str:
        found = self._last.get(id(obj))
        if found is None or found[0] is not obj:
            found = (obj, json.dumps(obj, sort_keys=True))
        self._now[id(obj)] = found
        return found[1]

    def done(self) -> None:
        self._last, self._now = self._now, {}


def _joined(version: str, texts: list[str]) -> str:
    """``_document`` from the resources' texts: the same bytes (keys sorted: "resources"
    before "version_info", json.dumps' default separators)."""
    return f'{{"resources": [{", ".join(texts)}], "version_info": {json.dumps(version)}}}'


def _route_text(route: JSON, hosts: _Texts) -> str:
    """``json.dumps(route, sort_keys=True)``, each virtual host's text reused while it is the
    same object ("virtual_hosts" sorts after every other key of a route configuration)."""
    vhosts = route.get("virtual_hosts")
    if not isinstance(vhosts, list) or max(route) != "virtual_hosts":
        return json.dumps(route, sort_keys=True)
    head = json.dumps({k: v for k, v in route.items() if k != "virtual_hosts"}, sort_keys=True)
    listed = f'"virtual_hosts": [{", ".join(hosts.text(h) for h in vhosts)}]}}'
    return f"{head[:-1]}, {listed}" if len(route) > 1 else f"{{{listed}"


class XdsFiles:
    """The xDS directory tree of one Envoy."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.cds_path = self.root / "cds" / "cds.json"
        self.lds_path = self.root / "lds" / "lds.json"
        self.rds_root = self.root / "rds"
        self._clusters = _Texts()
        self._vhosts: dict[str, _Texts] = {}  # by route configuration name

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

    def cds_document(self, clusters: list[JSON], version: str) -> str:
        texts = [self._clusters.text(c) for c in clusters]
        self._clusters.done()
        return _joined(version, texts)

    def lds_document(self, listeners: list[JSON], version: str) -> str:
        return _document(version, [self.bind_rds(x) for x in listeners])

    def rds_document(self, route: JSON, version: str) -> str:
        hosts = self._vhosts.setdefault(str(route.get("name")), _Texts())
        text = _route_text(route, hosts)
        hosts.done()
        return _joined(version, [text])

    def write_cds(self, clusters: list[JSON], version: str) -> None:
        atomic_write(self.cds_path, self.cds_document(clusters, version))

    def write_lds(self, listeners: list[JSON], version: str) -> None:
        atomic_write(self.lds_path, self.lds_document(listeners, version))

    def write_rds(self, route: JSON, version: str) -> None:
        atomic_write(self.rds_path(route["name"]), self.rds_document(route, version))

    def remove_rds(self, name: str) -> None:
        """Drop a route configuration's file but keep its directory.

        Envoy watches the directory with inotify and never re-adds the watch: a removed
        listener keeps draining (and keeps its RDS subscription) for ``--drain-time-s``, and
        a listener re-added with the same route name meanwhile shares that subscription. If
        the directory were deleted, the shared subscription would never see the new file.
        """
        self._vhosts.pop(name, None)
        with contextlib.suppress(FileNotFoundError):
            self.rds_path(name).unlink()

    def route_names(self) -> list[str]:
        if not self.rds_root.is_dir():
            return []
        return sorted(p.name for p in self.rds_root.iterdir() if (p / "route.json").is_file())
