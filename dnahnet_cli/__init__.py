"""The dnahnet command line: one thin module per subcommand."""

import sys


def main() -> None:
    """The ``dnahnet`` console script: Ctrl-C while the command line still loads ends
    as one during a command does (status 130, no traceback)."""
    try:
        from dnahnet_cli.app import main as run_command_line
    except KeyboardInterrupt:
        sys.exit(130)
    run_command_line()
