"""``chaosmesh restore``: undo what interrupted experiment runs left behind (SIGTERM, kill -9).

Reads the change ledger (``CHAOSMESH_LEDGER_DIR`` or ``~/.chaosmesh/ledger/``) and puts every
outstanding object back the way it was before the run changed it, refusing objects someone
else changed since. ``--list`` only shows what is outstanding. Exit status 1 when something
could not be restored (the reason is printed).

Each ledger entry names the API server it was made on (``api.host``) and, when the experiment
gave one, its kubeconfig file (``api.kubeconfig``, e.g. the embedded mesh's). Without
``--kubeconfig``/``--context`` a run is restored through its recorded kubeconfig; an entry is
never restored on a server other than the one it names (it fails, saying both).

Changes made on an embedded mesh that no longer runs (stopped, died, or replaced by a newer
mesh in its state directory: the API certificate's fingerprint tells) have nothing left to
put back — the mesh's objects died with it: they are reported ``moot`` and cleared, never
tried against a server that is gone.
"""

from __future__ import annotations

from typing import Any

import click

from chaosmesh_ext.kube.ledger import (
    FORGOTTEN,
    PENDING,
    REFUSED,
    Ledger,
    LedgerError,
    all_ledgers,
)
from chaosmesh_ext.kube.restore import mark_moot
from chaosmesh_ext.mesh import target as mesh_target


def _ledgers(run: str | None, ledger_dir: str | None) -> list[Ledger]:
    if run:
        return [Ledger(run, ledger_dir)]
    return all_ledgers(ledger_dir)


def _actions(entries: list[dict[str, Any]]) -> str:
    """``inject_delay, shift_traffic x3``: what the run did to one object, in order."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["action"]] = counts.get(entry["action"], 0) + 1
    return ", ".join(f"{a} x{n}" if n > 1 else a for a, n in counts.items())


def _object_state(entries: list[dict[str, Any]]) -> str:
    api = entries[-1].get("api") or {}
    if mesh_target.mesh_gone(api.get("kubeconfig"), api.get("ca_sha256")):
        return "moot: its embedded mesh has stopped (restore clears it)"
    states = {e["state"] for e in entries}
    if REFUSED in states:
        return "refused: changed by someone else since (restore shows the diff)"
    if states == {PENDING}:
        return "write in flight when the run stopped (restore checks whether it landed)"
    return "changed: to restore"


def _when(stamp: str) -> str:
    # "2026-11-26T23:41:58.607799Z" -> "2026-11-26 23:41:58Z": seconds are enough to read.
    return stamp[:19].replace("T", " ") + "Z" if len(stamp) >= 19 else stamp


def _print_outstanding(ledgers: list[Ledger], ns: str | None) -> int:
    """One row per object a run left changed, grouped by run, oldest run first."""
    rows: list[tuple[str, ...]] = []
    runs = 0
    for ledger in ledgers:
        by_object: dict[str, list[dict[str, Any]]] = {}
        for entry in ledger.outstanding():
            if ns and entry["namespace"] != ns:
                continue
            name = f"{entry['kind']} {entry['namespace']}/{entry['name']}"
            by_object.setdefault(name, []).append(entry)
        runs += bool(by_object)
        for name, entries in by_object.items():
            rows.append(
                (
                    ledger.run_id,
                    name,
                    _when(entries[0]["time"]),
                    _actions(entries),
                    _object_state(entries),
                )
            )
    if not rows:
        click.echo("nothing outstanding")
        return 0
    header = ("RUN", "OBJECT", "FIRST CHANGED", "BY", "STATE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    click.echo(
        f"{len(rows)} object(s) left changed by {runs} run(s); put them back with "
        "`chaosmesh restore` (or `chaosmesh restore --run RUN`)"
    )
    return 0


def _forget(ledger: Ledger, ns: str | None) -> int:
    """Mark a run's outstanding entries as dealt with by hand; the cluster is not touched."""
    done: set[str] = set()
    for entry in ledger.outstanding():
        if ns and entry["namespace"] != ns:
            continue
        ledger.update(entry["id"], state=FORGOTTEN, restore="forgotten by hand")
        done.add(f"{entry['kind']} {entry['namespace']}/{entry['name']}")
    for name in sorted(done):
        click.echo(f"{ledger.run_id}  {name}: forgotten (left as it is on the cluster)")
    if not done:
        click.echo(f"nothing outstanding for run {ledger.run_id}")
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
@click.option(
    "--forget",
    is_flag=True,
    help="With --run: drop that run's outstanding changes from the ledger without touching "
    "the cluster (keep what is there now, e.g. after a refusal).",
)
def command(
    list_only: bool,
    forget: bool,
    run_id: str | None,
    ns: str | None,
    kubeconfig: str | None,
    context: str | None,
    ledger_dir: str | None,
    timeout: float,
) -> None:
    """Undo what interrupted experiment runs left behind."""
    try:
        _command(list_only, forget, run_id, ns, kubeconfig, context, ledger_dir, timeout)
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from None


