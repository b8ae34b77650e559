"""Click options that several ``chaosmesh`` commands share, spelt and documented once."""

from __future__ import annotations

from pathlib import Path

import click

from chaosmesh_ext.mesh import target as mesh_target

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=mesh_target.STATE_DIR_ENV,
    default=mesh_target.DEFAULT_STATE_DIR,
    show_default=True,
    help="The embedded mesh's state directory (the one `make run` and `chaosmesh mesh` use).",
)
