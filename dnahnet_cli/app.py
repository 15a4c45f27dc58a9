"""The Typer application: registers one thin module per subcommand.

Each command module exposes a function of the same name as the module; the
function parses options, calls one library function, and prints.
"""

from __future__ import annotations

import importlib
import sys

import typer

from dnahnet_core import __version__
from dnahnet_core.errors import DnahnetError

# command name -> module in dnahnet_cli (the module defines a function `command`)
COMMANDS = {
    "prepare": "prepare",
    "inspect": "inspect_data",
    "train": "train",
    "evaluate": "evaluate",
    "plot-metrics": "plot_metrics",
    "model-info": "model_info",
    "likelihood": "likelihood",
    "generate": "generate",
    "score-variants": "score_variants",
    "score-dms": "score_dms",
    "essentiality": "essentiality",
    "segments": "segments",
    "segments-report": "segments_report",
    "check-model": "check_model",
    "demo": "demo",
}

app = typer.Typer(
    name="dnahnet",
    help="dnaHNet: a tokenizer-free hierarchical DNA language model for prokaryotic genomes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dnahnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """dnaHNet: a tokenizer-free hierarchical DNA language model for prokaryotic genomes."""


def available_commands() -> dict[str, str]:
    """The commands whose module exists in this installation."""
    found = {}
    for name, module in COMMANDS.items():
        if importlib.util.find_spec(f"dnahnet_cli.{module}") is not None:
            found[name] = module
    return found


for _name, _module in available_commands().items():
    app.command(_name)(importlib.import_module(f"dnahnet_cli.{_module}").command)


def fail(message: str, code: int = 1) -> None:
    """Print one error line on stderr and exit."""
    sys.stderr.write(f"dnahnet: error: {message}\n")
    sys.exit(code)


def main() -> None:
    try:
        app()
    except DnahnetError as error:
        fail(str(error))
    except (FileNotFoundError, IsADirectoryError, PermissionError) as error:
        fail(f"{error.strerror}: {error.filename}")
    except KeyboardInterrupt:
        fail("interrupted", 130)
