"""`dnahnet segments`: learned chunks of a genome as BED6 (+ optional bedGraph)."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import at_least, input_file, output_file, output_prefix


def command(
    genome: Path = typer.Argument(
        ..., help="Genome FASTA (plain, gz, xz or bz2); - reads standard input.",
        callback=input_file,
    ),
    model: str = common.ModelOption,
    config: str = common.ConfigOption,
    seed: int = common.SeedOption,
    stage: str = typer.Option("all", "--stage", help="Stage to report: 1, 2 or all."),
    output: Path = common.output_option("BED file (default: stdout)."),
    bedgraph: Path = typer.Option(
        None, "--bedgraph",
        help="Per-base boundary probability; with several stages X.bedgraph becomes "
        "X.stage1.bedgraph, X.stage2.bedgraph.",
        callback=output_file,
    ),
    bigwig: str = typer.Option(  # str: a Path would drop the trailing / of a folder
        None, "--bigwig", metavar="PREFIX",
        help="Per-base boundary probability as bigWig, one file per stage: "
        "PREFIX.stage1.boundary_prob.bw, ... (chromosome sizes from the FASTA).",
        callback=output_prefix,
    ),
    context: int = common.context_option("Minimum left context per base (nt)."),
    stride: int = typer.Option(
        None, "--stride",
        help="New bases per window (default: 262,144; each base is computed once with "
        ">= --context nt of left context; --stride = --context is the older, 2x slower tiling).",
        callback=at_least(1),
    ),
    batch_size: int = common.ScoringBatchSizeOption,
    device: str = common.DeviceOption,
    precision: str = common.ScoringPrecisionOption,
    workers: int = common.WorkersOption,
    track: bool = typer.Option(False, "--track", help="Start each file with a UCSC track line."),
) -> None:
    """Write one BED6 interval per learned chunk per stage (0-based, half-open)."""
    from dnahnet_core.tasks.segments import parse_stages, write_segments

    write_segments(
        genome, output, common.model_source(model, config, seed), stages=parse_stages(stage),
        bedgraph=bedgraph, bigwig=bigwig, context=context, stride=stride, batch_size=batch_size,
        device=device, precision=precision, workers=workers, track=track,
    )
