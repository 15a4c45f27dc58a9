"""Checks applied at the CLI edge, as Typer callbacks: option ranges, inputs, outputs.

    context: int = typer.Option(8192, "--context", callback=at_least(1))
    temperature: float = typer.Option(1.0, "--temperature", callback=above(0))
    fasta: Path = typer.Argument(..., callback=input_file)       # '-' is standard input
    output: Path = typer.Option(None, "-o", callback=output_file)  # '-' is standard output

A number outside its range, NaN or an infinity is a usage error (exit 2) naming the
option; None (an option left unset) always passes. Typer's own ``min=``/``max=`` are
not used for floats because they let NaN through.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import typer


def number_range(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    above: float | None = None,
    below: float | None = None,
    why: str = "",
) -> Callable:
    """A callback accepting finite numbers with ``minimum <= x <= maximum`` (``above <
    x < below`` for open bounds); lists (repeatable options) are checked item by item.
    ``why`` explains a bound in the message."""
    bounds = [
        f"{sign} {_shown(bound)}"
        for sign, bound in ((">=", minimum), (">", above), ("<=", maximum), ("<", below))
        if bound is not None
    ]
    rule = " and ".join(bounds) + (f" ({why})" if why else "")

    def check(value):
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is None:
                continue
            if isinstance(item, float) and not math.isfinite(item):
                raise typer.BadParameter(f"{item}: must be a finite number {rule}".rstrip())
            if (
                (minimum is not None and item < minimum)
                or (maximum is not None and item > maximum)
                or (above is not None and item <= above)
                or (below is not None and item >= below)
            ):
                raise typer.BadParameter(f"{_shown(item)}: must be {rule}")
        return value

    return check


def at_least(minimum: float) -> Callable:
    """Integers and finite numbers >= ``minimum``."""
    return number_range(minimum)


def above(bound: float) -> Callable:
    """Finite numbers strictly greater than ``bound`` (e.g. a learning rate > 0)."""
    return number_range(above=bound)


def between(minimum: float, maximum: float) -> Callable:
    """Finite numbers in the closed interval [``minimum``, ``maximum``]."""
    return number_range(minimum, maximum)


def _shown(number) -> str:
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e16:
        return str(int(number))  # 2.0 -> 2, but 1e300 stays 1e+300 (not 301 digits)
    return str(number)


SEED_MAX = 2**32 - 1  # a seed every generator takes (torch, numpy)
# --seed, --sample-seed: a larger seed overflows torch's generator
seed_range = number_range(0, SEED_MAX, why="a 32-bit seed")


def up_to_cpus(minimum: int) -> Callable:
    """Worker processes or threads: ``minimum`` to the CPUs of this machine (one per core;
    many more only exhaust memory, each worker process holding a copy of the model)."""
    return number_range(minimum, os.cpu_count() or 1, why="the CPUs of this machine")


def supported_genetic_code(value: int | None) -> int | None:
    """An NCBI translation table this toolkit has (None: from the annotation)."""
    from dnahnet_core.tasks.genetic_code import GENETIC_CODES

    if value is not None and value not in GENETIC_CODES:
        supported = ", ".join(map(str, sorted(GENETIC_CODES)))
        raise typer.BadParameter(f"{value}: not a supported code (prokaryotic codes: {supported})")
    return value


_DEVICE = re.compile(r"auto|(cpu|cuda)(:\d+)?")


def device_name(value: str | None) -> str | None:
    """--device: auto, cpu, cuda or cuda:N (torch's other device types, e.g. mps or meta,
    cannot run these models; the GPU itself is checked when the model is placed)."""
    if value is None:
        return None
    if not _DEVICE.fullmatch(value.lower()):
        raise typer.BadParameter(f"{value!r}: expected auto, cpu, cuda or cuda:N")
    return value.lower()  # CPU, CUDA:0 as well


def input_file(value):
    """Inputs: ``-`` and other streams (/dev/stdin, pipes) become re-readable files."""
    from dnahnet_core.io.streams import input_path

    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [input_path(item) for item in value]
    return input_path(value)


def output_file(value: Path | None) -> Path | None:
    """File outputs: refused now (not after the long part) when they cannot be written."""
    from dnahnet_core.io.atomic import check_output_file

    if value is not None:
        check_output_file(value)
    return value


def output_prefix(value: str | None) -> str | None:
    """A prefix of several output files (``--bigwig out/genome``): refused now when it
    names a directory or its directory cannot be written."""
    from dnahnet_core.io.atomic import check_output_parent
    from dnahnet_core.io.bigwig import check_prefix

    if value is not None:
        check_prefix(value)
        check_output_parent(value)
    return value


def output_dir(value: Path | None) -> Path | None:
    """Directory outputs: a file of that name, or a file in the way of its parents, is
    refused now (whether a non-empty directory may be replaced depends on --overwrite)."""
    from dnahnet_core.errors import DnahnetError
    from dnahnet_core.io.atomic import check_output_parent

    if value is not None:
        if value.exists() and not value.is_dir():
            raise DnahnetError(f"{value}: exists and is not a directory")
        check_output_parent(value)
    return value


def stream_keeps_prefix_reuse(genome_stream: bool, prefix_reuse: bool) -> None:
    """--no-prefix-reuse (full windows, for comparison) means nothing to --genome-stream."""
    if genome_stream and not prefix_reuse:
        raise typer.BadParameter("has no effect with --genome-stream, which never scores "
                                 "full windows; give one of the two",
                                 param_hint="'--no-prefix-reuse'")
