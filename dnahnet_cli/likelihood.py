"""`dnahnet likelihood`: log-likelihood of each FASTA record, optionally per position."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import input_file, output_prefix


def command(
    fasta: Path = typer.Argument(
        ..., help="FASTA file (plain, gz, xz or bz2); - reads standard input.",
        callback=input_file,
    ),
    output: Path = common.output_option("TSV to write (default: stdout)."),
    per_position: bool = typer.Option(
        False, "--per-position", help="One row per nucleotide with boundary probabilities."
    ),
    bigwig: str = typer.Option(  # str: a Path would drop the trailing / of a folder
        None, "--bigwig", metavar="PREFIX",
        help="Per-base tracks as bigWig: PREFIX.logprob.bw and, per stage, "
        "PREFIX.stage1.boundary_prob.bw, ... (chromosome sizes from the FASTA).",
        callback=output_prefix,
    ),
    model: str = common.ModelOption,
    config: str = common.ConfigOption,
    seed: int = common.SeedOption,
    context: int = common.context_option("Left context kept for every position of long sequences."),
    batch_size: int = common.batch_size_option(8),
    device: str = common.DeviceOption,
) -> None:
    """Log-likelihood (natural log) and bits per nucleotide of each sequence."""
    from dnahnet_core.tasks.likelihood import score_fasta

    score_fasta(
        fasta, output, common.model_source(model, config, seed), per_position=per_position,
        bigwig=bigwig, context=context, batch_size=batch_size, device=device,
    )
