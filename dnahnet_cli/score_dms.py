"""`dnahnet score-dms`: score a MaveDB score set in genomic context and correlate."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import input_file, output_file


def command(
    scores: Path = typer.Argument(
        ..., help="MaveDB score-set CSV (hgvs_nt or hgvs_pro, score).", callback=input_file
    ),
    sequence: Path = typer.Option(
        ..., "--sequence", "-s", help="FASTA with one record: the genomic context of the CDS.",
        callback=input_file,
    ),
    cds: str = typer.Option(
        ..., "--cds", help="CDS in the context: START-END[:STRAND], 1-based closed, e.g. 201-1100:+"
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Per-variant TSV (- for standard output).",
        callback=output_file,
    ),
    model: str = common.ModelOption,
    config: str = common.ConfigOption,
    seed: int = common.SeedOption,
    window: int = common.window_option("Window centred on each variant (nt)."),
    reverse_complement: bool = common.ReverseComplementOption,
    prefix_reuse: bool = common.PrefixReuseOption,
    score_column: str = typer.Option("score", "--score-column", help="Experimental score column."),
    genetic_code: int = typer.Option(
        11, "--genetic-code", help="Codon table for hgvs_pro: 11 (standard) or 4 (Mycoplasma)."
    ),
    batch_size: int = common.batch_size_option(16),
    device: str = common.DeviceOption,
) -> None:
    """LLR of every variant; Spearman and Pearson with the experimental scores."""
    from dnahnet_core.progress import log
    from dnahnet_core.tasks.dms import score_dms

    summary = score_dms(
        scores, sequence, cds, output, common.model_source(model, config, seed), window=window,
        reverse_complement=reverse_complement, prefix_reuse=prefix_reuse,
        score_column=score_column, genetic_code=genetic_code, batch_size=batch_size,
        device=device,
    )
    for line in summary.lines():
        log(line)
