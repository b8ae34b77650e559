"""``chaosmesh restore``: undo what interrupted experiment runs left behind (SIGTERM, kill -9).

Reads the change ledger (``CHAOSMESH_LEDGER_DIR`` or ``~/.chaosmesh/ledger/``) and puts every
outstanding object back the way it was before the run changed it, refusing objects someone
else changed since. ``--list`` only shows what is outstanding. Exit status 1 when something
could not be restored (the reason is printed).
"""

from __future__ import annotations

from typing import Any

import click

from chaosmesh_ext.kube.ledger import Ledger, all_ledgers


def _ledgers(run: str | None, ledger_dir: str | None) -> list[Ledger]:
    if run:
        return [Ledger(run, ledger_dir)]
    return all_ledgers(ledger_dir)


def _print_outstanding(ledgers: list[Ledger], ns: str | None) -> int:
    rows: list[tuple[str, ...]] = []
    for ledger in ledgers:
        for entry in ledger.outstanding():
            if ns and entry["namespace"] != ns:
                continue
            rows.append(
                (
                    ledger.run_id,
                    f"{entry['kind']} {entry['namespace']}/{entry['name']}",
                    entry["action"],
                    entry["time"],
                    entry["state"],
                )
            )
    if not rows:
        click.echo("nothing outstanding")
        return 0
    header = ("RUN", "OBJECT", "ACTION", "WHEN", "STATE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


@click.command("restore")
@click.option("--list", "list_only", is_flag=True, help="Only show what is outstanding.")
@click.option("--run", "run_id", metavar="RUN_ID", help="Only this run (default: every run).")
@click.option("--ns", metavar="NAMESPACE", help="Only objects in this namespace.")
@click.option(
    "--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig file (default: KUBECONFIG)."
)
@click.option("--context", help="Kubeconfig context (default: KUBERNETES_CONTEXT or current).")
@click.option(
    "--ledger-dir",
    type=click.Path(file_okay=False),
    help="Ledger directory (default: CHAOSMESH_LEDGER_DIR or ~/.chaosmesh/ledger).",
)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds per Kubernetes API call.")
def command(
    list_only: bool,
    run_id: str | None,
    ns: str | None,
    kubeconfig: str | None,
    context: str | None,
    ledger_dir: str | None,
    timeout: float,
) -> None:
    """Undo what interrupted experiment runs left behind."""
    try:
        ledgers = _ledgers(run_id, ledger_dir)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if list_only:
        raise SystemExit(_print_outstanding(ledgers, ns))
    pending = [ledger for ledger in ledgers if ledger.outstanding()]
    if not pending:
        click.echo("nothing to restore")
        return

    from chaosmesh_ext.kube.client import KubeSettingsError, api_client
    from chaosmesh_ext.kube.objects import IstioObjects
    from chaosmesh_ext.kube.restore import restore_ledger

    configuration: dict[str, Any] = {"kubeconfig_path": kubeconfig} if kubeconfig else {}
    secrets = {"KUBERNETES_CONTEXT": context} if context else {}
    try:
        client = api_client(configuration, secrets)
    except KubeSettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    failures = 0
    try:

        def objects_for(api_version: str) -> IstioObjects:
            return IstioObjects(client, api_version, timeout)

        for ledger in pending:
            for outcome in restore_ledger(ledger, objects_for, namespace=ns):
                line = f"{ledger.run_id}  {outcome.ref}: {outcome.result}"
                if outcome.ok:
                    click.echo(line)
                else:
                    failures += 1
                    click.echo(f"{line}: {outcome.detail}", err=True)
    finally:
        client.close()
    if failures:
        click.echo(f"{failures} object(s) could not be restored", err=True)
        raise SystemExit(1)
