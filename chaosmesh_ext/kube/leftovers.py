"""Changes other runs left behind on one API server, found before a run starts there.

A run killed mid-method (kill -9, a crash) leaves its fault in place and its ledger entries
outstanding; the next run on the same server must not start on top of it (its verdict
would be computed on someone else's fault) nor silently "resolve" it by re-applying
manifests. ``left_on(server)`` finds, in the ledger directory, the outstanding entries
recorded through ``server.kubeconfig`` by runs whose process no longer runs — a live run's
changes are its own — and tells apart those made on the server running now
(``restorable``) from those made on an earlier one that is gone (``moot``: an embedded mesh
that was restarted since, recognised by its CA fingerprint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmesh_ext.kube.ledger import Ledger, all_ledgers

__all__ = ["Leftover", "Server", "left_on"]


@dataclass(frozen=True)
class Server:
    """An API server as ledger entries record it (``api.kubeconfig``, ``api.ca_sha256``)."""

    kubeconfig: Path
    ca_sha256: str | None


@dataclass
class Leftover:
    """One finished run's outstanding entries on the server."""

    ledger: Ledger
    restorable: list[dict[str, Any]] = field(default_factory=list)
    moot: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.ledger.run_id


def _through(entry: dict[str, Any], kubeconfig: Path) -> bool:
    recorded = (entry.get("api") or {}).get("kubeconfig")
    return bool(recorded) and Path(str(recorded)).resolve() == kubeconfig.resolve()


def left_on(
    server: Server, *, exclude_run: str | None = None, directory: str | None = None
) -> list[Leftover]:
    """Outstanding entries on ``server`` of runs that are no longer running, oldest run first."""
    found = []
    for ledger in all_ledgers(directory):
        if ledger.run_id == exclude_run:
            continue
        entries = [e for e in ledger.outstanding() if _through(e, server.kubeconfig)]
        if not entries or ledger.running() is not False:
            continue
        leftover = Leftover(ledger)
        for entry in entries:
            recorded = (entry.get("api") or {}).get("ca_sha256")
            if recorded and server.ca_sha256 and recorded != server.ca_sha256:
                leftover.moot.append(entry)
            else:
                leftover.restorable.append(entry)
        found.append(leftover)
    return found
