"""The embedded mesh runs on Linux only; say so before starting anything elsewhere.

It reads ``/proc`` (a process's start time, to never stop a recycled pid) and asks the kernel
with ``prctl(PR_SET_PDEATHSIG)`` to stop workloads whose mesh died. The activities themselves
run anywhere: on macOS or Windows, point experiments at a cluster (``MESH_TARGET=kubernetes``)
or run the embedded mesh in a Linux VM or container.
"""

from __future__ import annotations

import sys

from chaosmesh_ext.errors import MeshError


class UnsupportedPlatform(MeshError, RuntimeError):
    """The embedded mesh cannot run on this operating system."""


def require_linux(platform: str | None = None) -> None:
    """Raise :class:`UnsupportedPlatform` unless ``platform`` (default: this one) is Linux."""
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        raise UnsupportedPlatform(
            f"the embedded mesh needs Linux (it uses /proc and prctl), not {platform}: run it in a"
            " Linux VM or container, or point the experiments at a cluster with"
            " MESH_TARGET=kubernetes"
        )
