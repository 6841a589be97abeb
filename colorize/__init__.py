"""The ``colorize`` command line: one subcommand per module in :mod:`colorize.commands`."""
