"""Run the benchmarks: ``python -m benchmarks [NAME ...]`` (``make bench`` runs them all).

Each ``benchmarks/bench_<name>.py`` exposes ``main()``, prints its own table (our figure beside
a reference such as hey, wrk or a plain server, measured in the same run) and returns 0 when
its targets are met. Benchmarks never run in the test suite: the machines are shared.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
from pathlib import Path


def _machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.node()} · {os.cpu_count()} cores · {cpu} · Python {platform.python_version()}"
    )


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    known = sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))
    if any(arg in ("-h", "--help") for arg in argv):
        print(f"usage: python -m benchmarks [NAME ...]\nbenchmarks: {', '.join(known)}")
        return 0
    unknown = [name for name in argv if name not in known]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(known)}")
        return 2
    names = argv or known
    print(f"machine: {_machine()}")
    failed: list[str] = []
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        try:
            code = module.main()
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            print(f"{name}: crashed: {exc!r}")
            code = 1
        print(f"({name}: {time.monotonic() - started:.1f} s)", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\ntargets missed or benchmarks failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
