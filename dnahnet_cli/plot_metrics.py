"""`dnahnet plot-metrics`: loss and compression-ratio curves of training runs."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli.validate import output_file


def command(
    runs: list[Path] = typer.Argument(..., help="Run directories (each with metrics.jsonl)."),
    output: Path = typer.Option(
        "curves.png", "--output", "-o", help="Image to write (png, pdf, svg).",
        callback=output_file,
    ),
    x: str = typer.Option("step", "--x", help="x axis: step or tokens (compare runs by data)."),
    label: list[str] = typer.Option(
        None, "--label", help="A legend label per run, in order (default: directory names)."
    ),
) -> None:
    """Plot bits per nucleotide and the compression ratio per stage of one or several runs."""
    from dnahnet_core.errors import DnahnetError
    from dnahnet_core.progress import log
    from dnahnet_core.train.plots import plot_runs

    if label and len(label) != len(runs):
        raise DnahnetError(f"--label: {len(label)} labels for {len(runs)} runs")
    path = plot_runs([str(r) for r in runs], output, x=x, labels=label or None)
    log(f"wrote {path}")
