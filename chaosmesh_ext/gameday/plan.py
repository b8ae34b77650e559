"""The game-day plan file (YAML): what to run, against what, and what to do when it goes wrong.

```yaml
name: checkout-nightly          # lowercase letters, digits, '-' (also names Kubernetes objects)
experiments: [experiments/*.json, extra/timeout.json]   # paths or globs, relative to the plan
target: embedded                # embedded | kubernetes -> env MESH_TARGET, --var target=...
variables: {namespace: shop}    # -> --var key=value
on_deviation: stop              # stop | continue
time_limit: 5m                  # per experiment: seconds or 30s / 5m / 1h
journals: journals/checkout     # default journals/<name>/ (a <timestamp>/ dir per run)
schedule: "0 3 * * mon-fri"     # cron, 5 fields
```

``load_plan`` validates everything before anything runs and raises ``PlanError`` naming the
file, the key and the problem.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaosmesh_ext.errors import GameDayError
from chaosmesh_ext.gameday.cron import CronError, CronExpression

KEYS = {
    "name",
    "experiments",
    "target",
    "variables",
    "on_deviation",
    "time_limit",
    "journals",
    "schedule",
}
ON_DEVIATION = ("stop", "continue")
# What MESH_TARGET may be (chaosmesh_ext.mesh.target.TARGETS): anything else fails every
# experiment at its control, so refuse it before anything runs.
TARGETS = ("embedded", "kubernetes")
# CronJob names are DNS labels of at most 52 characters (the controller appends 11).
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class PlanError(GameDayError, ValueError):
    """A bad plan; the message names the plan file, the key and the problem."""


@dataclass(frozen=True)
class Plan:
    """A validated plan; ``experiments`` are absolute paths in run order."""

    path: Path
    name: str
    experiments: list[Path]
    target: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    on_deviation: str = "stop"
    time_limit: float | None = None
    journals: Path | None = None
    schedule: CronExpression | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def journals_root(self) -> Path:
        """Where this plan's runs go: ``journals`` (relative to the plan), else
        ``./journals/<name>``; absolute, since experiments run in their own directories."""
        if self.journals is not None:
            return self.journals
        # Relative to where the game day is started, like chaos run's own journal.json.
        return (Path("journals") / self.name).resolve()

    def chaos_vars(self) -> list[str]:
        """``--var`` arguments for ``chaos run``."""
        args: list[str] = []
        merged = dict(self.variables)
        if self.target is not None:
            merged.setdefault("target", self.target)
        for key, value in merged.items():
            args += ["--var", f"{key}={value}"]
        return args


def parse_duration(value: Any, where: str) -> float:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"1h"``, ``"500ms"``."""
    if isinstance(value, bool):
        raise PlanError(f"{where}: expected a duration such as 300, '30s', '5m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip())
        if not match:
            raise PlanError(f"{where}: expected a duration such as 300, '30s', '5m', got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise PlanError(f"{where}: must be more than 0, got {value!r}")
    return seconds


def load_plan(path: str | Path) -> Plan:
    """Read and validate the plan at ``path``."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"plan {p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"plan {p}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise PlanError(f"plan {p}: not valid YAML: {exc}") from None
    return parse_plan(raw, p)


def parse_plan(raw: Any, path: Path) -> Plan:
    where = f"plan {path}"
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: expected a mapping of keys ({', '.join(sorted(KEYS))})")
    unknown = sorted(str(k) for k in raw if k not in KEYS)
    if unknown:
        raise PlanError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(KEYS))}"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise PlanError(
            f"{where}: name: must be 1-52 lowercase letters, digits or '-' "
            f"(it names journals and Kubernetes objects), got {name!r}"
        )
    base = path.resolve().parent
    experiments = _experiments(raw.get("experiments"), base, where)
    target = raw.get("target")
    if target is not None and target not in TARGETS:
        raise PlanError(f"{where}: target: expected one of {', '.join(TARGETS)}, got {target!r}")
    variables = raw.get("variables") or {}
    if not isinstance(variables, dict):
        raise PlanError(f"{where}: variables: expected a mapping of name: value")
    for key, value in variables.items():
        if not isinstance(key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", key):
            raise PlanError(f"{where}: variables: bad name {key!r}")
        if isinstance(value, dict | list) or value is None:
            raise PlanError(f"{where}: variables.{key}: expected a string or number, got {value!r}")
    on_deviation = raw.get("on_deviation", "stop")
    if on_deviation not in ON_DEVIATION:
        raise PlanError(
            f"{where}: on_deviation: expected 'stop' or 'continue', got {on_deviation!r}"
        )
    time_limit = raw.get("time_limit")
    limit = None if time_limit is None else parse_duration(time_limit, f"{where}: time_limit")
    journals = raw.get("journals")
    if journals is not None and (not isinstance(journals, str) or not journals):
        raise PlanError(f"{where}: journals: expected a directory path, got {journals!r}")
    schedule = None
    if raw.get("schedule") is not None:
        try:
            schedule = CronExpression.parse(str(raw["schedule"]))
        except CronError as exc:
            raise PlanError(f"{where}: schedule: {exc}") from None
    return Plan(
        path=path.resolve(),
        name=name,
        experiments=experiments,
        target=target,
        variables={str(k): _text(v) for k, v in variables.items()},
        on_deviation=on_deviation,
        time_limit=limit,
        journals=(base / journals) if journals else None,
        schedule=schedule,
        raw=dict(raw),
    )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _experiments(value: Any, base: Path, where: str) -> list[Path]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise PlanError(f"{where}: experiments: expected a non-empty list of paths or globs")
    found: list[Path] = []
    for item in value:
        if not isinstance(item, str) or not item:
            raise PlanError(f"{where}: experiments: expected a path or glob, got {item!r}")
        pattern = str(base / item)
        if glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(pattern) if Path(m).is_file())
            if not matches:
                raise PlanError(f"{where}: experiments: {item!r} matches no file (in {base})")
        else:
            candidate = Path(pattern)
            if not candidate.is_file():
                raise PlanError(f"{where}: experiments: {item!r} does not exist ({candidate})")
            matches = [candidate]
        for m in matches:
            if m.resolve() not in found:
                found.append(m.resolve())
    return found
