"""The ``chaosmesh`` subcommands, one module each (see ``chaosmesh_ext.cli``)."""
