"""The Typer application: registers one thin module per subcommand.

Each command module exposes a function of the same name as the module; the
function parses options, calls one library function, and prints.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import signal
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
    "embed": "embed",
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


def error_line(message: str) -> str:
    """The one line a user error prints: temporary names replaced by the user's paths."""
    from dnahnet_core.io.atomic import user_message

    text = " ".join(user_message(str(message)).split())
    return f"dnahnet: error: {text}\n"


def describe_os_error(error: OSError) -> str:
    """``path: reason`` for an OS error on an input or output (the user's path)."""
    from dnahnet_core.io.atomic import display_path

    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    where = display_path(error.filename)
    if getattr(error, "filename2", None) is not None:
        where += f" -> {display_path(error.filename2)}"
    return f"{where}: {reason}"


def _usage_message(error: typer.TyperException) -> str:
    context = getattr(error, "ctx", None)
    hint = f" (see '{context.command_path} --help')" if context is not None else ""
    return f"{error.format_message()}{hint}"


def _silence_stdout() -> None:
    """After a closed pipe (``dnahnet ... | head``) later flushes must not fail again."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


OUT_OF_MEMORY = (
    "out of memory; try a smaller --window, --context or --batch-size (or fewer --workers)"
)


def _out_of_memory(error: BaseException) -> bool:
    """Python's, numpy's and torch's (CPU allocator, CUDA) failures to allocate memory."""
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


def run(argv: list[str] | None = None) -> int:
    """Run one command line and return its exit status.

    Every error a user can cause ends as one ``dnahnet: error: ...`` line on stderr
    (``_ending``). Temporary names are removed whatever happens.
    """
    from dnahnet_core.interrupts import stops_raise
    from dnahnet_core.io.atomic import end_command

    argv = sys.argv[1:] if argv is None else list(argv)
    code, message = 0, None
    try:
        with stops_raise():
            result = app(args=argv, prog_name="dnahnet", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except BaseException as error:
        ending = _ending(error)
        if ending is None:  # a bug: its traceback shows
            raise
        code, message = ending
    finally:
        end_command()
    if message is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        sys.stderr.write(error_line(message))
        sys.stderr.flush()
    return code


def _ending(error: BaseException) -> tuple[int, str | None] | None:
    """The exit status and error line of a command that raised ``error``; None for a bug.

    A stop comes first, whatever exception it became: Ctrl-C exits 130 without a line
    (the terminal shows it), SIGTERM 143. Then usage errors (exit 2), ``DnahnetError``
    and OS errors on the user's files (exit 1), and running out of memory (exit 1).
    """
    from typer._click.exceptions import NoArgsIsHelpError

    from dnahnet_core.interrupts import Terminated, stop_received

    stop = stop_received()
    if stop == signal.SIGINT or isinstance(error, (typer.Abort, KeyboardInterrupt)):
        return 130, None
    if stop == signal.SIGTERM or isinstance(error, Terminated):
        return 143, "terminated (SIGTERM); temporary files removed"
    if isinstance(error, NoArgsIsHelpError):
        sys.stderr.write(error.format_message() + "\n")
        return 2, None
    if isinstance(error, typer.TyperException):  # click's usage errors
        return getattr(error, "exit_code", 2), _usage_message(error)
    if isinstance(error, DnahnetError):
        return 1, str(error)
    if isinstance(error, OSError):
        if error.errno == errno.EPIPE:
            _silence_stdout()
            return 1, None
        return 1, describe_os_error(error)
    if _out_of_memory(error):  # a window or batch too large to hold
        return 1, OUT_OF_MEMORY
    return None


def main() -> None:
    from dnahnet_core.device import keep_freed_memory

    keep_freed_memory()
    sys.exit(run())
