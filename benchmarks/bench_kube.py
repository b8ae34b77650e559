"""Benchmark: what the safety of an action costs (ledger fsync + read-edit-replace), per call.

Against the kube layer's test API emulator on loopback (tests/support/kapi.py), with a real
ledger directory under /tmp, it times:

- ``raw replace``: GET + PUT of the VirtualService through the official client — the floor;
- ``inject_delay``: the action (client build, discovery-free GET, edit, ledger fsync x2, PUT);
- ``restore``: the rollback of one changed object (ledger read, GET, PUT, ledger fsync);
- ``conflict retry``: an action whose first PUT meets another writer (409, re-read, re-apply).

``python -m benchmarks.bench_kube [N]``; prints median and p95 in milliseconds. Target: an
action plus its restore under 100 ms at the median on a 2-core machine (Chaos Toolkit runs
activities one at a time, so this bounds how much an experiment waits for bookkeeping).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGET_MS = 100.0


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def _time(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[0]) if argv else 50
    from chaosmesh_ext import actions
    from chaosmesh_ext.kube import ledger as ledger_module
    from chaosmesh_ext.kube.client import api_client
    from chaosmesh_ext.kube.objects import IstioObjects, ObjectRef
    from tests.support.kapi import RunningEmulator
    from tests.support.kubefix import REVIEWS

    with (
        tempfile.TemporaryDirectory(prefix="bench-kube-") as tmp,
        RunningEmulator(Path(tmp)) as emu,
    ):
        assert emu.api is not None
        emu.api.put_object(dict(REVIEWS))
        os.environ.update(KUBECONFIG=str(emu.kubeconfig), CHAOSMESH_LEDGER_DIR=f"{tmp}/ledger")
        ref = ObjectRef("VirtualService", "default", "reviews")
        client = api_client()
        objects = IstioObjects(client, "v1")

        def raw() -> None:
            objects.replace(ref, objects.get(ref))

        run = iter(range(10**9))

        def action() -> None:
            os.environ["CHAOSMESH_RUN_ID"] = f"bench-{next(run)}"
            actions.inject_delay("reviews", "1s", configuration={"istio_api_version": "v1"})

        def restore() -> None:
            actions.restore(configuration={"istio_api_version": "v1"})

        def conflict() -> None:
            def other(api: Any, verb: str, key: Any) -> None:
                api.edit_object(
                    "virtualservices",
                    "default",
                    "reviews",
                    lambda o: o["metadata"].setdefault("labels", {}).update(x=str(time.time())),
                )

            emu.api.before["update"] = [other]
            action()
            restore()

        results: dict[str, list[float]] = {"raw replace": _time(raw, n)}
        pairs: list[tuple[float, float]] = []
        for _ in range(n):
            a = _time(action, 1)[0]
            r = _time(restore, 1)[0]
            pairs.append((a, r))
        results["inject_delay"] = [a for a, _ in pairs]
        results["restore"] = [r for _, r in pairs]
        results["inject_delay+restore"] = [a + r for a, r in pairs]
        results["conflict retry (+restore)"] = _time(conflict, max(5, n // 5))
        client.close()
        ledger_module.set_run_id(None)

    print(f"bench_kube: n={n}, emulator on loopback, ledger fsync'd under {tempfile.gettempdir()}")
    for name, samples in results.items():
        p50, p95 = _percentiles(samples)
        print(f"  {name:28s} median {p50:7.1f} ms   p95 {p95:7.1f} ms")
    p50 = _percentiles(results["inject_delay+restore"])[0]
    ok = p50 < TARGET_MS
    print(f"  target: action + restore median < {TARGET_MS:.0f} ms: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