def _recorded_kubeconfig(ledger: Ledger) -> str | None:
    """The kubeconfig file the run's latest outstanding change was made through, if recorded."""
    for entry in reversed(ledger.outstanding()):
        path = (entry.get("api") or {}).get("kubeconfig")
        if path:
            return str(path)
    return None


def _clear_moot(ledger: Ledger, ns: str | None) -> None:
    """Report and clear the run's entries made on an embedded mesh that no longer runs."""
    gone: dict[tuple[str | None, str | None], str | None] = {}
    for entry in ledger.outstanding():
        api = entry.get("api") or {}
        key = (api.get("kubeconfig"), api.get("ca_sha256"))
        if key not in gone:
            gone[key] = mesh_target.mesh_gone(*key)
    for (kubeconfig, ca), reason in gone.items():
        if reason is None:
            continue

        def made_there(entry: dict[str, Any], key: tuple[Any, Any] = (kubeconfig, ca)) -> bool:
            api = entry.get("api") or {}
            return (api.get("kubeconfig"), api.get("ca_sha256")) == key

        for outcome in mark_moot(ledger, reason, select=made_there, namespace=ns):
            click.echo(f"{ledger.run_id}  {outcome.ref}: moot ({reason}; nothing to put back)")


def _command(
    list_only: bool,
    forget: bool,
    run_id: str | None,
    ns: str | None,
    kubeconfig: str | None,
    context: str | None,
    ledger_dir: str | None,
    timeout: float,
) -> None:
    try:
        ledgers = _ledgers(run_id, ledger_dir)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if list_only:
        raise SystemExit(_print_outstanding(ledgers, ns))
    if forget:
        if not run_id:
            raise click.UsageError("--forget needs --run RUN_ID (see `chaosmesh restore --list`)")
        raise SystemExit(_forget(ledgers[0], ns))
    failures = 0
    pending: list[Ledger] = []
    for ledger in ledgers:
        try:
            _clear_moot(ledger, ns)
            if ledger.outstanding():
                pending.append(ledger)
        except LedgerError as exc:
            if run_id:
                raise
            # One unreadable run must not keep every other run's changes in place.
            failures += 1
            click.echo(f"{ledger.run_id}: not restored: {exc}", err=True)
    if not pending and not failures:
        click.echo("nothing to restore")
        return

    from chaosmesh_ext.kube.client import KubeSettingsError, api_client
    from chaosmesh_ext.kube.restore import objects_for, restore_ledger

    secrets = {"KUBERNETES_CONTEXT": context} if context else {}
    for ledger in pending:
        # Explicit options win; else the kubeconfig the run recorded (the embedded mesh's,
        # which the caller's KUBECONFIG knows nothing about); else KUBECONFIG & co.
        path = kubeconfig or (None if context else _recorded_kubeconfig(ledger))
        configuration: dict[str, Any] = {"kubeconfig_path": path} if path else {}
        try:
            client = api_client(configuration, secrets)
        except KubeSettingsError as exc:
            if kubeconfig or len(pending) == 1:
                raise click.ClickException(str(exc)) from exc
            failures += 1
            click.echo(f"{ledger.run_id}: not restored: {exc}", err=True)
            continue
        try:
            for outcome in restore_ledger(ledger, objects_for(client, timeout), namespace=ns):
                line = f"{ledger.run_id}  {outcome.ref}: {outcome.result}"
                if outcome.ok:
                    click.echo(line)
                else:
                    failures += 1
                    click.echo(f"{line}: {outcome.detail}", err=True)
                    if outcome.result == "refused":
                        click.echo(
                            "  (to keep what is there now: chaosmesh restore --forget "
                            f"--run {ledger.run_id})",
                            err=True,
                        )
        finally:
            client.close()
    if failures:
        click.echo(f"{failures} object(s) or run(s) could not be restored", err=True)
        raise SystemExit(1)
