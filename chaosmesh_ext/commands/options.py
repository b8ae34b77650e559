"""Click options that several ``chaosmesh`` commands share, spelt and documented once."""

from __future__ import annotations

from pathlib import Path

import click

from chaosmesh_ext.mesh import paths

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=paths.STATE_DIR_ENV,
    default=paths.default_state_dir,
    show_default="CHAOSMESH_STATE_DIR, else the nearest .chaosmesh/ from here up",
    help="The embedded mesh's state directory (the one `make run` and `chaosmesh mesh` use).",
)
