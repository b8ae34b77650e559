"""The game-day plan file (YAML): what to run, against what, and what to do when it goes wrong.

``PLAN_FORMAT`` below is the reference for every key (``chaosmesh gameday --help`` prints it).
``load_plan`` validates everything before anything runs and raises ``PlanError`` naming the
file, the key and the problem.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaosmesh_ext.errors import GameDayError
from chaosmesh_ext.gameday.cron import DEFAULT_ZONE, CronError, CronExpression, zone_of

PLAN_FORMAT = """\
name: checkout-nightly        # required: a-z, 0-9, '-' (names journals and Kubernetes objects)
experiments:                  # required: paths or globs, relative to the plan, run in order
  - ../experiments/*.json
target: kubernetes            # embedded | kubernetes (env MESH_TARGET); default: each
                              # experiment's own (the CronJob uses kubernetes)
variables: {ns: shop}         # chaos run --var name=value (overrides configuration keys)
env: {MESH_NAMESPACE: shop}   # environment variables for every experiment
kubernetes:                   # only against a cluster (target kubernetes, and the CronJob):
  variables: {}               #   more variables ...
  env: {MESH_GATEWAY_URL: http://istio-ingressgateway.istio-system}   # ... and env
on_deviation: stop            # stop | continue: run the rest after one fails (default stop)
time_limit: 5m                # per experiment: 300, 30s, 5m, 1h; stopped and restored after
journals: journals/checkout   # default ./journals/<name>; a <UTC timestamp>/ dir per run
schedule: "0 3 * * mon-fri"   # cron as Kubernetes reads it (5 fields, @daily, ...)
timezone: Europe/Paris        # IANA zone of the schedule (CronJob spec.timeZone); default UTC
"""

KEYS = {
    "name",
    "experiments",
    "target",
    "variables",
    "env",
    "kubernetes",
    "on_deviation",
    "time_limit",
    "journals",
    "schedule",
    "timezone",
}
CLUSTER_KEYS = {"variables", "env"}
ON_DEVIATION = ("stop", "continue")
# What MESH_TARGET may be (chaosmesh_ext.mesh.target.TARGETS): anything else fails every
# experiment at its control, so refuse it before anything runs.
TARGETS = ("embedded", "kubernetes")
KUBERNETES = "kubernetes"
# CronJob names are DNS labels of at most 52 characters (the controller appends 11).
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
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
    env: dict[str, str] = field(default_factory=dict)
    # The `kubernetes:` section: added when the plan runs against a cluster.
    cluster_variables: dict[str, str] = field(default_factory=dict)
    cluster_env: dict[str, str] = field(default_factory=dict)
    on_deviation: str = "stop"
    time_limit: float | None = None
    journals: Path | None = None
    schedule: CronExpression | None = None
    timezone: str = DEFAULT_ZONE
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def journals_root(self) -> Path:
        """Where this plan's runs go: ``journals`` (relative to the plan), else
        ``./journals/<name>``; absolute, since experiments run in their own directories."""
        if self.journals is not None:
            return self.journals
        # Relative to where the game day is started, like chaos run's own journal.json.
        return (Path("journals") / self.name).resolve()

    def target_in(self, environ: Mapping[str, str]) -> str | None:
        """The target the plan runs against here: its own, else ``MESH_TARGET`` of
        ``environ``; None leaves it to each experiment."""
        return self.target or environ.get("MESH_TARGET") or None

    def settings(self, target: str | None) -> tuple[dict[str, str], dict[str, str]]:
        """(variables, env) for a run against ``target``: the ``kubernetes`` section's
        added on a cluster."""
        if target == KUBERNETES:
            return (
                {**self.variables, **self.cluster_variables},
                {**self.env, **self.cluster_env},
            )
        return dict(self.variables), dict(self.env)

    def chaos_vars(self, target: str | None = None) -> list[str]:
        """``--var`` arguments for ``chaos run`` against ``target``."""
        args: list[str] = []
        merged, _ = self.settings(target)
        if self.target is not None:
            merged.setdefault("target", self.target)
        for key, value in merged.items():
            args += ["--var", f"{key}={value}"]
        return args


def read_experiment(path: Path) -> dict[str, Any]:
    """The experiment file at ``path`` (JSON or YAML), decoded."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise PlanError(f"experiment {path}: cannot read it: {exc}") from None
    if not isinstance(data, dict):
        raise PlanError(f"experiment {path}: not an experiment (expected an object)")
    return data


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
    variables = _settings(raw.get("variables"), f"{where}: variables", _VARIABLE_NAME)
    env = _settings(raw.get("env"), f"{where}: env", _ENV_NAME)
    cluster = raw.get("kubernetes") or {}
    if not isinstance(cluster, dict) or not set(cluster) <= CLUSTER_KEYS:
        raise PlanError(
            f"{where}: kubernetes: expected a mapping with {' and/or '.join(sorted(CLUSTER_KEYS))}"
            f", got {cluster!r}"
        )
    cluster_variables = _settings(
        cluster.get("variables"), f"{where}: kubernetes.variables", _VARIABLE_NAME
    )
    cluster_env = _settings(cluster.get("env"), f"{where}: kubernetes.env", _ENV_NAME)
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
    timezone = raw.get("timezone")
    if timezone is not None and (not isinstance(timezone, str) or not timezone):
        raise PlanError(f"{where}: timezone: expected an IANA zone name, got {timezone!r}")
    schedule = None
    if raw.get("schedule") is not None:
        try:
            schedule = CronExpression.parse(str(raw["schedule"]), timezone)
        except CronError as exc:
            raise PlanError(f"{where}: schedule: {exc}") from None
        timezone = schedule.timezone
    elif timezone is not None:
        try:
            zone_of(timezone)
        except CronError as exc:
            raise PlanError(f"{where}: timezone: {exc}") from None
    return Plan(
        path=path.resolve(),
        name=name,
        experiments=experiments,
        target=target,
        variables=variables,
        env=env,
        cluster_variables=cluster_variables,
        cluster_env=cluster_env,
        on_deviation=on_deviation,
        time_limit=limit,
        journals=(base / journals) if journals else None,
        schedule=schedule,
        timezone=timezone or DEFAULT_ZONE,
        raw=dict(raw),
    )


def _settings(value: Any, where: str, names: re.Pattern[str]) -> dict[str, str]:
    """A mapping of name: string-or-number (``variables``, ``env``), as text."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PlanError(f"{where}: expected a mapping of name: value")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not names.match(key):
            raise PlanError(f"{where}: bad name {key!r}")
        if isinstance(item, dict | list) or item is None:
            raise PlanError(f"{where}.{key}: expected a string or number, got {item!r}")
        out[key] = _text(item)
    return out


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
