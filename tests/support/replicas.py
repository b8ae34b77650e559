"""A replica as the daemon's pure views read it (``readiness.Replica`` has these attributes),
for the tests of Pod, Deployment and ``mesh status`` rendering."""

from __future__ import annotations

from dataclasses import dataclass, field

from chaosmesh_ext.mesh.pods.model import Deletion

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@dataclass(frozen=True)
class FakeReplica:
    pod: str = "reviews-0"
    port: int = 31001
    pid: int = 501
    namespace: str = "shop"
    deployment: str = "reviews"
    kind: str = "echo"
    labels: dict[str, str] = field(default_factory=lambda: {"app": "reviews"})
    exit_code: int | None = None
    restarts: int = 0
    program_running: bool = True
    created_at: float = T0
    serving_since: float | None = T0 + 0.2
    ended_at: float | None = None
    deletion: Deletion | None = None

    @property
    def alive(self) -> bool:
        return self.exit_code is None

    @property
    def ready(self) -> bool:
        return self.alive and self.program_running and self.serving_since is not None
