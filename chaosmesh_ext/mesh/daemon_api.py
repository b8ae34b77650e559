"""How ``MeshClient`` reaches the daemon: the module it runs, and the daemon's own endpoints
on the API server (not Kubernetes paths).

- ``python -m chaosmesh_ext.mesh.daemon`` (``DAEMON_MODULE``; ``mesh down`` recognises a
  daemon that is still starting by it);
- ``POST /chaosmesh/v1/manifests`` ``{namespace, manifests: [{obj, file, document, line}],
  mode}``: what ``mesh up -f`` does on a running mesh. Services and Deployments start or
  restart workloads, Istio kinds go through the store, all in one Envoy push; 422 ``{error}``
  and nothing changes on bad input or when Envoy refuses, 507 ``{error}`` when the state
  directory's disk is full; a malformed body is 400 ``{error}``.
  Answers ``{notes, ...mesh.json}``. ``mode: "join"`` (a run joining the mesh) applies only
  objects the mesh does not have, and answers 409 ``{error, differences}`` — applying nothing
  — when one it has differs (``joining.plan_join``); the default ``"replace"`` applies all;
  ``"reapply"`` applies what is absent and replaces differing Services, Deployments and
  Secrets, leaving the Istio objects the mesh holds as they are.
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

from . import joining, manifests, views
from .api import resources
from .api.status import ApiError
from .manifests import ManifestError
from .xds_files import disk_full

if TYPE_CHECKING:
    from .lifecycle import Mesh

DAEMON_MODULE = "chaosmesh_ext.mesh.daemon"
MANIFESTS_PATH = "/chaosmesh/v1/manifests"
STATUS_PATH = "/chaosmesh/v1/status"
SHUTDOWN_PATH = "/chaosmesh/v1/shutdown"

Handler = Callable[[str, dict[str, list[str]], bytes], tuple[int, Any]]
REPLACE, JOIN, REAPPLY = "replace", "join", "reapply"


def _plan(mesh: Mesh, loaded: manifests.Loaded, ns: str) -> joining.JoinPlan:
    def live(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        rt = resources.by_kind(kind)
        if rt is None:
            return None
        try:
            return mesh.store.get(rt, namespace, name)
        except ApiError:
            return None

    return joining.plan_join(
        loaded,
        ns,
        services=mesh.applier.services,
        deployments=mesh.applier.deployments,
        secrets=mesh.applier.secrets,
        istio=live,
    )


def handlers(mesh: Mesh) -> dict[str, Handler]:
    """The daemon endpoints of ``mesh``, by path, for ``ApiServer(extra=...)``."""

    def post_manifests(method: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        if method != "POST":
            return 405, {"error": "POST a list of objects"}
        try:
            request = json.loads(body or b"{}")
            ns = request.get("namespace") or mesh.namespace
            mode = request.get("mode") or REPLACE
            if mode not in (REPLACE, JOIN, REAPPLY):
                raise ValueError(f"mode must be one of {REPLACE}, {JOIN}, {REAPPLY}; got {mode!r}")
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
            # Checked and applied under the store's write lock: no kubectl write in between.
            with mesh.store.writing():
                if mode == JOIN:
                    plan = _plan(mesh, loaded, ns)
                    if plan.differences:
                        return 409, {
                            "error": "the running mesh holds "
                            + ", ".join(
                                f"{d.kind} {d.namespace}/{d.name}" for d in plan.differences
                            )
                            + " in another form than these manifests; nothing was applied",
                            "differences": [d.to_json() for d in plan.differences],
                        }
                    loaded = plan.absent
                elif mode == REAPPLY:
                    # Istio objects it holds stay as they are (the run wrote the differing
                    # ones through its ledger); differing workloads are replaced.
                    loaded = _plan(mesh, loaded, ns).reapplied()
                mesh.applier.apply(
                    [manifests.with_namespace(m.obj, ns) for m in loaded.services],
                    [manifests.with_namespace(m.obj, ns) for m in loaded.deployments],
                    [manifests.as_applied(m.obj, ns) for m in loaded.istio],
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
