"""What lint reports: a :class:`Finding` per problem, and how to count them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)


@dataclass(frozen=True)
class Finding:
    """One problem: how bad, where (file, line, object, field) and what."""

    severity: str
    file: str
    kind: str
    namespace: str
    name: str
    field: str
    message: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "") if self.file else "<objects>"
        obj = f"{self.kind} {self.namespace}/{self.name}" if self.kind else ""
        parts = [where, self.severity, obj, self.field, self.message]
        return ": ".join(p for p in parts if p)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == ERROR for f in findings)


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    """``{"error": n, "warning": n, "info": n}``."""
    counts = {s: 0 for s in SEVERITIES}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    return counts


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """By file, line, then severity: the order a reader walks a manifest in."""
    return sorted(findings, key=lambda f: (f.file, f.line or 0, SEVERITIES.index(f.severity)))
