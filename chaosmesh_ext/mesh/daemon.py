"""The embedded mesh's daemon process: ``python -m chaosmesh_ext.mesh.daemon``.

What ``MeshClient.up`` starts in the background (``mesh up``), or runs in the terminal with
``mesh up --foreground``. This module is the process and its signals only:

1. takes the state directory's lock (one daemon per directory; the kernel drops it with the
   process), loads and checks the manifests (nothing starts on bad input);
2. brings the mesh up (``lifecycle.Mesh.up``): workloads, Envoy, the API server, kubeconfig,
   ``mesh.json`` with ``ready: true`` last — ``MeshClient`` waits for that;
3. serves until SIGTERM/SIGINT or ``POST /chaosmesh/v1/shutdown``, then stops everything it
   started, by pid, and removes ``mesh.json``, its pid file and lock.

A signal while the mesh is still starting gives up waiting for workloads and stops what was
started. Every later Istio write arrives through the API's store, whose apply hook is
``apply.Applier.push``: translate, push to Envoy, answer only once Envoy serves it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from . import manifests
from .daemon_api import DAEMON_MODULE
from .lifecycle import Mesh
from .linux import UnsupportedPlatform, require_linux
from .logs import DEFAULT_LOG_CAP, parse_size
from .paths import DEFAULT_STATE_DIR
from .state import AlreadyRunning, StateDir, acquire_lock
from .views import describe


def run(args: argparse.Namespace) -> int:
    state = StateDir(Path(args.state_dir))
    try:
        lock = acquire_lock(state)
    except AlreadyRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    mesh: Mesh | None = None
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()
        if mesh is not None:
            # Still starting: give up waiting for workloads, then stop what was started.
            mesh.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        try:
            loaded = manifests.classify(manifests.load(args.file or []), args.namespace)
            manifests.check(loaded, args.namespace)
            for note in loaded.notes:
                print(f"note: {note}", flush=True)
            mesh = Mesh(state, args.namespace, args.concurrency, args.prometheus, args.log_cap)
            if stop.is_set():  # signalled while the manifests were read
                mesh.stopping.set()
            mesh.up(loaded)
        except Exception as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        print(describe(state.read() or {}), flush=True)
        while not stop.wait(0.5):
            pass
        return 0
    finally:
        if mesh is not None:
            mesh.stop()
        state.clear()
        lock.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m {DAEMON_MODULE}")
    p.add_argument("-f", "--file", action="append", default=[])
    p.add_argument("--namespace", default="default")
    p.add_argument("--state-dir", default=DEFAULT_STATE_DIR)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--prometheus", action="store_true")
    p.add_argument("--log-cap", type=parse_size, default=DEFAULT_LOG_CAP)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        require_linux()
    except UnsupportedPlatform as exc:
        print(f"chaosmesh mesh: {exc}", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
