"""The ``chaosmesh`` command: a thin dispatcher to the subcommands in ``chaosmesh_ext.commands``.

Each subcommand lives in its own module (``commands/<name>.py``, exposing a click object named
``command``) and is imported only when used, so ``chaosmesh --help`` stays fast and a broken
optional part cannot break the others.
"""

from __future__ import annotations

import importlib

import click

# name -> (module, one-line help). The help is repeated here so --help needs no imports.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "mesh": ("chaosmesh_ext.commands.mesh", "Run the embedded mesh: up, down, status, url."),
    "load": ("chaosmesh_ext.commands.load", "fortio-compatible load, or fortio's REST API."),
    "lint": ("chaosmesh_ext.commands.lint", "Check Istio and Kubernetes YAML before a run."),
    "restore": ("chaosmesh_ext.commands.restore", "Undo what an interrupted run left behind."),
    "run": ("chaosmesh_ext.commands.run", "Run several experiments and summarise them."),
    "journal": ("chaosmesh_ext.commands.journal", "Review journals: summary or HTML report."),
    "gameday": ("chaosmesh_ext.commands.gameday", "Run, schedule or export game-day plans."),
    "advise": ("chaosmesh_ext.commands.advise", "Size a circuit breaker from capacity."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        module_name, help_text = SUBCOMMANDS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise

            @click.command(cmd_name, help=help_text)
            def unavailable() -> None:
                raise click.ClickException(f"'{cmd_name}' is not available in this build")

            return unavailable
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chaostoolkit-mesh")
def main() -> None:
    """Chaos experiments on Istio service meshes — on a cluster or on the embedded mesh."""


if __name__ == "__main__":  # pragma: no cover
    main()
