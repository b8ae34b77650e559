"""``chaosmesh lint``: check Istio and Kubernetes YAML for mistakes before a run.

Like ``istioctl analyze`` on files: ``chaosmesh lint -f DIR -f FILE [--target cluster]
[--format json]``.
Exit code 1 when there is an error finding (malformed YAML included), 0 otherwise.
"""

from __future__ import annotations

import json

import click

from ..istio.lint import EMBEDDED, TARGETS, Finding, has_errors, lint_paths, summary


def _text(findings: list[Finding]) -> str:
    lines = [str(f) for f in findings]
    counts = summary(findings)
    lines.append(
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
        if findings
        else "no problems found"
    )
    return "\n".join(lines)


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
def command(paths: tuple[str, ...], namespace: str, target: str, output_format: str) -> None:
    """Check Istio and Kubernetes YAML for mistakes before a run (like istioctl analyze)."""
    findings = lint_paths(paths, namespace=namespace, target=target)
    if output_format == "json":
        click.echo(
            json.dumps(
                {"findings": [f.to_dict() for f in findings], "summary": summary(findings)},
                indent=2,
            )
        )
    else:
        click.echo(_text(findings))
    if has_errors(findings):
        raise SystemExit(1)
