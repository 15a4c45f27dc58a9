"""`dnahnet essentiality`: rank genes by the model's response to an in-frame stop cassette."""

from __future__ import annotations

from pathlib import Path

import typer

from dnahnet_cli import common
from dnahnet_cli.validate import at_least, input_file, output_file


def command(
    genome: Path = typer.Argument(
        ..., help="Genome FASTA, or a GFF3 with ##FASTA (Prokka), or GenBank/GBFF with sequence.",
        callback=input_file,
    ),
    annotation: Path = typer.Argument(
        None, help="GFF3 or GenBank annotation, when GENOME is a FASTA.", callback=input_file
    ),
    model: str = common.ModelOption,
    config: str = common.ConfigOption,
    seed: int = common.SeedOption,
    output: Path = common.output_option("Ranking TSV (default: stdout)."),
    labels: Path = typer.Option(
        None, "--labels", help="TSV of locus_tag/gene -> essential (E/NE, 1/0, true/false).",
        callback=input_file,
    ),
    metrics: Path = typer.Option(
        None, "--metrics",
        help="Metrics JSON with --labels (default: OUTPUT with .metrics.json, or "
        "essentiality.metrics.json when the ranking goes to stdout).",
        callback=output_file,
    ),
    plot: Path = typer.Option(
        None, "--plot", help="ROC curve image (png, pdf, svg).", callback=output_file
    ),
    window: int = common.window_option("Window length around each gene (nt)."),
    offset: int = typer.Option(
        12, "--offset", help="Cassette start: nt after the start codon (multiple of 3).",
        callback=at_least(0),
    ),
    circular: bool = common.circular_option(
        "Contigs are circular: windows and genes wrap the origin."
    ),
    feature: str = typer.Option("CDS", "--feature", help="Annotation feature type to score."),
    chrom_map: Path = common.chrom_map_option("annotation"),
    reverse_complement: bool = common.ReverseComplementOption,
    prefix_reuse: bool = common.PrefixReuseOption,
    batch_size: int = common.batch_size_option(8),
    device: str = common.DeviceOption,
) -> None:
    """Score every gene's knockout (delta log-likelihood); most likely essential first."""
    from dnahnet_core.io.contigs import read_chrom_map
    from dnahnet_core.progress import log
    from dnahnet_core.tasks.essentiality import rank_genes

    summary = rank_genes(
        genome, annotation, output, common.model_source(model, config, seed), feature=feature,
        labels=labels, metrics=metrics, plot=plot, window=window, offset=offset,
        circular=circular, chrom_map=read_chrom_map(chrom_map) if chrom_map else None,
        reverse_complement=reverse_complement, prefix_reuse=prefix_reuse,
        batch_size=batch_size, device=device,
    )
    for line in summary.lines():
        log(line)
