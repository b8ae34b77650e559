"""How ``MeshClient`` reaches the daemon: the module it runs, and the daemon's own endpoints
on the API server (not Kubernetes paths).

- ``python -m chaosmesh_ext.mesh.daemon`` (``DAEMON_MODULE``; ``mesh down`` recognises a
  daemon that is still starting by it);
- ``POST /chaosmesh/v1/manifests`` ``{namespace, manifests: [{obj, file, document, line}]}``:
  what ``mesh up -f`` does on a running mesh. Services and Deployments start or restart
  workloads, Istio kinds go through the store, all in one Envoy push; 422 ``{error}`` and
  nothing changes on bad input or when Envoy refuses, 507 ``{error}`` when the state
  directory's disk is full; a malformed body is 400 ``{error}``.
  Answers ``{notes, ...mesh.json}``.
- ``GET /chaosmesh/v1/status``: the ``mesh status`` report.
- ``POST /chaosmesh/v1/shutdown``: stop the mesh (the daemon's SIGTERM path).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import manifests, views
from .api import ApiError
from .manifests import ManifestError
from .xds_files import disk_full

if TYPE_CHECKING:
    from .lifecycle import Mesh

DAEMON_MODULE = "chaosmesh_ext.mesh.daemon"
MANIFESTS_PATH = "/chaosmesh/v1/manifests"
STATUS_PATH = "/chaosmesh/v1/status"
SHUTDOWN_PATH = "/chaosmesh/v1/shutdown"

Handler = Callable[[str, dict[str, list[str]], bytes], tuple[int, Any]]


def handlers(mesh: Mesh) -> dict[str, Handler]:
    """The daemon endpoints of ``mesh``, by path, for ``ApiServer(extra=...)``."""

    def post_manifests(method: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        if method != "POST":
            return 405, {"error": "POST a list of objects"}
        try:
            request = json.loads(body or b"{}")
            ns = request.get("namespace") or mesh.namespace
            items = [
                manifests.Manifest(o["obj"], o["file"], o["document"], o["line"])
                for o in request.get("manifests", [])
            ]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return 400, {
                "error": "the body must be JSON {namespace, manifests: [{obj, file, document, "
                f"line}}]}}: {type(exc).__name__}: {exc}"
            }
        try:
            loaded = manifests.classify(items, ns)
            known = {views.fqdn(s) for s in mesh.applier.services.values()}
            manifests.check(loaded, ns, known)
            mesh.applier.apply(
                [manifests.with_namespace(m.obj, ns) for m in loaded.services],
                [manifests.with_namespace(m.obj, ns) for m in loaded.deployments],
                [manifests.with_namespace(m.obj, ns) for m in loaded.istio],
                [manifests.with_namespace(m.obj, ns) for m in loaded.secrets],
            )  # publishes the read-only kinds itself
            mesh.write_state(ready=True)
        except ManifestError as exc:
            return 422, {"error": str(exc)}
        except ApiError as exc:  # 507 from the apply transaction: a full disk
            return exc.code, {"error": exc.message}
        except OSError as exc:
            if disk_full(exc):
                return 507, {"error": mesh.applier.disk_full_message(exc)}
            return 422, {"error": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:
            return 422, {"error": f"{type(exc).__name__}: {exc}"}
        return 200, {"notes": loaded.notes, **(mesh.state.read() or {})}

    def get_status(method: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        return 200, mesh.status()

    def post_shutdown(method: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        if method != "POST":
            return 405, {"error": "POST to shut the mesh down"}
        threading.Timer(0.05, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
        return 202, {"stopping": os.getpid()}

    return {MANIFESTS_PATH: post_manifests, STATUS_PATH: get_status, SHUTDOWN_PATH: post_shutdown}
