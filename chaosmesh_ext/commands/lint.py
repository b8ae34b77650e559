"""``chaosmesh lint``: check Istio and Kubernetes YAML — and experiments — before a run.

Like ``istioctl analyze``: ``chaosmesh lint -f DIR -f FILE [--target cluster]
[--format json]``. With a cluster — ``--kubeconfig``, else ``KUBECONFIG``, else the embedded
mesh running for this project — the files are checked together with what that API server
already holds, so a VirtualService file alone is checked against the Services and
DestinationRules there; ``--use-kube=false`` checks the files alone. A Chaos Toolkit
experiment among the files gets its activity arguments checked against the real functions
(``experiment_check``), with the closest name for a typo. Exit code 1 when there is an error
finding (malformed YAML included) or the cluster cannot be read, 0 otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ..errors import KubeError
from ..experiment_check import Problem, check_file
from ..istio.lint import EMBEDDED, TARGETS, Finding, has_errors, lint_files, read_files, summary
from ..kube.client import api_client
from ..kube.cluster_lint import objects_for_files
from ..kube.objects import IstioObjects
from ..mesh.paths import default_state_dir
from ..mesh.state import StateDir, alive


def _text(findings: list[Finding]) -> str:
    lines = [str(f) for f in findings]
    counts = summary(findings)
    lines.append(
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
        if findings
        else "no problems found"
    )
    return "\n".join(lines)


def cluster_kubeconfig(flag: str | None) -> tuple[str | None, str]:
    """The kubeconfig whose API server the files are checked against, and where it came
    from: ``--kubeconfig``, ``KUBECONFIG``, the project's running embedded mesh, else none."""
    if flag:
        return flag, "--kubeconfig"
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"], "KUBECONFIG"
    state = StateDir(Path(default_state_dir()))  # as every command finds the project's mesh
    current = state.read() or {}
    if current.get("ready") and alive(int(current.get("pid") or 0)) and current.get("kubeconfig"):
        return str(current["kubeconfig"]), f"the embedded mesh in {state.root}"
    return None, ""


def _existing(
    kubeconfig: str, where: str, files_objects: list[Any], namespace: str
) -> tuple[list[Any], list[str]]:
    # KUBECONFIG may list several files: the client merges them as kubectl does.
    configuration = None if where == "KUBECONFIG" else {"kubeconfig_path": kubeconfig}
    try:
        client = api_client(configuration)
    except (KubeError, ValueError) as exc:
        raise click.ClickException(f"{exc} (--use-kube=false checks the files alone)") from None
    try:
        return objects_for_files(IstioObjects(client), files_objects, namespace)
    except KubeError as exc:
        raise click.ClickException(
            f"cannot read the cluster: {exc} (--use-kube=false checks the files alone)"
        ) from None
    finally:
        client.close()  # type: ignore[no-untyped-call]


def _files(paths: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".json", ".yaml", ".yml"))
        elif path.is_file():
            found.append(path)
    return found


def _line(text: str, problem: Problem) -> int | None:
    """Where the problem is in the file: the argument's line after its step's name."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if f'"{problem.step}"' in ln), None)
    if start is None:
        start = next((i for i, ln in enumerate(lines) if problem.step in ln), 0)
    needle = problem.key or ("func" if problem.field.endswith(".func") else "arguments")
    for i in range(start, len(lines)):
        if needle in lines[i]:
            return i + 1
    return start + 1


def experiment_findings(paths: tuple[str, ...]) -> list[Finding]:
    """Argument problems of the Chaos Toolkit experiments among ``paths`` (``experiment_check``)."""
    findings = []
    for path in _files(paths):
        problems = check_file(path)
        if not problems:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for problem in problems:
            findings.append(
                Finding(
                    problem.severity, str(path), "", "", "", problem.field,
                    f"'{problem.step}' ({problem.func}): {problem.message}", _line(text, problem),
                )
            )  # fmt: skip
    return findings


@click.command("lint")
@click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    metavar="FILE_OR_DIR",
    help="YAML/JSON file, a directory searched for *.yaml, *.yml, *.json, or - for standard "
    "input (repeatable).",
)
@click.option(
    "-n",
    "--namespace",
    default="default",
    show_default=True,
    help="Namespace of objects that name none (as kubectl -n).",
)
@click.option(
    "--kubeconfig",
    default=None,
    type=click.Path(dir_okay=False),
    help="Check the files against this cluster (default: KUBECONFIG, else the embedded mesh"
    " running here).",
)
@click.option(
    "--use-kube",
    type=click.BOOL,
    default=True,
    show_default=True,
    is_flag=False,
    flag_value=True,
    help="--use-kube=false: check the files alone, as istioctl analyze --use-kube=false.",
)
@click.option(
    "--target",
    type=click.Choice(TARGETS),
    default=EMBEDDED,
    show_default=True,
    help="Where the files will run: fields the embedded mesh does not support "
    "(docs/FIDELITY.md) are errors for 'embedded', info notes for 'cluster'.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
def command(
    paths: tuple[str, ...],
    namespace: str,
    kubeconfig: str | None,
    use_kube: bool,
    target: str,
    output_format: str,
) -> None:
    """Check Istio and Kubernetes YAML (like istioctl analyze) and experiments' arguments."""
    files = read_files(paths, namespace)
    existing: list[Any] = []
    notes: list[str] = []
    source, where = cluster_kubeconfig(kubeconfig) if use_kube else (None, "")
    if source:
        existing, notes = _existing(source, where, files.objects, namespace)
        notes.insert(0, f"checked with {len(existing)} object(s) from the cluster of {where}")
    findings = lint_files(files, namespace, existing=existing, target=target)
    findings += experiment_findings(paths)
    if output_format == "json":
        click.echo(
            json.dumps(
                {
                    "findings": [f.to_dict() for f in findings],
                    "summary": summary(findings),
                    "notes": notes,
                },
                indent=2,
            )
        )
    else:
        for note in notes:
            click.echo(f"note: {note}", err=True)
        click.echo(_text(findings))
    if has_errors(findings):
        raise SystemExit(1)
